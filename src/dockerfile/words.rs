//! The word rules of Docker's Dockerfile shell lexer: words split on unquoted blanks, then each
//! word's quotes and backslashes removed and `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}`
//! expanded from the build's environment.

use super::DockerfileError;

/// The words of `text`, split on blanks outside quotes, each still quoted and escaped as
/// written (Docker splits first, then processes each word).
pub fn split(text: &str) -> Result<Vec<String>, DockerfileError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                continue;
            }
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (Some('\''), _) => {}
            (_, '\\') => {
                cur.push(c);
                if let Some(next) = chars.next() {
                    cur.push(next);
                }
                in_word = true;
                continue;
            }
            _ => {}
        }
        cur.push(c);
        in_word = true;
    }
    if quote.is_some() {
        return Err(DockerfileError::Unterminated(text.to_string()));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// One word with its quotes and escapes removed and variables expanded from `env`
/// (`KEY=VALUE` entries, the last one of a key wins; unset variables are empty).
pub fn process(word: &str, env: &[String]) -> Result<String, DockerfileError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), c) => out.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                if let Some(&n) = chars.get(i) {
                    out.push(n);
                    i += 1;
                }
            }
            (Some(_), '\\') => match chars.get(i) {
                Some(&n) if matches!(n, '"' | '$' | '\\') => {
                    out.push(n);
                    i += 1;
                }
                _ => out.push('\\'),
            },
            (_, '$') => i = expand(&chars, i, env, word, &mut out)?,
            (_, c) => out.push(c),
        }
    }
    if quote.is_some() {
        return Err(DockerfileError::Unterminated(word.to_string()));
    }
    Ok(out)
}

/// The value of `name` in `env` (the last entry wins).
pub fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

/// Expands the variable after a `$` at `chars[i..]` into `out`; returns where the text goes on.
fn expand(
    chars: &[char],
    mut i: usize,
    env: &[String],
    word: &str,
    out: &mut String,
) -> Result<usize, DockerfileError> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if chars.get(i) == Some(&'{') {
        let close = chars[i..]
            .iter()
            .position(|c| *c == '}')
            .map(|p| p + i)
            .ok_or_else(|| DockerfileError::BadSubstitution(word.to_string()))?;
        let inner: String = chars[i + 1..close].iter().collect();
        let name_len = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_len);
        if name.is_empty() {
            return Err(DockerfileError::BadSubstitution(word.to_string()));
        }
        let value = lookup(env, name);
        let set = value.is_some_and(|v| !v.is_empty());
        let text = match op {
            "" => value.unwrap_or("").to_string(),
            _ if op.starts_with(":-") => match set {
                true => value.unwrap_or("").to_string(),
                false => process(&op[2..], env)?,
            },
            _ if op.starts_with(":+") => match set {
                true => process(&op[2..], env)?,
                false => String::new(),
            },
            _ => return Err(DockerfileError::BadSubstitution(word.to_string())),
        };
        out.push_str(&text);
        return Ok(close + 1);
    }
    let start = i;
    while i < chars.len() && is_name(chars[i]) {
        i += 1;
    }
    if start == i {
        out.push('$');
        return Ok(i);
    }
    let name: String = chars[start..i].iter().collect();
    out.push_str(lookup(env, &name).unwrap_or(""));
    Ok(i)
}

/// Go's duration syntax, as Docker's flags take it: numbers with units, e.g. `1m30s`, `500ms`
/// (never negative here).
pub fn go_duration(v: &str) -> Option<std::time::Duration> {
    crate::containers::values::parse_go_duration_std(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<String> {
        vec!["HOME=/root".into(), "X=1".into(), "X=2".into()]
    }

    #[test]
    fn splits_on_blanks_outside_quotes() {
        assert_eq!(
            split(r#"a=1  b="two words" c='x y' d=e\ f"#).unwrap(),
            vec!["a=1", r#"b="two words""#, "c='x y'", r"d=e\ f"]
        );
        assert!(split(r#"a="open"#).is_err());
    }

    #[test]
    fn processes_quotes_escapes_and_variables() {
        let e = env();
        assert_eq!(process(r#""two words""#, &e).unwrap(), "two words");
        assert_eq!(process("'$HOME'", &e).unwrap(), "$HOME");
        assert_eq!(process(r#""$HOME/x""#, &e).unwrap(), "/root/x");
        assert_eq!(process("${HOME}x$X", &e).unwrap(), "/rootx2");
        assert_eq!(process(r"e\ f\$X", &e).unwrap(), "e f$X");
        assert_eq!(process(r#""a\"b\n""#, &e).unwrap(), r#"a"b\n"#);
        assert_eq!(process("${NOPE:-dflt}${HOME:+set}", &e).unwrap(), "dfltset");
        assert_eq!(process("$NOPE.$", &e).unwrap(), ".$");
        assert!(process("${HOME", &e).is_err());
        assert!(process("${HOME%x}", &e).is_err());
    }

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        assert_eq!(go_duration("5"), None);
        assert_eq!(go_duration(""), None);
    }
}
