//! One Dockerfile instruction line into a typed [`Instruction`], for the instructions that
//! change an image's config (those `docker commit --change` and `docker import --change` take).
//! Words that Docker expands with the build's environment are kept raw here and expanded when
//! applied (an ENV earlier in the same list changes what a later one sees).

use std::time::Duration;

use super::words;
use super::DockerfileError;

/// A command as written: Docker's exec (JSON array) form or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `["prog", "arg"]`: run as is.
    Exec(Vec<String>),
    /// `prog arg`: run by the image's shell (`/bin/sh -c` unless SHELL set another).
    Shell(String),
}

/// `HEALTHCHECK`, as the image config's Healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", prog, args...]` or `["CMD-SHELL", text]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<i64>,
}

/// An image-config instruction. Key/value pairs and word lists hold the raw (still quoted)
/// words; [`super::apply`] processes them against the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    /// The trigger instruction as written after `ONBUILD`.
    OnBuild(String),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
    StopSignal(String),
    Healthcheck(Healthcheck),
}

/// Parses `--change` values: each may hold several lines (`\` continues a line); blank lines
/// and `#` comments are skipped.
pub fn parse_changes(changes: &[String]) -> Result<Vec<Instruction>, DockerfileError> {
    let mut out = Vec::new();
    for change in changes {
        let mut line = String::new();
        for raw in change.lines() {
            let t = raw.trim();
            if line.is_empty() && (t.is_empty() || t.starts_with('#')) {
                continue;
            }
            match t.strip_suffix('\\') {
                Some(head) => line.push_str(head),
                None => {
                    line.push_str(t);
                    out.push(Instruction::parse(&std::mem::take(&mut line))?);
                }
            }
        }
        if !line.trim().is_empty() {
            out.push(Instruction::parse(&line)?);
        }
    }
    Ok(out)
}

impl Instruction {
    /// Parses one instruction line (`CMD ["sh"]`, `env A=1 B="2 3"`, ...); the name is
    /// case-insensitive.
    pub fn parse(line: &str) -> Result<Instruction, DockerfileError> {
        let line = line.trim();
        let (name, rest) = line
            .split_once(char::is_whitespace)
            .map(|(n, r)| (n, r.trim()))
            .unwrap_or((line, ""));
        let upper = name.to_ascii_uppercase();
        Ok(match upper.as_str() {
            "CMD" => Instruction::Cmd(command_line(rest, "CMD")?),
            "ENTRYPOINT" => Instruction::Entrypoint(command_line(rest, "ENTRYPOINT")?),
            "ENV" => Instruction::Env(name_values(rest, "ENV")?),
            "LABEL" => Instruction::Label(name_values(rest, "LABEL")?),
            "EXPOSE" => Instruction::Expose(at_least_one(words::split(rest)?, "EXPOSE")?),
            "VOLUME" => Instruction::Volume(volumes(rest)?),
            "USER" => Instruction::User(one(rest, "USER")?),
            "WORKDIR" => Instruction::Workdir(one(rest, "WORKDIR")?),
            "STOPSIGNAL" => Instruction::StopSignal(one(rest, "STOPSIGNAL")?),
            "ONBUILD" => Instruction::OnBuild(onbuild(rest)?),
            "HEALTHCHECK" => Instruction::Healthcheck(healthcheck(rest)?),
            _ => return Err(DockerfileError::NotAChange(name.to_ascii_lowercase())),
        })
    }
}

/// A JSON array of strings, when `text` is one (Docker falls back to the shell form otherwise).
fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

fn command_line(rest: &str, what: &'static str) -> Result<CommandLine, DockerfileError> {
    if let Some(v) = json_array(rest) {
        return Ok(CommandLine::Exec(v));
    }
    if rest.is_empty() {
        return Err(DockerfileError::NoArguments(what));
    }
    Ok(CommandLine::Shell(rest.to_string()))
}

