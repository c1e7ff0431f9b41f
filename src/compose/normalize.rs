//! Normalising a merged Compose document: relative paths made absolute (bind sources, build
//! contexts, env_file, label_file, secret/config files; `~` expanded), env_file and label_file
//! contents merged under each service's own environment and labels, and the project name.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::interpolate::Lookup;
use super::{envfile, merge};

/// `p` absolute: `~` is $HOME, a relative path is taken from `dir`.
pub fn absolute(p: &str, dir: &Path) -> String {
    let home = || std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let path = if p == "~" {
        PathBuf::from(home())
    } else if let Some(rest) = p.strip_prefix("~/") {
        PathBuf::from(home()).join(rest)
    } else {
        dir.join(p)
    };
    clean(&path).display().to_string()
}

/// Removes `.` and `..` components lexically.
fn clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn is_remote(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@")
}

/// Makes the relative paths of one service absolute from `dir`.
pub fn rebase(svc: &mut Mapping, dir: &Path) {
    if let Some(b) = svc.get_mut("build") {
        match b {
            // A remote context (a Git repository, a URL) stays as written.
            Value::String(s) if !is_remote(s) => *s = absolute(s, dir),
            Value::Mapping(m) => {
                if let Some(Value::String(s)) = m.get_mut("context") {
                    if !is_remote(s) {
                        *s = absolute(s, dir);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(files) = svc.get_mut("label_file") {
        for_each_item(files, |item| {
            if let Value::String(s) = item {
                *s = absolute(s, dir);
            }
        });
    }
    if let Some(env) = svc.get_mut("env_file") {
        for_each_item(env, |item| match item {
            Value::String(s) => *s = absolute(s, dir),
            Value::Mapping(m) => {
                if let Some(Value::String(s)) = m.get_mut("path") {
                    *s = absolute(s, dir);
                }
            }
            _ => {}
        });
    }
    if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
        vols.iter_mut().for_each(|v| volume(v, dir));
    }
}

fn for_each_item(v: &mut Value, mut f: impl FnMut(&mut Value)) {
    match v {
        Value::Sequence(items) => items.iter_mut().for_each(f),
        other => f(other),
    }
}

/// A bind mount's relative source (`./x:/y`, `~/x:/y`, long form `type: bind`) made absolute.
fn volume(v: &mut Value, dir: &Path) {
    match v {
        Value::String(s) => {
            if let Some((src, rest)) = s.split_once(':') {
                if src.starts_with('.') || src.starts_with('~') {
                    *s = format!("{}:{rest}", absolute(src, dir));
                }
            }
        }
        Value::Mapping(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
            if let Some(Value::String(s)) = m.get_mut("source") {
                *s = absolute(s, dir);
            }
        }
        _ => {}
    }
}

/// Makes every relative path of the document absolute from the project directory.
pub fn paths(doc: &mut Mapping, dir: &Path) {
    if let Some(Value::Mapping(services)) = doc.get_mut("services") {
        for svc in services.values_mut() {
            if let Value::Mapping(m) = svc {
                rebase(m, dir);
            }
        }
    }
    for top in ["secrets", "configs"] {
        if let Some(Value::Mapping(items)) = doc.get_mut(top) {
            for item in items.values_mut() {
                if let Some(Value::String(s)) = item.get_mut("file") {
                    *s = absolute(s, dir);
                }
            }
        }
    }
}

/// Merges each service's env_file contents under its own environment (then drops env_file),
/// and gives bare `KEY` entries their value from `vars` where it has one.
/// `sources` names the Compose files in errors.
pub fn environment(
    doc: &mut Mapping,
    vars: &dyn Lookup,
    sources: &str,
) -> Result<(), ComposeError> {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return Ok(());
    };
    for (name, svc) in services.iter_mut() {
        let Value::Mapping(svc) = svc else { continue };
        let mut env = Mapping::new();
        if let Some(files) = svc.remove("env_file") {
            env_files(&files, vars, &mut env).map_err(|e| ComposeError::Invalid {
                files: sources.to_string(),
                line: None,
                key: format!("services.{}.env_file", super::keys::key_text(name)),
                message: e.to_string(),
            })?;
        }
        if let Some(own) = svc.get("environment") {
            merge::deep(&mut env, merge::to_map(own, "environment"));
        }
        if let Some(files) = svc.remove("label_file") {
            let mut labels = Mapping::new();
            label_files(&files, vars, &mut labels).map_err(|e| ComposeError::Invalid {
                files: sources.to_string(),
                line: None,
                key: format!("services.{}.label_file", super::keys::key_text(name)),
                message: e.to_string(),
            })?;
            if let Some(own) = svc.get("labels") {
                merge::deep(&mut labels, merge::to_map(own, "labels"));
            }
            svc.insert(Value::from("labels"), Value::Mapping(labels));
        }
        for (k, v) in env.iter_mut() {
            if v.is_null() {
                if let Some(val) = vars.get(&super::keys::key_text(k)) {
                    *v = Value::from(val);
                }
            }
        }
        if !env.is_empty() {
            svc.insert(Value::from("environment"), Value::Mapping(env));
        }
    }
    Ok(())
}

/// Reads env_file's files in order into `env` (a bare KEY from `vars`); a missing file is an
/// error unless it says `required: false`.
fn env_files(files: &Value, vars: &dyn Lookup, env: &mut Mapping) -> Result<(), ComposeError> {
    for (path, required) in env_file_list(files) {
        if !required && !Path::new(&path).exists() {
            continue;
        }
        for (k, v) in envfile::read(Path::new(&path), vars)? {
            if let Some(v) = v.or_else(|| vars.get(&k)) {
                env.insert(Value::from(k), Value::from(v));
            }
        }
    }
    Ok(())
}

/// Reads label_file's files (KEY=VALUE lines, as env files) in order into `labels`.
fn label_files(files: &Value, vars: &dyn Lookup, labels: &mut Mapping) -> Result<(), ComposeError> {
    let paths = match files {
        Value::Sequence(s) => s.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().into_iter().collect::<Vec<_>>(),
    };
    for path in paths {
        for (k, v) in envfile::read(Path::new(path), vars)? {
            labels.insert(Value::from(k), Value::from(v.unwrap_or_default()));
        }
    }
    Ok(())
}

/// env_file's entries: (path, required).
fn env_file_list(v: &Value) -> Vec<(String, bool)> {
    let items = match v {
        Value::Sequence(s) => s.clone(),
        other => vec![other.clone()],
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some((s.clone(), true)),
            Value::Mapping(m) => Some((
                m.get("path")?.as_str()?.to_string(),
                m.get("required").and_then(Value::as_bool).unwrap_or(true),
            )),
            _ => None,
        })
        .collect()
}

/// The project name: -p, else COMPOSE_PROJECT_NAME, else the file's `name:` (these must already
/// be valid), else the project directory's basename lowercased and cleaned.
pub fn project_name(
    flag: Option<&str>,
    env: Option<&str>,
    top: Option<&str>,
    dir: &Path,
) -> Result<String, ComposeError> {
    if let Some(given) = flag.or(env).or(top).filter(|s| !s.is_empty()) {
        return valid(given);
    }
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let cleaned: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    let cleaned = cleaned.trim_start_matches(['_', '-']).to_string();
    if cleaned.is_empty() {
        return Err(ComposeError::ProjectName(base));
    }
    Ok(cleaned)
}

fn valid(name: &str) -> Result<String, ComposeError> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(ComposeError::ProjectName(name.to_string()))
    }
}

