//! Interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
//! `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` in every string value (never in keys).
//! Defaults and alternatives may themselves hold `${...}`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_yaml::Value;

use super::error::ComposeError;

/// Where variables come from: the process environment over the project's env files.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Why one string could not be interpolated.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR missing.
    Required { var: String, message: String },
    /// A malformed `$` expression.
    Format(String),
}

/// Interpolates one string; `unset` collects variables used without a value or a default.
pub fn string(s: &str, vars: &dyn Lookup, unset: &mut BTreeSet<String>) -> Result<String, Failure> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (text, used) = dollar(after, vars, unset)?;
        out.push_str(&text);
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(out)
}

/// One `$` expression (the text after the `$`): its value and how many bytes it used.
fn dollar(
    after: &str,
    vars: &dyn Lookup,
    unset: &mut BTreeSet<String>,
) -> Result<(String, usize), Failure> {
    if after.starts_with('$') {
        return Ok(("$".into(), 1));
    }
    if let Some(body) = after.strip_prefix('{') {
        let end = closing_brace(body).ok_or_else(|| Failure::Format("missing }".into()))?;
        let value = braced(&body[..end], vars, unset)?;
        return Ok((value, end + 2));
    }
    let len = name_len(after);
    if len == 0 {
        return Err(Failure::Format(
            "$ must be followed by a name, {, or $".into(),
        ));
    }
    Ok((plain(&after[..len], vars, unset), len))
}

fn name_len(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// The index of the `}` closing a `${`, counting nested `${ }`.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn plain(name: &str, vars: &dyn Lookup, unset: &mut BTreeSet<String>) -> String {
    vars.get(name).unwrap_or_else(|| {
        unset.insert(name.to_string());
        String::new()
    })
}

/// The inside of `${...}`: a name, then optionally an operator and its word.
fn braced(inner: &str, vars: &dyn Lookup, unset: &mut BTreeSet<String>) -> Result<String, Failure> {
    let len = name_len(inner);
    let (name, op) = inner.split_at(len);
    if name.is_empty() {
        return Err(Failure::Format(format!(
            "${{{inner}}} has no variable name"
        )));
    }
    if op.is_empty() {
        return Ok(plain(name, vars, unset));
    }
    let value = vars.get(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let present = if colon { set_nonempty } else { value.is_some() };
    let word = |w: &str, unset: &mut BTreeSet<String>| string(w, vars, unset);
    match op.chars().next() {
        Some('-') if present => Ok(value.unwrap_or_default()),
        Some('-') => word(&op[1..], unset),
        Some('+') if present => word(&op[1..], unset),
        Some('+') => Ok(String::new()),
        Some('?') if present => Ok(value.unwrap_or_default()),
        Some('?') => Err(Failure::Required {
            var: name.to_string(),
            message: word(&op[1..], unset)?,
        }),
        _ => Err(Failure::Format(format!("unknown operator in ${{{inner}}}"))),
    }
}

/// Interpolates every string scalar under `value`; `path` is the key path so far (for errors).
pub fn value(
    value: &mut Value,
    path: &mut Vec<String>,
    file: &Path,
    vars: &dyn Lookup,
    unset: &mut BTreeSet<String>,
) -> Result<(), ComposeError> {
    match value {
        Value::String(s) => {
            *s = string(s, vars, unset).map_err(|f| failure(f, file, path, s))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                self::value(item, path, file, vars, unset)?;
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(super::keys::key_text(k));
                self::value(v, path, file, vars, unset)?;
                path.pop();
            }
        }
        Value::Tagged(t) => self::value(&mut t.value, path, file, vars, unset)?,
        _ => {}
    }
    Ok(())
}

fn failure(f: Failure, file: &Path, path: &[String], s: &str) -> ComposeError {
    let key = super::keys::join(path);
    match f {
        Failure::Required { var, message } => ComposeError::Required {
            path: file.to_path_buf(),
            key,
            var,
            message,
        },
        Failure::Format(message) => ComposeError::Interpolation {
            path: file.to_path_buf(),
            key,
            value: s.to_string(),
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<String, Failure> {
        let vars = |n: &str| match n {
            "SET" => Some("v".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        string(s, &vars, &mut BTreeSet::new())
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(run("a $SET b ${SET}c").unwrap(), "a v b vc");
        assert_eq!(run("$NOPE|${NOPE}").unwrap(), "|");
        assert_eq!(run("$$SET costs $$5").unwrap(), "$SET costs $5");
        assert_eq!(run("${SET}_x $SET_x").unwrap(), "v_x ");
    }

    #[test]
    fn defaults() {
        assert_eq!(run("${NOPE:-d} ${NOPE-d}").unwrap(), "d d");
        assert_eq!(run("${EMPTY:-d}|${EMPTY-d}").unwrap(), "d|");
        assert_eq!(run("${SET:-d}").unwrap(), "v");
        assert_eq!(run("${NOPE:-${SET}/x}").unwrap(), "v/x");
        assert_eq!(run("${NOPE:-a:b-c}").unwrap(), "a:b-c");
    }

    #[test]
    fn alternatives() {
        assert_eq!(
            run("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${NOPE+alt}").unwrap(),
            "alt||alt|"
        );
    }

    #[test]
    fn required() {
        assert_eq!(run("${SET:?no}").unwrap(), "v");
        assert_eq!(run("${EMPTY?no}").unwrap(), "");
        let want = Failure::Required {
            var: "EMPTY".into(),
            message: "set it".into(),
        };
        assert_eq!(run("${EMPTY:?set it}").unwrap_err(), want);
        assert!(matches!(run("${NOPE?x}"), Err(Failure::Required { .. })));
    }

    #[test]
    fn malformed() {
        for bad in ["$", "a $ b", "${", "${}", "${SET", "${SET!x}", "${1A}"] {
            assert!(matches!(run(bad), Err(Failure::Format(_))), "{bad}");
        }
    }

    #[test]
    fn unset_names_are_collected() {
        let mut unset = BTreeSet::new();
        string("$A ${B} ${C:-x}", &|_: &str| None, &mut unset).unwrap();
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), ["A", "B"]);
    }

    #[test]
    fn errors_name_file_and_key() {
        let mut doc: Value =
            serde_yaml::from_str("services:\n  web:\n    image: ${TAG:?set TAG}\n").unwrap();
        let err = value(
            &mut doc,
            &mut vec![],
            Path::new("/p/compose.yaml"),
            &|_: &str| None,
            &mut BTreeSet::new(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "/p/compose.yaml: services.web.image: required variable TAG is missing a value: set TAG"
        );
    }
}
