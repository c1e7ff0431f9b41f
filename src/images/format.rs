//! `--format` templates as Docker users write them: `json`, `{{json .}}`, `{{.Field}}`,
//! `{{.A.B}}`, `{{json .Field}}`, and a leading `table ` for a header row; `\t` and `\n` escapes.

use serde_json::Value;

/// What `--format` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// The command's own table.
    Table,
    /// One JSON object per line.
    Json,
    /// A Go-style template per row; `header` when it started with `table `.
    Template { text: String, header: bool },
}

/// A template problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid --format template {template:?}: {reason}")]
pub struct FormatError {
    template: String,
    reason: String,
}

impl Format {
    pub fn parse(f: Option<&str>) -> Result<Format, FormatError> {
        let bad = |reason: &str| FormatError {
            template: f.unwrap_or_default().to_owned(),
            reason: reason.to_owned(),
        };
        match f.map(str::trim) {
            None | Some("") | Some("table") => Ok(Format::Table),
            Some("json") | Some("{{json .}}") => Ok(Format::Json),
            Some(t) => {
                let (text, header) = match t.strip_prefix("table ") {
                    Some(rest) => (rest, true),
                    None => (t, false),
                };
                let text = text.replace("\\t", "\t").replace("\\n", "\n");
                // Check every action now, so a typo fails before any output.
                for action in actions(&text) {
                    parse_action(action).ok_or_else(|| {
                        bad(&format!("unsupported action {{{{{action}}}}}: use {{{{.Field}}}} or {{{{json .Field}}}}"))
                    })?;
                }
                if text.matches("{{").count() != text.matches("}}").count() {
                    return Err(bad("unbalanced braces"));
                }
                Ok(Format::Template { text, header })
            }
        }
    }
}

fn actions(t: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                out.push(after[..j].trim());
                rest = &after[j + 2..];
            }
            None => break,
        }
    }
    out
}

/// (json?, path) of an action like `.A.B` or `json .A`.
fn parse_action(a: &str) -> Option<(bool, Vec<&str>)> {
    let (json, expr) = match a.strip_prefix("json ") {
        Some(e) => (true, e.trim()),
        None => (false, a),
    };
    if expr == "." {
        return Some((json, vec![]));
    }
    let path = expr.strip_prefix('.')?;
    let parts: Vec<&str> = path.split('.').collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then_some((json, parts))
}

fn lookup<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Renders one row.
pub fn render(template: &str, v: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        if let Some((json, path)) = parse_action(after[..j].trim()) {
            let val = lookup(v, &path).unwrap_or(&Value::Null);
            if json {
                out.push_str(&serde_json::to_string(val).unwrap_or_default());
            } else {
                out.push_str(&plain(val));
            }
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// The header row for a `table` template: each action's last field name, upper-cased.
pub fn header(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else { break };
        let name = parse_action(after[..j].trim())
            .and_then(|(_, p)| p.last().map(|s| s.to_uppercase()))
            .unwrap_or_default();
        out.push_str(&name);
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    out
}

/// Prints rows as the format asks (Table is the caller's job).
pub fn print_rows(f: &Format, rows: &[Value]) {
    match f {
        Format::Table => {}
        Format::Json => {
            for r in rows {
                println!("{}", serde_json::to_string(r).unwrap_or_default());
            }
        }
        Format::Template { text, header: h } => {
            if *h {
                println!("{}", header(text));
            }
            for r in rows {
                println!("{}", render(text, r));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let v = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Config": {"Env": ["A=1"]}, "N": 3});
        assert_eq!(render("{{.Repository}}:{{.Tag}}", &v), "busybox:latest");
        assert_eq!(render("{{json .Config.Env}}", &v), "[\"A=1\"]");
        assert_eq!(render("{{.N}} {{.Missing}}", &v), "3 <no value>");
        assert_eq!(header("{{.Repository}}\t{{.Tag}}"), "REPOSITORY\tTAG");
        assert_eq!(Format::parse(Some("json")).unwrap(), Format::Json);
        assert_eq!(Format::parse(None).unwrap(), Format::Table);
        assert!(Format::parse(Some("{{range .}}")).is_err());
        assert_eq!(
            Format::parse(Some("table {{.ID}}\\t{{.Size}}")).unwrap(),
            Format::Template {
                text: "{{.ID}}\t{{.Size}}".into(),
                header: true
            }
        );
    }
}