/// Extension key holding `restart: on-failure:N`'s N (the model knows `on-failure` alone).
pub const RESTART_RETRIES: &str = "x-burrow-restart-retries";
/// Extension key holding `extra_hosts` entries mapped to `host-gateway` (the model takes IP
/// addresses only).
pub const HOST_GATEWAY_HOSTS: &str = "x-burrow-host-gateway";
/// Extension key holding a volume's `bind.recursive` (the model's bind options lack it).
pub const BIND_RECURSIVE: &str = "x-burrow-recursive";
/// Extension key holding `gpus:` (the model has no such key).
pub const GPUS: &str = "x-burrow-gpus";
/// The `develop.watch` rule keys the model lacks and the extension keys holding them: the
/// `sync+exec` action (held as `sync` plus this key), its `exec`, and `initial_sync`.
pub const WATCH_GAPS: [(&str, &str); 3] = [
    ("action", "x-burrow-action"),
    ("exec", "x-burrow-exec"),
    ("initial_sync", "x-burrow-initial-sync"),
];
/// The lifecycle hooks' keys and the extension keys holding them (the model has neither).
const HOOKS: [(&str, &str); 2] = [
    ("post_start", crate::compose::engine::hooks::POST_START),
    ("pre_stop", crate::compose::engine::hooks::PRE_STOP),
];