/// ENV and LABEL: `k=v k2="v 2"`, or the old `KEY value with spaces` form.
fn name_values(rest: &str, what: &'static str) -> Result<Vec<(String, String)>, DockerfileError> {
    let ws = words::split(rest)?;
    let Some(first) = ws.first() else {
        return Err(DockerfileError::NoArguments(what));
    };
    if !first.contains('=') {
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err(DockerfileError::TwoArguments(what));
        }
        return Ok(vec![(first.clone(), value.to_string())]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(DockerfileError::EmptyName(what)),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(DockerfileError::NoEquals(w)),
        })
        .collect()
}

fn at_least_one(ws: Vec<String>, what: &'static str) -> Result<Vec<String>, DockerfileError> {
    if ws.is_empty() {
        return Err(DockerfileError::NoArguments(what));
    }
    Ok(ws)
}

/// The whole rest of the line as one word (Docker's parser takes USER, WORKDIR and STOPSIGNAL
/// as a single string: `WORKDIR /my dir` is the path "/my dir").
fn one(rest: &str, what: &'static str) -> Result<String, DockerfileError> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(DockerfileError::OneArgument(what));
    }
    words::split(rest)?;
    Ok(rest.to_string())
}

fn volumes(rest: &str) -> Result<Vec<String>, DockerfileError> {
    let ws = match json_array(rest) {
        Some(v) => v,
        None => words::split(rest)?,
    };
    let ws = at_least_one(ws, "VOLUME")?;
    if ws.iter().any(|w| w.trim().is_empty()) {
        return Err(DockerfileError::EmptyVolume);
    }
    Ok(ws)
}

fn onbuild(rest: &str) -> Result<String, DockerfileError> {
    let trigger = rest.split_whitespace().next().unwrap_or("");
    match trigger.to_ascii_uppercase().as_str() {
        "" => Err(DockerfileError::NoArguments("ONBUILD")),
        "ONBUILD" => Err(DockerfileError::OnBuildChain),
        t @ ("FROM" | "MAINTAINER") => Err(DockerfileError::OnBuildTrigger(t.to_string())),
        _ => Ok(rest.to_string()),
    }
}

