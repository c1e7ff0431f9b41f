//! A parsed Dockerfile into its stages: the ARGs before the first FROM (the global scope FROM
//! lines expand with), each stage's base and name, and which stages a target needs (its base
//! stages and those it copies from, transitively).

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::file::{Line, ParseError};
use crate::dockerfile::words;

/// ARGs every build has without declaring them (BuildKit's platform args are global; the proxy
/// args may be given with --build-arg without an ARG line).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// One stage: `FROM base [AS name]` and the instructions after it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    pub name: Option<String>,
    /// The base as expanded with the global ARGs (`scratch`, an image, or a stage's name).
    pub base: String,
    /// `FROM --platform=...` (expanded with the global ARGs): the base image's platform to use
    /// instead of this host's.
    pub platform: Option<crate::images::manifest::Platform>,
    pub from: Line,
    pub steps: Vec<Line>,
}

/// The stages of a Dockerfile and its global ARGs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Global ARG values (declared before the first FROM, build args applied), plus the
    /// predefined platform ARGs.
    pub global: BTreeMap<String, String>,
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Splits `lines` into stages; `build_args` override ARG defaults.
    pub fn new(
        lines: Vec<Line>,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Plan, ParseError> {
        let mut global = predefined();
        let mut stages: Vec<Stage> = Vec::new();
        for line in lines {
            match line.name.as_str() {
                "FROM" => {
                    let s = from(stages.len(), line, &global)?;
                    stages.push(s);
                }
                _ => match stages.last_mut() {
                    Some(s) => s.steps.push(line),
                    None if line.name == "ARG" => {
                        for (k, default) in arg_decls(&line)? {
                            // A default is a word like any other: unquoted, and expanded
                            // with the global ARGs before it.
                            let value = match (build_args.get(&k), default) {
                                (Some(v), _) => Some(v.clone()),
                                (None, Some(d)) => {
                                    let env: Vec<String> =
                                        global.iter().map(|(k, v)| format!("{k}={v}")).collect();
                                    Some(
                                        words::process(&d, &env)
                                            .map_err(|e| ParseError::at(line.line, e))?,
                                    )
                                }
                                (None, None) => None,
                            };
                            match value {
                                Some(v) => global.insert(k, v),
                                None => global.remove(&k),
                            };
                        }
                    }
                    None => {
                        return Err(ParseError::new(
                            line.line,
                            format!(
                                "{} before the first FROM: only ARG may come first",
                                line.name
                            ),
                        ))
                    }
                },
            }
        }
        if stages.is_empty() {
            return Err(ParseError::new(1, "the Dockerfile has no FROM instruction"));
        }
        Ok(Plan { global, stages })
    }

    /// The stage `name` names (a stage name, case-insensitive, or an index).
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }

    /// The stage to build (`--target`, else the last one).
    pub fn target(&self, target: Option<&str>) -> Result<&Stage, String> {
        match target {
            None => Ok(self.stages.last().expect("a plan has a stage")),
            Some(t) => self.stage(t).ok_or_else(|| {
                let names: Vec<&str> = self
                    .stages
                    .iter()
                    .filter_map(|s| s.name.as_deref())
                    .collect();
                format!(
                    "target stage {t:?} could not be found (the Dockerfile's named stages: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )
            }),
        }
    }

    /// The indexes of the stages `target` needs, itself included, in Dockerfile order.
    pub fn needed(&self, target: usize) -> BTreeSet<usize> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let s = &self.stages[i];
            let mut refs = vec![s.base.clone()];
            refs.extend(s.steps.iter().flat_map(sources));
            for r in refs {
                if let Some(dep) = self.stage(&r) {
                    if dep.index < i {
                        todo.push(dep.index);
                    }
                }
            }
        }
        need
    }
}

