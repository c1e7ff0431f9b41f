//! `.env` and `env_file:` files: `KEY=VALUE` lines, `export ` prefixes, `#` comments, single
//! quotes (literal) and double quotes (with `\n`, `\t`, `\"`, `\\`, `\$` escapes). A bare `KEY`
//! takes its value from the environment, as Docker Compose does. Unquoted and double-quoted
//! values are interpolated (`${VAR}`, `${VAR:-default}`, ...) from the caller's variables first,
//! then from the file's earlier lines, as Docker Compose's env files are.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::ComposeError;
use super::interpolate::{self, Failure, Lookup};

/// The variables of an env file, in file order; `None` for a bare `KEY` (no `=`).
pub type Pairs = Vec<(String, Option<String>)>;

/// Reads and parses the env file at `path`, interpolating from `vars` and the file itself.
pub fn read(path: &Path, vars: &dyn Lookup) -> Result<Pairs, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, vars).map_err(|(line, message)| ComposeError::EnvFile {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses env file text; an error carries its 1-based line.
pub fn parse(text: &str, vars: &dyn Lookup) -> Result<Pairs, (usize, String)> {
    let mut out = Pairs::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => {
                let (text, literal) = value(v.trim_start()).map_err(|m| (n + 1, m))?;
                let text = if literal {
                    text
                } else {
                    expand(&text, vars, &out).map_err(|m| (n + 1, m))?
                };
                (k.trim(), Some(text))
            }
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((n + 1, format!("invalid variable name {key:?}")));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Interpolates one value: `vars` first, then the file's earlier lines; unset is blank.
fn expand(text: &str, vars: &dyn Lookup, earlier: &Pairs) -> Result<String, String> {
    let lookup = |name: &str| {
        vars.get(name).or_else(|| {
            earlier
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.clone())
        })
    };
    interpolate::string(text, &lookup, &mut BTreeSet::new()).map_err(|f| match f {
        Failure::Required { var, message } => {
            format!("required variable {var} is missing a value: {message}")
        }
        Failure::Format(m) => format!("invalid interpolation format in {text:?}: {m}"),
    })
}

/// The value after `=` (quoted, or bare up to a ` #` comment), and whether it is literal
/// (single-quoted: not interpolated).
fn value(v: &str) -> Result<(String, bool), String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated single quote")?;
        return Ok((rest[..end].to_string(), true));
    }
    if let Some(rest) = v.strip_prefix('"') {
        return Ok((double_quoted(rest)?, false));
    }
    let bare = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok((bare.trim_end().to_string(), false))
}

fn double_quoted(rest: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(out),
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                // `\$` is a literal dollar: `$$` survives the interpolation as one.
                Some('$') => out.push_str("$$"),
                Some(o) => out.push(o),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated double quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let text = "# c\n\nA=1\nexport B = two words # note\nC='x # y'\nD=\"a\\nb\"\nE\nF=\n";
        let got = parse(text, &none).unwrap();
        let want: Pairs = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two words".into())),
            ("C".into(), Some("x # y".into())),
            ("D".into(), Some("a\nb".into())),
            ("E".into(), None),
            ("F".into(), Some(String::new())),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("A=1\nB='x\n", &none).unwrap_err().0, 2);
        assert_eq!(parse("A B=1\n", &none).unwrap_err().0, 1);
        assert_eq!(parse("A=${X:?must be set}\n", &none).unwrap_err().0, 1);
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn values_are_interpolated_from_the_caller_then_the_file() {
        let vars = |name: &str| (name == "HOST").then(|| "db.local".to_string());
        let text = "PORT=5432\nURL=postgres://${HOST}:$PORT/x\nQ=\"${PORT}-${NOPE:-d}\"\nLIT='${HOST}'\nD=\"\\$HOST $$PORT\"\nHOST=ignored\nE=${HOST}\n";
        let got = parse(text, &vars).unwrap();
        let get = |k: &str| got.iter().find(|(n, _)| n == k).unwrap().1.clone().unwrap();
        assert_eq!(get("URL"), "postgres://db.local:5432/x");
        assert_eq!(get("Q"), "5432-d");
        assert_eq!(get("LIT"), "${HOST}");
        assert_eq!(get("D"), "$HOST $PORT");
        // The caller's value wins over the file's own, as in Docker Compose.
        assert_eq!(get("E"), "db.local");
    }
}