fn healthcheck(rest: &str) -> Result<Healthcheck, DockerfileError> {
    let mut h = Healthcheck::default();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (kv, tail) = flag.split_at(end);
        rest = tail.trim_start();
        let bad = || DockerfileError::HealthFlag(format!("--{kv}"));
        let (k, v) = kv.split_once('=').ok_or_else(bad)?;
        let dur = |name: &str| -> Result<Option<Duration>, DockerfileError> {
            let d = words::go_duration(v).ok_or_else(bad)?;
            if !d.is_zero() && d < Duration::from_millis(1) {
                return Err(DockerfileError::HealthTooShort(format!("--{name}")));
            }
            Ok(Some(d))
        };
        match k {
            "interval" => h.interval = dur(k)?,
            "timeout" => h.timeout = dur(k)?,
            "start-period" => h.start_period = dur(k)?,
            "start-interval" => h.start_interval = dur(k)?,
            "retries" => h.retries = Some(v.parse().ok().filter(|n| *n >= 0).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    let (kind, args) = rest
        .split_once(char::is_whitespace)
        .map(|(k, a)| (k, a.trim()))
        .unwrap_or((rest, ""));
    h.test = match kind.to_ascii_uppercase().as_str() {
        "NONE" if args.is_empty() => vec!["NONE".into()],
        "NONE" => return Err(DockerfileError::HealthNoneArgs),
        "CMD" => match json_array(args) {
            Some(v) if v.is_empty() => return Err(DockerfileError::HealthNoCommand),
            Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
            None if args.is_empty() => return Err(DockerfileError::HealthNoCommand),
            None => vec!["CMD-SHELL".into(), args.to_string()],
        },
        _ => return Err(DockerfileError::HealthType(kind.to_string())),
    };
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of(line: &str) -> Instruction {
        Instruction::parse(line).unwrap()
    }

    #[test]
    fn command_forms_as_docker_parses_them() {
        assert_eq!(
            one_of(r#"CMD ["echo", "hi"]"#),
            Instruction::Cmd(CommandLine::Exec(vec!["echo".into(), "hi".into()]))
        );
        assert_eq!(
            one_of("cmd echo hi"),
            Instruction::Cmd(CommandLine::Shell("echo hi".into()))
        );
        // Not valid JSON: the shell form, as Docker falls back to it.
        assert_eq!(
            one_of("ENTRYPOINT [echo, hi]"),
            Instruction::Entrypoint(CommandLine::Shell("[echo, hi]".into()))
        );
        assert_eq!(
            one_of("ENTRYPOINT []"),
            Instruction::Entrypoint(CommandLine::Exec(vec![]))
        );
        assert!(Instruction::parse("CMD").is_err());
    }

    #[test]
    fn name_values_in_both_forms() {
        assert_eq!(
            one_of(r#"ENV A=1 B="two words""#),
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), r#""two words""#.into())
            ])
        );
        assert_eq!(
            one_of("ENV A one two"),
            Instruction::Env(vec![("A".into(), "one two".into())])
        );
        assert_eq!(
            Instruction::parse("LABEL a=1 b"),
            Err(DockerfileError::NoEquals("b".into()))
        );
        assert_eq!(
            Instruction::parse("ENV A"),
            Err(DockerfileError::TwoArguments("ENV"))
        );
    }

    #[test]
    fn only_config_instructions_are_changes() {
        assert_eq!(
            Instruction::parse("RUN rm -rf /").unwrap_err().to_string(),
            "run is not a valid change command"
        );
        assert!(Instruction::parse("FROM busybox").is_err());
        assert!(Instruction::parse("ONBUILD ONBUILD RUN x").is_err());
        assert!(Instruction::parse("ONBUILD from x").is_err());
        assert_eq!(
            one_of("ONBUILD RUN echo  hi"),
            Instruction::OnBuild("RUN echo  hi".into())
        );
        assert!(Instruction::parse("USER").is_err());
        // USER, WORKDIR and STOPSIGNAL take the whole rest as one word, as Docker's parser.
        assert_eq!(
            one_of("WORKDIR /my dir"),
            Instruction::Workdir("/my dir".into())
        );
        assert!(Instruction::parse(r#"VOLUME [""]"#).is_err());
    }

    #[test]
    fn healthchecks() {
        let h = match one_of("HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost") {
            Instruction::Healthcheck(h) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(h.test, vec!["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(h.interval, Some(Duration::from_secs(5)));
        assert_eq!(h.retries, Some(3));
        assert_eq!(
            one_of(r#"HEALTHCHECK CMD ["true"]"#),
            Instruction::Healthcheck(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                ..Default::default()
            })
        );
        assert_eq!(
            one_of("healthcheck none"),
            Instruction::Healthcheck(Healthcheck {
                test: vec!["NONE".into()],
                ..Default::default()
            })
        );
        for bad in [
            "HEALTHCHECK",
            "HEALTHCHECK CMD",
            "HEALTHCHECK NONE x",
            "HEALTHCHECK --interval=1us CMD true",
            "HEALTHCHECK --every=1s CMD true",
            "HEALTHCHECK --retries=-1 CMD true",
            "HEALTHCHECK RUN true",
        ] {
            assert!(Instruction::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn changes_split_lines_and_continuations() {
        let got = parse_changes(&[
            "# comment\nUSER nobody\n\nWORKDIR /a \\\n".into(),
            "EXPOSE 80".into(),
        ]);
        assert_eq!(
            got.unwrap(),
            vec![
                Instruction::User("nobody".into()),
                Instruction::Workdir("/a".into()),
                Instruction::Expose(vec!["80".into()])
            ]
        );
    }
}
