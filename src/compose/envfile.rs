//! `.env` and `env_file:` files: `KEY=VALUE` lines, `export ` prefixes, `#` comments, single
//! quotes (literal) and double quotes (with `\n`, `\t`, `\"`, `\\` escapes). A bare `KEY` takes
//! its value from the environment, as Docker Compose does.

use std::path::Path;

use super::error::ComposeError;

/// The variables of an env file, in file order; `None` for a bare `KEY` (no `=`).
pub type Pairs = Vec<(String, Option<String>)>;

/// Reads and parses the env file at `path`.
pub fn read(path: &Path) -> Result<Pairs, ComposeError> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|(line, message)| ComposeError::EnvFile {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses env file text; an error carries its 1-based line.
pub fn parse(text: &str) -> Result<Pairs, (usize, String)> {
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
            Some((k, v)) => (
                k.trim(),
                Some(value(v.trim_start()).map_err(|m| (n + 1, m))?),
            ),
            None => (line, None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((n + 1, format!("invalid variable name {key:?}")));
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The value after `=`: quoted, or bare up to a ` #` comment.
fn value(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'').ok_or("unterminated single quote")?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        return double_quoted(rest);
    }
    let bare = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(bare.trim_end().to_string())
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
        let got = parse(text).unwrap();
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
        assert_eq!(parse("A=1\nB='x\n").unwrap_err().0, 2);
        assert_eq!(parse("A B=1\n").unwrap_err().0, 1);
    }
}
