//! Image-config instructions applied to an image's config (the `config` object of an OCI/Docker
//! image config: Cmd, Entrypoint, Env, ExposedPorts, Labels, OnBuild, User, Volumes,
//! WorkingDir, StopSignal, Healthcheck), as Docker's builder applies them.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Map, Value};

use super::instruction::{CommandLine, Healthcheck, Instruction};
use super::words::process;
use super::DockerfileError;

/// Applies `changes` in order to `config` (made an object if it is not one).
pub fn apply_changes(config: &mut Value, changes: &[Instruction]) -> Result<(), DockerfileError> {
    if !config.is_object() {
        *config = Value::Object(Map::new());
    }
    let mut cmd_set = false;
    for change in changes {
        apply_step(config, change, &[], &mut cmd_set)?;
    }
    Ok(())
}

/// Applies one instruction of a Dockerfile stage to `c` (an object), with the build's `args`
/// (`KEY=VALUE`, below the config's Env) in scope for its variables; `cmd_set` says whether a
/// CMD came earlier in the stage (an ENTRYPOINT then keeps it).
pub fn apply_step(
    c: &mut Value,
    change: &Instruction,
    args: &[String],
    cmd_set: &mut bool,
) -> Result<(), DockerfileError> {
    if !c.is_object() {
        *c = Value::Object(Map::new());
    }
    let env = strings(c, "Env");
    let scope: Vec<String> = args.iter().chain(env.iter()).cloned().collect();
    let expand = |w: &str| process(w, &scope);
    match change {
        Instruction::Cmd(line) => {
            c["Cmd"] = json!(command(c, line));
            *cmd_set = true;
        }
        Instruction::Entrypoint(line) => {
            let argv = command(c, line);
            c["Entrypoint"] = if argv.is_empty() {
                Value::Null
            } else {
                json!(argv)
            };
            // Docker: ENTRYPOINT clears the Cmd it inherited (not one set before it here).
            if !*cmd_set {
                c["Cmd"] = Value::Null;
            }
        }
        Instruction::Env(kvs) => {
            // Every pair is expanded with the environment from before the instruction, as
            // Docker does (`ENV A=bye B=$A` gives B A's old value).
            let mut env = env.clone();
            for (k, v) in kvs {
                let (k, v) = (expand(k)?, expand(v)?);
                let entry = format!("{k}={v}");
                match env
                    .iter_mut()
                    .find(|e| e.split_once('=').map(|p| p.0) == Some(&k))
                {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
            c["Env"] = json!(env);
        }
        Instruction::Label(kvs) => {
            for (k, v) in kvs {
                let (k, v) = (expand(k)?, expand(v)?);
                object(c, "Labels").insert(k, json!(v));
            }
        }
        Instruction::Expose(ports) => {
            for p in ports {
                for port in expose(&expand(p)?)? {
                    object(c, "ExposedPorts").insert(port, json!({}));
                }
            }
        }
        Instruction::Volume(paths) => {
            for p in paths {
                let p = expand(p)?;
                if p.trim().is_empty() {
                    return Err(DockerfileError::EmptyVolume);
                }
                object(c, "Volumes").insert(p, json!({}));
            }
        }
        Instruction::OnBuild(trigger) => {
            let mut all = strings(c, "OnBuild");
            all.push(trigger.clone());
            c["OnBuild"] = json!(all);
        }
        Instruction::User(u) => c["User"] = json!(expand(u)?),
        Instruction::Workdir(w) => {
            let current = c["WorkingDir"].as_str().unwrap_or("").to_string();
            c["WorkingDir"] = json!(workdir(&current, &expand(w)?));
        }
        Instruction::StopSignal(s) => {
            let s = expand(s)?;
            signal(&s)?;
            c["StopSignal"] = json!(s);
        }
        Instruction::Healthcheck(h) => c["Healthcheck"] = health_json(h),
    }
    Ok(())
}

/// The strings of `c[key]` (none when it is missing or null).
fn strings(c: &Value, key: &str) -> Vec<String> {
    c.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// `c[key]` as an object, made one if it is missing or null.
fn object<'a>(c: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !c[key].is_object() {
        c[key] = Value::Object(Map::new());
    }
    c[key].as_object_mut().expect("made an object above")
}

/// The argv of a command line: the shell form runs under the config's Shell or `/bin/sh -c`.
fn command(c: &Value, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(text) => {
            let mut shell = strings(c, "Shell");
            if shell.is_empty() {
                shell = vec!["/bin/sh".into(), "-c".into()];
            }
            shell.push(text.clone());
            shell
        }
    }
}

