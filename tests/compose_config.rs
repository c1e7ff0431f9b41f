//! `burrow compose config` against Debian's docker-compose 1.29 `config` (the reference
//! normaliser) on the same project: two -f files, a .env, process variables over it,
//! interpolation forms, `<<` merge keys, `extends` from another file and profiles. Both outputs
//! are parsed and put into one canonical form before they are compared. No containerd needed:
//! both run directly in a temporary project directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use burrow_testsupport::{machine_or_skip, run_with_timeout};
use serde_json::{json, Map, Value};

const FILES: [(&str, &str); 4] = [
    ("compose.yaml", include_str!("compose/compose.yaml")),
    ("common.yaml", include_str!("compose/common.yaml")),
    ("override.yaml", include_str!("compose/override.yaml")),
    (".env", include_str!("compose/dotenv")),
];

/// A project directory with the fixture files.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in FILES {
        std::fs::write(dir.path().join(name), text).expect("write fixture");
    }
    dir
}

/// `program args` in `dir` with only PATH, HOME and the test's variables in its environment.
fn run(dir: &Path, program: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .envs(vars.iter().copied());
    run_with_timeout(&mut cmd, Duration::from_secs(60))
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const VARS: [(&str, &str); 3] = [
    ("EXTRA_VALUE", "from-env"),
    ("PLAIN", "plain-env"),
    ("GREETING", "from process"),
];
const ARGS: [&str; 6] = [
    "-f",
    "compose.yaml",
    "-f",
    "override.yaml",
    "--profile",
    "debug",
];

fn docker_compose(dir: &Path, extra: &[&str]) -> String {
    let args: Vec<&str> = ARGS
        .iter()
        .chain(["config"].iter())
        .chain(extra)
        .copied()
        .collect();
    ok(
        &run(dir, "docker-compose", &args, &VARS),
        "docker-compose config",
    )
}

fn burrow(dir: &Path, extra: &[&str]) -> Output {
    let args: Vec<&str> = ["compose"]
        .iter()
        .chain(ARGS.iter())
        .chain(["config"].iter())
        .chain(extra)
        .copied()
        .collect();
    run(dir, env!("CARGO_BIN_EXE_burrow"), &args, &VARS)
}

#[test]
fn config_matches_docker_compose() {
    let _machine = machine_or_skip!();
    let dir = project();
    let reference: Value =
        serde_yaml::from_str(&docker_compose(dir.path(), &[])).expect("docker-compose YAML");
    let out = burrow(dir.path(), &["--format", "json"]);
    let ours: Value = serde_json::from_str(&ok(&out, "burrow compose config")).expect("JSON");
    let want = canonical(&reference);
    // The reference really holds the merged, extended, interpolated project.
    assert_eq!(
        want["services"]["web"]["ports"].as_array().unwrap().len(),
        4,
        "{want:#}"
    );
    assert_eq!(
        want["services"]["db"]["environment"]["BASE"], "1",
        "{want:#}"
    );
    assert_eq!(canonical(&ours), want);

    // The YAML output says the same, and loads again as the same project.
    let text = ok(&burrow(dir.path(), &[]), "config (yaml)");
    let yaml: Value = serde_yaml::from_str(&text).expect("YAML");
    assert_eq!(canonical(&yaml), canonical(&reference));
    std::fs::write(dir.path().join("rendered.yaml"), &text).unwrap();
    let bin = env!("CARGO_BIN_EXE_burrow");
    let again = [
        "compose",
        "-f",
        "rendered.yaml",
        "--profile",
        "debug",
        "config",
    ];
    let again = ok(&run(dir.path(), bin, &again, &[]), "config of config");
    assert_eq!(again, text);

    // --services, --volumes, --profiles name the same things (as sets: the orders differ).
    for flag in ["--services", "--volumes", "--profiles"] {
        let theirs = lines(&docker_compose(dir.path(), &[flag]));
        let mine = lines(&ok(&burrow(dir.path(), &[flag]), flag));
        assert_eq!(mine, theirs, "{flag}");
    }
    assert_eq!(ok(&burrow(dir.path(), &["-q"]), "-q"), "");
}

#[test]
fn config_errors_and_warnings() {
    let _machine = machine_or_skip!();
    let dir = project();
    // ${GREETING:?...} with GREETING nowhere: both refuse; burrow names the file and key.
    std::fs::write(dir.path().join(".env"), "WEB_PORT=80\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_burrow");
    let out = run(dir.path(), bin, &["compose", "config"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("compose.yaml");
    let want = format!(
        "{}: services.web.environment[0]: required variable GREETING is missing a value: set GREETING",
        file.display()
    );
    assert!(err.contains(&want), "{err}");
    let theirs = run(dir.path(), "docker-compose", &["config"], &[]);
    assert!(
        !theirs.status.success(),
        "docker-compose accepted a missing required variable"
    );

    // An unknown key (a misspelt one loses what it meant): both refuse the file; burrow names
    // the file and the key's path.
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    colour: blue\n",
    )
    .unwrap();
    let out = run(dir.path(), bin, &["compose", "config", "--services"], &[]);
    assert!(!out.status.success(), "an unknown key was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}: services.web.colour: unknown key",
        dir.path().join("compose.yaml").display()
    );
    assert!(err.contains(&want), "{err}");
    let theirs = run(dir.path(), "docker-compose", &["config"], &[]);
    assert!(
        !theirs.status.success(),
        "docker-compose accepted an unknown key"
    );
}

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Both outputs in one form: services with the keys both tools know, lists in a fixed order,
/// short syntaxes expanded, defaults spelled out; top-level network and volume names.
fn canonical(doc: &Value) -> Value {
    let services: Map<String, Value> = doc["services"]
        .as_object()
        .expect("services")
        .iter()
        .map(|(name, s)| (name.clone(), service(s)))
        .collect();
    let names = |key: &str| -> Vec<String> {
        let mut v: Vec<String> = doc[key]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    json!({ "services": services, "networks": names("networks"), "volumes": names("volumes") })
}

fn service(s: &Value) -> Value {
    let mut out = Map::new();
    for key in ["image", "restart", "network_mode"] {
        out.insert(key.into(), s[key].clone());
    }
    for key in ["cap_add", "tmpfs", "profiles"] {
        out.insert(key.into(), sorted(strings(&s[key])));
    }
    out.insert("command".into(), command(&s["command"]));
    out.insert("environment".into(), env_map(&s["environment"]));
    out.insert("labels".into(), env_map(&s["labels"]));
    out.insert("ports".into(), ports(&s["ports"]));
    out.insert("volumes".into(), volumes(&s["volumes"]));
    out.insert("networks".into(), networks(&s["networks"]));
    out.insert("depends_on".into(), depends_on(&s["depends_on"]));
    out.insert("healthcheck".into(), healthcheck(&s["healthcheck"]));
    Value::Object(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(scalar).collect(),
        Value::Null => Vec::new(),
        other => vec![scalar(other)],
    }
}

fn sorted(mut v: Vec<String>) -> Value {
    v.sort();
    json!(v)
}

/// A command as argv: a string is split like a shell would (quotes, no expansion).
fn command(v: &Value) -> Value {
    match v {
        Value::String(s) => json!(shell_words(s)),
        other => json!(strings(other)),
    }
}

fn shell_words(s: &str) -> Vec<String> {
    let (mut words, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// environment/labels as a map of strings (list entries split at the first `=`).
fn env_map(v: &Value) -> Value {
    let mut out = BTreeMap::new();
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.insert(k.clone(), scalar(v));
        }),
        Value::Array(a) => a.iter().map(scalar).for_each(|e| {
            let (k, v) = e.split_once('=').unwrap_or((&e, ""));
            out.insert(k.to_string(), v.to_string());
        }),
        _ => {}
    }
    json!(out)
}

/// Ports as sorted "host_ip|published|target|protocol", ranges expanded.
fn ports(v: &Value) -> Value {
    let mut out = Vec::new();
    for p in v.as_array().into_iter().flatten() {
        match p {
            Value::Object(m) => out.push(format!(
                "{}|{}|{}|{}",
                scalar(&m.get("host_ip").cloned().unwrap_or_default()),
                scalar(&m.get("published").cloned().unwrap_or_default()),
                scalar(&m["target"]),
                m.get("protocol").and_then(Value::as_str).unwrap_or("tcp")
            )),
            other => out.extend(short_port(&scalar(other))),
        }
    }
    sorted(out)
}

/// `[ip:][published:]target[/proto]`, each side possibly a range.
fn short_port(s: &str) -> Vec<String> {
    let (spec, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (target, published, ip) = (
        parts[0],
        parts.get(1).copied().unwrap_or(""),
        parts.get(2).copied().unwrap_or(""),
    );
    let range = |r: &str| -> Vec<String> {
        match r.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap())
                .map(|n| n.to_string())
                .collect(),
            None => vec![r.to_string()],
        }
    };
    let targets = range(target);
    let published = if published.is_empty() {
        vec![String::new(); targets.len()]
    } else {
        range(published)
    };
    targets
        .iter()
        .zip(published)
        .map(|(t, p)| format!("{ip}|{p}|{t}|{proto}"))
        .collect()
}

/// Volumes as sorted "source|target|ro" (`:rw` and no mode are the same).
fn volumes(v: &Value) -> Value {
    let mut out = Vec::new();
    for m in v.as_array().into_iter().flatten() {
        out.push(match m {
            Value::Object(o) => format!(
                "{}|{}|{}",
                scalar(&o.get("source").cloned().unwrap_or_default()),
                scalar(&o["target"]),
                o.get("read_only").and_then(Value::as_bool).unwrap_or(false)
            ),
            other => {
                let s = scalar(other);
                let parts: Vec<&str> = s.split(':').collect();
                let (src, dst) = match parts.len() {
                    1 => ("", parts[0]),
                    _ => (parts[0], parts[1]),
                };
                let ro = parts
                    .get(2)
                    .is_some_and(|m| m.split(',').any(|o| o == "ro"));
                format!("{src}|{dst}|{ro}")
            }
        });
    }
    sorted(out)
}

/// Networks as name → sorted aliases.
fn networks(v: &Value) -> Value {
    let mut out = BTreeMap::new();
    match v {
        Value::Array(a) => a.iter().for_each(|n| {
            out.insert(scalar(n), json!([]));
        }),
        Value::Object(m) => m.iter().for_each(|(n, cfg)| {
            out.insert(n.clone(), sorted(strings(&cfg["aliases"])));
        }),
        _ => {}
    }
    json!(out)
}

/// depends_on as name → condition.
fn depends_on(v: &Value) -> Value {
    let mut out = BTreeMap::new();
    match v {
        Value::Array(a) => a.iter().for_each(|n| {
            out.insert(scalar(n), "service_started".to_string());
        }),
        Value::Object(m) => m.iter().for_each(|(n, d)| {
            let c = d["condition"].as_str().unwrap_or("service_started");
            out.insert(n.clone(), c.to_string());
        }),
        _ => {}
    }
    json!(out)
}

/// healthcheck with its test as argv (`CMD-SHELL x` and a plain string are the same).
fn healthcheck(v: &Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let test = match &v["test"] {
        Value::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        other => strings(other),
    };
    json!({
        "test": test,
        "interval": scalar(&v["interval"]),
        "timeout": scalar(&v["timeout"]),
        "retries": scalar(&v["retries"]),
        "start_period": scalar(&v["start_period"]),
        "disable": v["disable"].as_bool().unwrap_or(false),
    })
}