/// Undoes [`model_gaps`] in a document made from the model (`compose config` prints what the
/// file said, not burrow's extension keys).
pub fn restore_gaps(doc: &mut Value) {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let Value::Mapping(svc) = svc else { continue };
        if let Some(g) = svc.remove(GPUS) {
            svc.insert(Value::from("gpus"), g);
        }
        for (key, ext) in HOOKS {
            if let Some(h) = svc.remove(ext) {
                svc.insert(Value::from(key), h);
            }
        }
        for rule in watch_rules(svc) {
            for (key, ext) in WATCH_GAPS {
                if let Some(v) = rule.remove(ext) {
                    rule.insert(Value::from(key), v);
                }
            }
        }
        for bind in bind_options(svc) {
            if let Some(v) = bind.remove(BIND_RECURSIVE) {
                bind.insert(Value::from("recursive"), v);
            }
        }
        if let Some(n) = svc.remove(RESTART_RETRIES) {
            let n = n.as_str().map(str::to_string).unwrap_or_default();
            svc.insert(
                Value::from("restart"),
                Value::from(format!("on-failure:{n}")),
            );
        }
        if let Some(Value::Sequence(hosts)) = svc.remove(HOST_GATEWAY_HOSTS) {
            let extra = svc
                .entry(Value::from("extra_hosts"))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            for h in hosts {
                match extra {
                    Value::Mapping(m) => {
                        m.insert(h, Value::from("host-gateway"));
                    }
                    Value::Sequence(l) => {
                        let host = h.as_str().unwrap_or_default();
                        l.push(Value::from(format!("{host}:host-gateway")));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The services `svc` needs to exist before it, besides its `depends_on`: those whose container
/// it joins (`network_mode`, `pid`, `ipc` of `service:NAME`), takes volumes from
/// (`volumes_from: [NAME]`) or links to (`links: [NAME[:ALIAS]]`), as Docker Compose orders them.
fn implicit_dependencies(svc: &Mapping) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["network_mode", "pid", "ipc"] {
        if let Some(name) = svc
            .get(key)
            .and_then(Value::as_str)
            .and_then(|v| v.strip_prefix("service:"))
        {
            out.push(name.to_string());
        }
    }
    if let Some(Value::Sequence(from)) = svc.get("volumes_from") {
        for f in from.iter().filter_map(Value::as_str) {
            if !f.starts_with("container:") {
                out.push(f.split(':').next().unwrap_or(f).to_string());
            }
        }
    }
    if let Some(Value::Sequence(links)) = svc.get("links") {
        for l in links.iter().filter_map(Value::as_str) {
            let name = l.split(':').next().unwrap_or(l).to_string();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// Adds [`implicit_dependencies`] to `depends_on` (started, required) where it lacks them.
fn add_implicit_dependencies(svc: &mut Mapping) {
    let implicit = implicit_dependencies(svc);
    if implicit.is_empty() {
        return;
    }
    let deps = svc
        .entry(Value::from("depends_on"))
        .or_insert_with(|| Value::Sequence(Vec::new()));
    for name in implicit {
        match deps {
            Value::Sequence(list) if !list.iter().any(|d| d.as_str() == Some(name.as_str())) => {
                list.push(Value::from(name));
            }
            Value::Mapping(m) => {
                let mut d = Mapping::new();
                d.insert(Value::from("condition"), Value::from("service_started"));
                m.entry(Value::from(name)).or_insert(Value::Mapping(d));
            }
            _ => {}
        }
    }
}

/// Moves what the Compose model cannot hold but the specification allows into extension keys
/// the engine reads: `gpus`, `restart: on-failure:N` and `extra_hosts` entries of
/// `host-gateway`; and
/// makes the implicit dependencies explicit.
pub fn model_gaps(doc: &mut Mapping) {
    let Some(Value::Mapping(services)) = doc.get_mut("services") else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let Value::Mapping(svc) = svc else { continue };
        add_implicit_dependencies(svc);
        if let Some(g) = svc.remove("gpus") {
            svc.insert(Value::from(GPUS), g);
        }
        for (key, ext) in HOOKS {
            if let Some(h) = svc.remove(key) {
                svc.insert(Value::from(ext), h);
            }
        }
        for bind in bind_options(svc) {
            if let Some(v) = bind.remove("recursive") {
                bind.insert(Value::from(BIND_RECURSIVE), v);
            }
        }
        for rule in watch_rules(svc) {
            for (key, ext) in WATCH_GAPS {
                match rule.get(key) {
                    Some(Value::String(a)) if key == "action" && a == "sync+exec" => {
                        rule.insert(Value::from(ext), Value::from(a.clone()));
                        rule.insert(Value::from(key), Value::from("sync"));
                    }
                    Some(_) if key != "action" => {
                        if let Some(v) = rule.remove(key) {
                            rule.insert(Value::from(ext), v);
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(Value::String(r)) = svc.get("restart") {
            if let Some(n) = r.strip_prefix("on-failure:") {
                let n = Value::from(n.to_string());
                svc.insert(Value::from("restart"), Value::from("on-failure"));
                svc.insert(Value::from(RESTART_RETRIES), n);
            }
        }
        let mut gateway = Vec::new();
        match svc.get_mut("extra_hosts") {
            Some(Value::Sequence(list)) => list.retain(|e| match e.as_str() {
                Some(t) if t.ends_with("host-gateway") => {
                    let host = t
                        .trim_end_matches("host-gateway")
                        .trim_end_matches([':', '=']);
                    gateway.push(Value::from(host.to_string()));
                    false
                }
                _ => true,
            }),
            Some(Value::Mapping(m)) => m.retain(|k, v| {
                if v.as_str() == Some("host-gateway") {
                    gateway.push(k.clone());
                    false
                } else {
                    true
                }
            }),
            _ => {}
        }
        if !gateway.is_empty() {
            svc.insert(Value::from(HOST_GATEWAY_HOSTS), Value::Sequence(gateway));
        }
        octal_modes(svc);
    }
}

/// The `bind:` options of a service's long-form volumes.
fn bind_options(svc: &mut Mapping) -> impl Iterator<Item = &mut Mapping> {
    let volumes = match svc.get_mut("volumes") {
        Some(Value::Sequence(list)) => Some(list),
        _ => None,
    };
    volumes
        .into_iter()
        .flatten()
        .filter_map(|v| match v.get_mut("bind") {
            Some(Value::Mapping(b)) => Some(b),
            _ => None,
        })
}

/// A service's `develop.watch` rules (those that are mappings).
fn watch_rules(svc: &mut Mapping) -> impl Iterator<Item = &mut Mapping> {
    let rules = match svc.get_mut("develop").and_then(|d| d.get_mut("watch")) {
        Some(Value::Sequence(list)) => Some(list),
        _ => None,
    };
    rules.into_iter().flatten().filter_map(|r| match r {
        Value::Mapping(m) => Some(m),
        _ => None,
    })
}

/// The `mode` of a service's secrets and configs as a number: written `0440` (YAML 1.1's
/// octal, as Docker Compose reads it; YAML 1.2 and the model see a string) or `"0o440"`.
fn octal_modes(svc: &mut Mapping) {
    for key in ["secrets", "configs"] {
        let Some(Value::Sequence(list)) = svc.get_mut(key) else {
            continue;
        };
        for e in list.iter_mut() {
            let Some(Value::String(m)) = e.get("mode") else {
                continue;
            };
            let n = match m.strip_prefix("0o").or_else(|| m.strip_prefix('0')) {
                Some(oct) if !oct.is_empty() => u32::from_str_radix(oct, 8).ok(),
                _ => m.parse::<u32>().ok(),
            };
            if let (Some(n), Value::Mapping(e)) = (n, e) {
                e.insert(Value::from("mode"), Value::from(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_name_rules() {
        let dir = Path::new("/home/u/My.App_1");
        assert_eq!(
            project_name(Some("p"), Some("e"), Some("t"), dir).unwrap(),
            "p"
        );
        assert_eq!(project_name(None, Some("e"), Some("t"), dir).unwrap(), "e");
        assert_eq!(project_name(None, None, Some("t"), dir).unwrap(), "t");
        assert_eq!(project_name(None, None, None, dir).unwrap(), "myapp_1");
        assert_eq!(
            project_name(None, None, None, Path::new("/x/_-Ab")).unwrap(),
            "ab"
        );
        assert!(project_name(Some("Bad Name"), None, None, dir).is_err());
        assert!(project_name(Some("-x"), None, None, dir).is_err());
        assert!(project_name(None, None, None, Path::new("/x/..._")).is_err());
    }

    #[test]
    fn relative_paths_become_absolute() {
        let mut doc: Mapping = serde_yaml::from_str(
            "services:\n  s:\n    build: ./app\n    env_file: [a.env, {path: ../b.env, required: false}]\n    volumes: ['./d:/d:ro', 'named:/n', {type: bind, source: x, target: /x}, {type: volume, source: v, target: /v}]\nsecrets:\n  k:\n    file: ./k.txt\n",
        )
        .unwrap();
        paths(&mut doc, Path::new("/p/proj"));
        let want: Mapping = serde_yaml::from_str(
            "services:\n  s:\n    build: /p/proj/app\n    env_file: [/p/proj/a.env, {path: /p/b.env, required: false}]\n    volumes: ['/p/proj/d:/d:ro', 'named:/n', {type: bind, source: /p/proj/x, target: /x}, {type: volume, source: v, target: /v}]\nsecrets:\n  k:\n    file: /p/proj/k.txt\n",
        )
        .unwrap();
        assert_eq!(doc, want);
    }

    #[test]
    fn env_file_under_own_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.env");
        std::fs::write(&f, "A=file\nB=file\nH\n").unwrap();
        let text = format!(
            "services:\n  s:\n    env_file: [{}, {{path: /nope.env, required: false}}]\n    environment: [B=own, C, D]\n",
            f.display()
        );
        let mut doc: Mapping = serde_yaml::from_str(&text).unwrap();
        let vars = |n: &str| (n == "C" || n == "H").then(|| format!("env-{n}"));
        environment(&mut doc, &vars, "c.yaml").unwrap();
        let missing = format!(
            "services:\n  s:\n    env_file: [{}/nope.env]\n",
            dir.path().display()
        );
        let mut bad: Mapping = serde_yaml::from_str(&missing).unwrap();
        let err = environment(&mut bad, &vars, "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.yaml: services.s.env_file: cannot read "),
            "{err}"
        );
        let want: Mapping = serde_yaml::from_str(
            "services:\n  s:\n    environment: {A: file, B: own, H: env-H, C: env-C, D: null}\n",
        )
        .unwrap();
        assert_eq!(doc, want);
    }

    #[test]
    fn label_file_under_own_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.labels"), "team=file\ntier=${TIER}\n").unwrap();
        let mut doc: Mapping = serde_yaml::from_str(
            "services:\n  s:\n    label_file: ./a.labels\n    labels: [team=own]\n",
        )
        .unwrap();
        paths(&mut doc, dir.path());
        let vars = |n: &str| (n == "TIER").then(|| "web".to_string());
        environment(&mut doc, &vars, "c.yaml").unwrap();
        let want: Mapping =
            serde_yaml::from_str("services:\n  s:\n    labels: {team: own, tier: web}\n").unwrap();
        assert_eq!(doc, want);
    }
}
