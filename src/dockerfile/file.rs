//! A whole Dockerfile into its lines: parser directives (`# escape=`, `# syntax=`), comments,
//! line continuations and heredoc-free instructions, each with its 1-based line number, its
//! name, its `--flag=value` options and the rest of the line as written.

use super::DockerfileError;

/// One instruction of a Dockerfile, continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Where the instruction starts (1-based).
    pub line: usize,
    /// The instruction's name, upper case (`RUN`, `COPY`, ...).
    pub name: String,
    /// Leading `--name=value` (or `--name`) options, as written.
    pub flags: Vec<(String, Option<String>)>,
    /// The rest of the line after the name and flags.
    pub rest: String,
    /// The whole instruction as written (continuations joined), for history and errors.
    pub original: String,
    /// The heredocs the line opens (`<<EOF` ... `EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// A here-document of a RUN, COPY or ADD line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word (`EOF`).
    pub name: String,
    /// The lines up to the delimiter, each ending in a newline (with `<<-`, leading tabs removed).
    pub body: String,
    /// The delimiter was unquoted: variables in the body expand (COPY), as BuildKit does.
    pub expand: bool,
}

impl Line {
    /// The instruction with its heredoc bodies: what its cache key and history are made of.
    pub fn full(&self) -> String {
        let mut text = self.original.clone();
        for h in &self.heredocs {
            text.push('\n');
            text.push_str(&h.body);
            text.push_str(&h.name);
        }
        text
    }
}

/// A Dockerfile that cannot be parsed: the line and what is wrong there.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Dockerfile line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    /// A [`DockerfileError`] at `line`.
    pub fn at(line: usize, err: DockerfileError) -> ParseError {
        ParseError::new(line, err.to_string())
    }
}

/// Instructions a Dockerfile may hold.
const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses `text` into its instructions.
pub fn parse(text: &str) -> Result<Vec<Line>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, mut i) = directives(&lines)?;
    let mut out = Vec::new();
    while i < lines.len() {
        let start = i;
        let raw = lines[i].trim();
        i += 1;
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut cur = raw.to_string();
        loop {
            match continued(&cur, escape) {
                Some(head) => {
                    joined.push_str(head);
                    // Blank and comment lines inside a continuation are skipped, as Docker does.
                    while i < lines.len() && {
                        let t = lines[i].trim();
                        t.is_empty() || t.starts_with('#')
                    } {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i].trim_start().to_string();
                    i += 1;
                }
                None => {
                    joined.push_str(&cur);
                    break;
                }
            }
        }
        let mut line = instruction(start + 1, joined.trim())?;
        if matches!(line.name.as_str(), "RUN" | "COPY" | "ADD") {
            for (name, chomp, expand) in heredoc_words(&line.rest) {
                let (body, next) = heredoc_body(&lines, i, &name, chomp).ok_or_else(|| {
                    ParseError::new(
                        start + 1,
                        format!("the heredoc <<{name} has no line {name} ending it"),
                    )
                })?;
                i = next;
                line.heredocs.push(Heredoc { name, body, expand });
            }
        }
        out.push(line);
    }
    Ok(out)
}

/// The escape character and the index of the first line after the parser directives.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut i = 0;
    while i < lines.len() {
        let Some(body) = lines[i].trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::new(
                            i + 1,
                            format!("invalid escape token {v:?}: use \\ or `"),
                        ))
                    }
                }
            }
            // The frontend image to use: burrow builds itself, the directive is recorded only.
            "syntax" | "check" => {}
            _ => break,
        }
        i += 1;
    }
    Ok((escape, i))
}

/// The line without its trailing escape character, when it continues on the next line.
fn continued(line: &str, escape: char) -> Option<&str> {
    line.trim_end().strip_suffix(escape)
}

