//! `.dockerignore`: its patterns (Go's filepath.Match syntax, `**` for any number of
//! directories, `!` exceptions, the last matching pattern deciding) and whether a context path
//! is excluded, as Docker's pattern matcher decides it (a path is excluded when it or one of
//! its parent directories matches).

use regex::Regex;

/// One pattern of a `.dockerignore`.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    re: Regex,
}

/// The patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` pattern that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(".dockerignore line {line}: bad pattern {pattern:?}: {why}")]
pub struct IgnoreError {
    pub line: usize,
    pub pattern: String,
    pub why: String,
}

impl Ignore {
    /// Parses a `.dockerignore` (blank lines and `#` comments skipped, each pattern cleaned as
    /// a path, a leading `/` dropped).
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let lines = text
            .lines()
            .enumerate()
            .map(|(i, raw)| (i + 1, raw.trim()))
            .filter(|(_, t)| !t.is_empty() && !t.starts_with('#'));
        Ignore::of(lines)
    }

    /// The patterns of COPY/ADD's `--exclude` flags, in order (`line` in an error is the flag's
    /// place among them).
    pub fn from_patterns(list: &[String]) -> Result<Ignore, IgnoreError> {
        Ignore::of(list.iter().enumerate().map(|(i, p)| (i + 1, p.trim())))
    }

    fn of<'a>(lines: impl Iterator<Item = (usize, &'a str)>) -> Result<Ignore, IgnoreError> {
        let mut patterns = Vec::new();
        for (line, t) in lines {
            let (exception, body) = match t.strip_prefix('!') {
                Some(b) => (true, b.trim()),
                None => (false, t),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let re = to_regex(&cleaned).map_err(|why| IgnoreError {
                line,
                pattern: t.to_string(),
                why,
            })?;
            patterns.push(Pattern {
                text: cleaned,
                exception,
                re,
            });
        }
        Ok(Ignore { patterns })
    }

    /// Whether the context path `rel` (relative, `/`-separated) is excluded.
    pub fn excludes(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let parents = parents(&rel);
        let mut excluded = false;
        for p in &self.patterns {
            if excluded != p.exception {
                // Only a pattern of the other kind can change the verdict.
                continue;
            }
            let hit = p.re.is_match(&rel) || parents.iter().any(|d| p.re.is_match(d));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether an exception pattern could re-include something under the excluded directory
    /// `dir` (then its contents must still be looked at one by one).
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir = clean(dir);
        self.patterns.iter().any(|p| {
            p.exception && (p.text.starts_with(&format!("{dir}/")) || p.text.contains('*'))
        })
    }

    /// Whether there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `a/b/c` → `["a", "a/b"]`.
fn parents(rel: &str) -> Vec<String> {
    let parts: Vec<&str> = rel.split('/').collect();
    (1..parts.len()).map(|n| parts[..n].join("/")).collect()
}

/// Go's filepath.Clean of a relative pattern or path, without a leading `/` or `./`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x),
        }
    }
    out.join("/")
}

/// The regular expression of a pattern: `*` any run of non-`/`, `?` one non-`/`, `[...]` a class
/// (`^` or `!` negating), `\` escaping, `**` any number of path elements.
pub fn to_regex(pattern: &str) -> Result<Regex, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or("unterminated [ class")?;
                let mut class: String = chars[i..i + close].iter().collect();
                i += close + 1;
                if let Some(rest) = class.strip_prefix('!').or_else(|| class.strip_prefix('^')) {
                    class = format!("^{rest}");
                }
                if class.is_empty() || class == "^" {
                    return Err("empty [] class".into());
                }
                re.push('[');
                re.push_str(&class.replace('\\', "\\\\"));
                re.push(']');
            }
            '\\' => {
                let n = chars.get(i).ok_or("trailing backslash")?;
                i += 1;
                re.push_str(&regex::escape(&n.to_string()));
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

/// Whether `s` holds glob characters (then COPY sources are matched, not looked up).
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn go_match_semantics() {
        let i = ig("*.log\n/build\ntmp?\n[ab].txt\n");
        assert!(i.excludes("x.log"));
        // `*` does not cross directories.
        assert!(!i.excludes("d/x.log"));
        assert!(i.excludes("build"));
        assert!(i.excludes("build/deep/file"));
        assert!(i.excludes("tmp1"));
        assert!(!i.excludes("tmp12"));
        assert!(i.excludes("a.txt"));
        assert!(!i.excludes("c.txt"));
    }

    #[test]
    fn double_star_and_exceptions() {
        let i = ig("# comment\n**/*.o\nsecret*\n!secret-ok\n");
        assert!(i.excludes("a.o"));
        assert!(i.excludes("x/y/z.o"));
        assert!(i.excludes("secret.key"));
        assert!(!i.excludes("secret-ok"));
        assert!(!i.excludes("main.c"));
    }

    #[test]
    fn last_match_wins() {
        let i = ig("!keep\n*\n");
        assert!(i.excludes("keep"));
        let i = ig("docs\n!docs/README.md\n");
        assert!(i.excludes("docs/other.md"));
        assert!(!i.excludes("docs/README.md"));
        assert!(i.may_reinclude_under("docs"));
        assert!(!ig("docs\n").may_reinclude_under("docs"));
    }

    #[test]
    fn classes_and_escapes() {
        let i = ig("[!a]x\nq\\*\n");
        assert!(i.excludes("bx"));
        assert!(!i.excludes("ax"));
        assert!(i.excludes("q*"));
        assert!(!i.excludes("qq"));
        assert!(Ignore::parse("[abc\n").is_err());
        assert_eq!(clean("./a//b/../c/"), "a/c");
    }
}