/// The images or stages (names unexpanded) a step reads from: a COPY's `--from`, and the
/// `from=` of a RUN's `--mount`s.
pub fn sources(line: &Line) -> Vec<String> {
    match line.name.as_str() {
        "COPY" => line
            .flags
            .iter()
            .filter(|(k, _)| k == "from")
            .filter_map(|(_, v)| v.clone())
            .collect(),
        "RUN" => line
            .flags
            .iter()
            .filter(|(k, _)| k == "mount")
            .filter_map(|(_, v)| v.as_deref())
            .flat_map(|v| v.split(','))
            .filter_map(|field| field.strip_prefix("from="))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The platform ARGs BuildKit defines in the global scope (this host's platform).
fn predefined() -> BTreeMap<String, String> {
    let host = crate::images::manifest::Platform::host();
    let platform = host.display();
    let mut m = BTreeMap::new();
    for prefix in ["TARGET", "BUILD"] {
        m.insert(format!("{prefix}PLATFORM"), platform.clone());
        m.insert(format!("{prefix}OS"), host.os.clone());
        m.insert(format!("{prefix}ARCH"), host.architecture.clone());
        m.insert(
            format!("{prefix}VARIANT"),
            host.variant.clone().unwrap_or_default(),
        );
    }
    m
}

/// `ARG NAME[=default] ...` into names and defaults (the default still unexpanded).
pub fn arg_decls(line: &Line) -> Result<Vec<(String, Option<String>)>, ParseError> {
    let ws = words::split(&line.rest).map_err(|e| ParseError::at(line.line, e))?;
    if ws.is_empty() {
        return Err(ParseError::new(
            line.line,
            "ARG requires at least one argument",
        ));
    }
    Ok(ws
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect())
}

fn from(index: usize, line: Line, global: &BTreeMap<String, String>) -> Result<Stage, ParseError> {
    let env: Vec<String> = global.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let ws = words::split(&line.rest).map_err(|e| ParseError::at(line.line, e))?;
    let (image, name) = match ws.as_slice() {
        [image] => (image, None),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            (image, Some(name.to_ascii_lowercase()))
        }
        _ => {
            return Err(ParseError::new(
                line.line,
                "FROM takes an image and an optional AS name: FROM image[:tag] [AS name]",
            ))
        }
    };
    let base = words::process(image, &env).map_err(|e| ParseError::at(line.line, e))?;
    let mut platform = None;
    for (flag, value) in &line.flags {
        match (flag.as_str(), value) {
            ("platform", Some(v)) => {
                let v = words::process(v, &env).map_err(|e| ParseError::at(line.line, e))?;
                let p = crate::images::manifest::Platform::parse(&v)
                    .map_err(|e| ParseError::new(line.line, format!("FROM --platform: {e}")))?;
                platform = Some(p);
            }
            _ => {
                return Err(ParseError::new(
                    line.line,
                    format!("FROM: unknown flag --{flag} (FROM takes --platform=os/arch)"),
                ))
            }
        }
    }
    if base.is_empty() {
        return Err(ParseError::new(
            line.line,
            format!("FROM {image} expands to nothing: give the ARG a value (--build-arg)"),
        ));
    }
    Ok(Stage {
        index,
        name,
        base,
        platform,
        from: line,
        steps: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::file::parse;

    fn plan(text: &str, args: &[(&str, &str)]) -> Plan {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Plan::new(parse(text).unwrap(), &args).unwrap()
    }

    #[test]
    fn global_args_expand_from() {
        let p = plan(
            "ARG TAG=1.36\nARG REG\nFROM ${REG:-docker.io}/busybox:$TAG AS b\nRUN x\n",
            &[("TAG", "2")],
        );
        assert_eq!(p.stages[0].base, "docker.io/busybox:2");
        assert_eq!(p.stages[0].name.as_deref(), Some("b"));
        assert_eq!(p.stages[0].steps.len(), 1);
        assert!(p.global.contains_key("TARGETARCH"));
    }

    #[test]
    fn global_arg_defaults_are_words_and_from_takes_platform() {
        let p = plan(
            "ARG TAG=\"1.36\"\nARG REG=reg.local\nARG IMG=${REG}/bb\nARG UNSET\nFROM --platform=$BUILDPLATFORM $IMG:$TAG${UNSET-x}\nFROM --platform=linux/arm64 a\n",
            &[],
        );
        assert_eq!(p.stages[0].base, "reg.local/bb:1.36x");
        assert_eq!(
            p.stages[0].platform,
            Some(crate::images::manifest::Platform::host())
        );
        assert_eq!(p.stages[1].platform.as_ref().unwrap().architecture, "arm64");
        let bad = Plan::new(parse("FROM --bogus=1 a\n").unwrap(), &BTreeMap::new());
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("unknown flag --bogus"));
    }

    #[test]
    fn targets_need_their_dependencies_only() {
        let text = "FROM a AS base\nFROM base AS compile\nRUN make\nFROM a AS unused\nFROM scratch AS final\nCOPY --from=compile /x /x\nFROM scratch AS mounted\nRUN --mount=type=bind,from=unused,target=/u true\n";
        let p = plan(text, &[]);
        let t = p.target(Some("final")).unwrap().index;
        assert_eq!(p.needed(t).into_iter().collect::<Vec<_>>(), vec![0, 1, 3]);
        let t = p.target(None).unwrap().index;
        assert_eq!(p.needed(t).into_iter().collect::<Vec<_>>(), vec![2, 4]);
        let t = p.target(Some("COMPILE")).unwrap().index;
        assert_eq!(p.needed(t).into_iter().collect::<Vec<_>>(), vec![0, 1]);
        assert!(p
            .target(Some("nope"))
            .unwrap_err()
            .contains("base, compile, unused, final, mounted"));
    }

    #[test]
    fn bad_plans_name_the_line() {
        let err = Plan::new(parse("RUN x\nFROM a").unwrap(), &BTreeMap::new()).unwrap_err();
        assert_eq!(err.line, 1);
        let err = Plan::new(parse("FROM a b c d").unwrap(), &BTreeMap::new()).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(Plan::new(parse("ARG X\n").unwrap(), &BTreeMap::new()).is_err());
    }
}
