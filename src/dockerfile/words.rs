//! The word rules of Docker's Dockerfile shell lexer: words split on unquoted blanks, then each
//! word's quotes and backslashes removed and variables expanded from the build's environment:
//! `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR#glob}`, `${VAR##glob}`, `${VAR%glob}`,
//! `${VAR%%glob}`, `${VAR/glob/word}` and `${VAR//glob/word}`, words nesting further `${...}`.

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
        let close = closing_brace(chars, i + 1)
            .ok_or_else(|| DockerfileError::BadSubstitution(word.to_string()))?;
        let inner: String = chars[i + 1..close].iter().collect();
        let name_len = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_len);
        if name.is_empty() {
            return Err(DockerfileError::BadSubstitution(word.to_string()));
        }
        out.push_str(&braced(name, op, env, word)?);
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

/// The index of the `}` closing a `${` whose body starts at `chars[from]` (nested `${...}` and
/// backslash escapes skipped).
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 1;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `${name<op>}`.
fn braced(name: &str, op: &str, env: &[String], word: &str) -> Result<String, DockerfileError> {
    let value = lookup(env, name);
    let full = value.is_some_and(|v| !v.is_empty());
    let set = value.is_some();
    let arg = |n: usize| process(&op[n..], env);
    let v = value.unwrap_or("").to_string();
    Ok(match op {
        "" => v,
        _ if op.starts_with(":-") => {
            if full {
                v
            } else {
                arg(2)?
            }
        }
        _ if op.starts_with('-') => {
            if set {
                v
            } else {
                arg(1)?
            }
        }
        _ if op.starts_with(":+") => {
            if full {
                arg(2)?
            } else {
                String::new()
            }
        }
        _ if op.starts_with('+') => {
            if set {
                arg(1)?
            } else {
                String::new()
            }
        }
        _ if op.starts_with(":?") || op.starts_with('?') => {
            let colon = op.starts_with(':');
            if (colon && full) || (!colon && set) {
                v
            } else {
                let message = arg(if colon { 2 } else { 1 })?;
                let message = if message.is_empty() {
                    "is not allowed to be unset".to_string()
                } else {
                    message
                };
                return Err(DockerfileError::Required(format!("{name}: {message}")));
            }
        }
        _ if op.starts_with("##") => strip_prefix(&v, &arg(2)?, true),
        _ if op.starts_with('#') => strip_prefix(&v, &arg(1)?, false),
        _ if op.starts_with("%%") => strip_suffix(&v, &arg(2)?, true),
        _ if op.starts_with('%') => strip_suffix(&v, &arg(1)?, false),
        _ if op.starts_with('/') => {
            let all = op.starts_with("//");
            let rest = &op[if all { 2 } else { 1 }..];
            let (pat, with) = split_unescaped(rest, '/');
            let pat = process(pat, env)?;
            let with = process(with.unwrap_or(""), env)?;
            replace(&v, &pat, &with, all)
        }
        _ => return Err(DockerfileError::BadSubstitution(word.to_string())),
    })
}

/// `s` split at its first `sep` that no backslash escapes.
fn split_unescaped(s: &str, sep: char) -> (&str, Option<&str>) {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == sep && !escaped => return (&s[..i], Some(&s[i + c.len_utf8()..])),
            _ => escaped = false,
        }
    }
    (s, None)
}

/// Whether all of `s` matches the shell glob `pat` (`*`, `?`, other characters literally).
fn glob(pat: &[char], s: &[char]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// `${v#pat}` / `${v##pat}`: the shortest (longest) matching prefix removed.
fn strip_prefix(v: &str, pat: &str, longest: bool) -> String {
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), v.chars().collect());
    let mut cuts: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new((0..=c.len()).rev())
    } else {
        Box::new(0..=c.len())
    };
    match cuts.find(|&n| glob(&p, &c[..n])) {
        Some(n) => c[n..].iter().collect(),
        None => v.to_string(),
    }
}

/// `${v%pat}` / `${v%%pat}`: the shortest (longest) matching suffix removed.
fn strip_suffix(v: &str, pat: &str, longest: bool) -> String {
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), v.chars().collect());
    let mut starts: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new(0..=c.len())
    } else {
        Box::new((0..=c.len()).rev())
    };
    match starts.find(|&n| glob(&p, &c[n..])) {
        Some(n) => c[..n].iter().collect(),
        None => v.to_string(),
    }
}

/// `${v/pat/with}` / `${v//pat/with}`: the first (every) longest match of `pat` replaced.
fn replace(v: &str, pat: &str, with: &str, all: bool) -> String {
    let (p, c): (Vec<char>, Vec<char>) = (pat.chars().collect(), v.chars().collect());
    if p.is_empty() {
        return v.to_string();
    }
    let mut out = String::new();
    let mut i = 0;
    let mut replaced = false;
    while i < c.len() {
        let hit = (!replaced || all)
            .then(|| (i + 1..=c.len()).rev().find(|&end| glob(&p, &c[i..end])))
            .flatten();
        match hit {
            Some(end) => {
                out.push_str(with);
                i = end;
                replaced = true;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
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
        assert!(process("${HOME^x}", &e).is_err());
    }

    #[test]
    fn every_substitution_form() {
        let e: Vec<String> = ["E=", "P=/usr/local/bin/tool.tar.gz", "B=b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = |w: &str| process(w, &e).unwrap();
        assert_eq!(p("${E-dflt}|${E:-dflt}|${NO-dflt}"), "|dflt|dflt");
        assert_eq!(p("${E+alt}|${E:+alt}|${NO+alt}"), "alt||");
        assert_eq!(p("${NO:-${B}x}|${NO:-${NO2:-deep}}"), "bx|deep");
        assert_eq!(
            p("${P#*/}|${P##*/}"),
            "usr/local/bin/tool.tar.gz|tool.tar.gz"
        );
        assert_eq!(
            p("${P%.*}|${P%%.*}"),
            "/usr/local/bin/tool.tar|/usr/local/bin/tool"
        );
        assert_eq!(
            p("${P/local/opt}|${P//o/0}"),
            "/usr/opt/bin/tool.tar.gz|/usr/l0cal/bin/t00l.tar.gz"
        );
        assert_eq!(p("${B?}${E?set}"), "b");
        assert_eq!(
            process("${NO:?give NO}", &e).unwrap_err(),
            DockerfileError::Required("NO: give NO".into())
        );
        assert!(process("${E:?}", &e).is_err());
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