/// Where the words of `rest` that start with `<<` begin (outside quotes, at a word's start),
/// as BuildKit looks for heredocs word by word.
fn heredoc_starts(rest: &str) -> Vec<usize> {
    let b = rest.as_bytes();
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(b'"'), b'\\') => i += 1,
            (Some(_), _) => {}
            (None, b'\\') => i += 1,
            (None, q @ (b'"' | b'\'')) => quote = Some(q),
            (None, b'<')
                if rest[i..].starts_with("<<") && (i == 0 || b[i - 1].is_ascii_whitespace()) =>
            {
                out.push(i);
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The heredoc words of a line (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`): name, whether tabs
/// are stripped, whether the body expands. A shell `<<<` here-string is not one, nor is a `<<`
/// inside quotes or a word (`"a<<b"`, `cat<<EOF`), as with BuildKit.
fn heredoc_words(rest: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    let b = rest.as_bytes();
    for p in heredoc_starts(rest) {
        let mut j = p + 2;
        if b.get(j) == Some(&b'<') {
            continue;
        }
        let chomp = b.get(j) == Some(&b'-');
        if chomp {
            j += 1;
        }
        let quote = match b.get(j) {
            Some(&q @ (b'"' | b'\'')) => {
                j += 1;
                Some(q)
            }
            _ => None,
        };
        let start = j;
        while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
            j += 1;
        }
        if j == start || !b[start].is_ascii_alphabetic() && b[start] != b'_' {
            continue;
        }
        let name = rest[start..j].to_string();
        if let Some(q) = quote {
            if b.get(j) != Some(&q) {
                continue;
            }
        }
        out.push((name, chomp, quote.is_none()));
    }
    out
}

/// The body of heredoc `name` from `lines[from..]` and the index after its delimiter line.
fn heredoc_body(lines: &[&str], from: usize, name: &str, chomp: bool) -> Option<(String, usize)> {
    let mut body = String::new();
    for (k, l) in lines.iter().enumerate().skip(from) {
        let l = if chomp { l.trim_start_matches('\t') } else { l };
        if l.trim_end() == name {
            return Some((body, k + 1));
        }
        body.push_str(l);
        body.push('\n');
    }
    None
}

/// One joined instruction line into its name, flags and rest.
fn instruction(line: usize, text: &str) -> Result<Line, ParseError> {
    let (name, mut rest) = text
        .split_once(char::is_whitespace)
        .map(|(n, r)| (n, r.trim_start()))
        .unwrap_or((text, ""));
    let upper = name.to_ascii_uppercase();
    if !KNOWN.contains(&upper.as_str()) {
        return Err(ParseError::new(
            line,
            format!("unknown instruction: {name}"),
        ));
    }
    let mut flags = Vec::new();
    // ONBUILD keeps its trigger as written (its flags belong to the trigger).
    while upper != "ONBUILD" && rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let flag = &rest[2..end];
        flags.push(match flag.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (flag.to_ascii_lowercase(), None),
        });
        rest = rest[end..].trim_start();
    }
    Ok(Line {
        line,
        name: upper,
        flags,
        rest: rest.to_string(),
        original: text.to_string(),
        heredocs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_continuations_and_comments() {
        let text = "# syntax=docker/dockerfile:1\nFROM busybox AS build\n\n# a comment\nRUN echo a \\\n  # inside\n  && echo b\nCOPY --chown=1:2 --from=build a b\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].name, "FROM");
        assert_eq!(got[0].rest, "busybox AS build");
        assert_eq!(got[1].line, 5);
        assert_eq!(got[1].rest, "echo a && echo b");
        assert_eq!(got[2].line, 8);
        assert_eq!(
            got[2].flags,
            vec![
                ("chown".into(), Some("1:2".into())),
                ("from".into(), Some("build".into()))
            ]
        );
        assert_eq!(got[2].rest, "a b");
    }

    #[test]
    fn heredocs() {
        let text = "FROM x\nRUN <<EOF\necho a\n\necho b\nEOF\nCOPY <<-\"A\" <<B /d/\n\tone $X\n\tA\ntwo\nB\nRUN true\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].heredocs[0].body, "echo a\n\necho b\n");
        assert!(got[1].full().ends_with("echo b\nEOF"));
        let h = &got[2].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].body.as_str(), h[0].expand),
            ("A", "one $X\n", false)
        );
        assert_eq!(
            (h[1].name.as_str(), h[1].body.as_str(), h[1].expand),
            ("B", "two\n", true)
        );
        assert_eq!(got[3].line, 12);
    }

    #[test]
    fn escape_directive() {
        let got = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n").unwrap();
        assert_eq!(got[1].rest, "dir c:\\ /w");
        assert!(parse("# escape=x\nFROM x").is_err());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("FROM x\n\nFLY away\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile line 3: unknown instruction: FLY"
        );
        let err = parse("FROM x\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(err.line, 2);
        // A shell here-string, a quoted << or one inside a word is not a heredoc.
        for line in [
            "RUN cat <<< hi",
            "RUN echo \"x<<y\" > f",
            "RUN echo 'a <<b'",
            "RUN a=1<<2",
        ] {
            let got = parse(&format!("FROM x\n{line}")).unwrap();
            assert!(got[1].heredocs.is_empty(), "{line}");
        }
    }
}