/// EXPOSE's `PORT[-PORT][/PROTO]` as Docker's `PORT/PROTO` keys.
fn expose(spec: &str) -> Result<Vec<String>, DockerfileError> {
    let bad = || DockerfileError::Expose(spec.to_string());
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let first: u16 = a.parse().map_err(|_| bad())?;
    let last: u16 = b.parse().map_err(|_| bad())?;
    if first == 0 || last < first || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// WORKDIR: an absolute path as given, a relative one joined to the current (from `/`).
fn workdir(current: &str, requested: &str) -> String {
    if requested.starts_with('/') {
        return requested.to_string();
    }
    let joined = Path::new("/").join(current).join(requested);
    let mut out = PathBuf::from("/");
    for part in joined.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out.display().to_string()
}

/// Checks a STOPSIGNAL value: a number, or a signal name with or without `SIG`.
fn signal(s: &str) -> Result<(), DockerfileError> {
    if s.parse::<u32>().is_ok_and(|n| n > 0) {
        return Ok(());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|_| ())
        .map_err(|_| DockerfileError::Signal(s.to_string()))
}

/// The Healthcheck object as Docker writes it (durations in nanoseconds, unset ones left out).
fn health_json(h: &Healthcheck) -> Value {
    let mut m = Map::new();
    m.insert("Test".into(), json!(h.test));
    for (key, d) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(d) = d.filter(|d| !d.is_zero()) {
            m.insert(key.into(), json!(d.as_nanos() as u64));
        }
    }
    if let Some(r) = h.retries.filter(|r| *r != 0) {
        m.insert("Retries".into(), json!(r));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::super::parse_changes;
    use super::*;

    fn applied(base: Value, changes: &[&str]) -> Value {
        let mut c = base;
        let changes: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &parse_changes(&changes).unwrap()).unwrap();
        c
    }

    #[test]
    fn every_config_instruction() {
        let c = applied(
            json!({"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"]}),
            &[
                r#"ENV A=new B="$A and ${PATH}""#,
                "LABEL version=$A \"with space\"=yes",
                "EXPOSE 80 53/udp 8000-8001",
                r#"VOLUME ["/data", "/logs"]"#,
                "USER nobody:nogroup",
                "WORKDIR /srv",
                "WORKDIR app/../www",
                "STOPSIGNAL SIGINT",
                "ONBUILD RUN echo hi",
                "CMD echo $A",
                "HEALTHCHECK --interval=30s --timeout=3s --retries=2 CMD [\"true\"]",
            ],
        );
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=new", "B=old and /bin"]));
        assert_eq!(c["Labels"], json!({"version": "new", "with space": "yes"}));
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(c["User"], "nobody:nogroup");
        assert_eq!(c["WorkingDir"], "/srv/www");
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(c["OnBuild"], json!(["RUN echo hi"]));
        // CMD is not expanded (the shell does that when it runs).
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $A"]));
        assert_eq!(
            c["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 30_000_000_000u64,
                   "Timeout": 3_000_000_000u64, "Retries": 2})
        );
    }

    #[test]
    fn build_args_expand_below_env() {
        let args = vec!["V=arg".to_string(), "ONLY=a".to_string()];
        let mut c = json!({"Env": ["V=env"]});
        let mut cmd_set = false;
        for line in [
            "LABEL v=$V only=${ONLY:-none}",
            "ENV W=${ONLY}-$V",
            "WORKDIR /x/$ONLY",
        ] {
            let i = Instruction::parse(line).unwrap();
            apply_step(&mut c, &i, &args, &mut cmd_set).unwrap();
        }
        assert_eq!(c["Labels"], json!({"v": "env", "only": "a"}));
        // An ARG is not kept in the image's Env, only used to expand.
        assert_eq!(c["Env"], json!(["V=env", "W=a-env"]));
        assert_eq!(c["WorkingDir"], json!("/x/a"));
        // CMD then ENTRYPOINT in one stage keeps the CMD (across separate steps too).
        for line in ["CMD [\"a\"]", "ENTRYPOINT [\"e\"]"] {
            apply_step(
                &mut c,
                &Instruction::parse(line).unwrap(),
                &args,
                &mut cmd_set,
            )
            .unwrap();
        }
        assert_eq!(c["Cmd"], json!(["a"]));
    }

    #[test]
    fn entrypoint_clears_an_inherited_cmd_only() {
        let c = applied(json!({"Cmd": ["sh"]}), &[r#"ENTRYPOINT ["top", "-b"]"#]);
        assert_eq!(c["Entrypoint"], json!(["top", "-b"]));
        assert_eq!(c["Cmd"], Value::Null);
        let c = applied(
            json!({"Cmd": ["sh"]}),
            &[r#"CMD ["-n", "1"]"#, "ENTRYPOINT top"],
        );
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "top"]));
        assert_eq!(c["Cmd"], json!(["-n", "1"]));
        let c = applied(json!({"Shell": ["/bin/bash", "-xc"]}), &["CMD ls"]);
        assert_eq!(c["Cmd"], json!(["/bin/bash", "-xc", "ls"]));
        let c = applied(Value::Null, &["HEALTHCHECK NONE"]);
        assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            "EXPOSE 0",
            "EXPOSE 80/icmp",
            "EXPOSE 9-8",
            "STOPSIGNAL SIGNOPE",
        ] {
            let mut c = json!({});
            let changes = parse_changes(&[bad.to_string()]).unwrap();
            assert!(apply_changes(&mut c, &changes).is_err(), "{bad}");
        }
        assert_eq!(workdir("", "a/b"), "/a/b");
        assert_eq!(workdir("/x", "/abs"), "/abs");
    }
}
