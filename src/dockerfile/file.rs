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
        if joined.contains("<<") && heredoc_like(&joined) {
            return Err(ParseError::new(
                start + 1,
                "heredocs (<<EOF) are not supported yet: write the commands on one line joined with &&",
            ));
        }
        out.push(instruction(start + 1, joined.trim())?);
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

/// Whether `<<` starts a heredoc word (`<<EOF`, `<<-EOF`, `<<"EOF"`), not a shell `<<` in text.
fn heredoc_like(line: &str) -> bool {
    let upper = line.trim_start().to_ascii_uppercase();
    if !(upper.starts_with("RUN") || upper.starts_with("COPY") || upper.starts_with("ADD")) {
        return false;
    }
    line.match_indices("<<").any(|(p, _)| {
        let after = line[p + 2..].trim_start_matches('-');
        after.starts_with(|c: char| c.is_ascii_uppercase() || c == '"' || c == '\'')
    })
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
        let err = parse("FROM x\nRUN <<EOF\necho\nEOF\n").unwrap_err();
        assert_eq!(err.line, 2);
        // A shell here-string in a RUN line is not a heredoc.
        assert!(parse("FROM x\nRUN cat <<< hi").is_ok());
    }
}
