//! A service's volumes (bind, named, anonymous, tmpfs; short and long forms) and its secrets
//! and configs from files, as the request's binds and tmpfs mounts.

use std::path::Path;

use serde_json::Value;

use super::convert::{parse, resource_name, top};
use super::service::{scalar, Service};
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::request::HostConfig;
use crate::containers::values::{TmpfsSpec, VolumeSpec};

pub fn volumes(project: &Project, svc: &Service, hc: &mut HostConfig) -> Result<(), ComposeError> {
    let top = top(project, "volumes");
    let bad = |m: String| ComposeError::service(&svc.name, format!("volumes: {m}"));
    for v in svc
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // (type, source, target, `-v` modes or tmpfs options)
        let (kind, source, target, modes) = match v {
            Value::Object(o) => {
                let kind = o.get("type").map(scalar).unwrap_or_else(|| "volume".into());
                let target = o.get("target").map(scalar).unwrap_or_default();
                let modes = long_form_modes(&kind, o, &target).map_err(bad)?;
                (
                    kind,
                    o.get("source").map(scalar).unwrap_or_default(),
                    target,
                    modes,
                )
            }
            v => {
                let s = scalar(v);
                let parts: Vec<&str> = s.splitn(3, ':').collect();
                match parts.as_slice() {
                    [t] => ("volume".into(), String::new(), t.to_string(), Vec::new()),
                    [src, t, rest @ ..] => {
                        let kind = if is_path(src) { "bind" } else { "volume" };
                        let modes = rest
                            .first()
                            .map(|m| m.split(',').map(str::to_string).collect())
                            .unwrap_or_default();
                        (kind.into(), src.to_string(), t.to_string(), modes)
                    }
                    [] => continue,
                }
            }
        };
        let mode = match modes.is_empty() {
            true => String::new(),
            false => format!(":{}", modes.join(",")),
        };
        let text = match kind.as_str() {
            "tmpfs" => {
                hc.tmpfs.push(parse::<TmpfsSpec>(
                    svc,
                    "volumes",
                    &format!("{target}{mode}"),
                )?);
                continue;
            }
            "bind" => {
                let path = absolute(&project.working_dir, &source);
                let create = v
                    .get("bind")
                    .and_then(|b| b.get("create_host_path"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if !create && std::fs::symlink_metadata(&path).is_err() {
                    return Err(bad(format!(
                        "the bind source {path} does not exist (bind.create_host_path is false): create it first"
                    )));
                }
                format!("{path}:{target}{mode}")
            }
            "volume" if source.is_empty() => format!(":{target}{mode}"),
            "volume" => format!("{}:{target}{mode}", resource_name(project, &top, &source)),
            other => {
                return Err(bad(format!(
                    "type {other:?} is not supported: use bind, volume or tmpfs"
                )))
            }
        };
        let mut spec = parse::<VolumeSpec>(svc, "volumes", &text)?;
        // bind.recursive, held beside the model (see normalize::model_gaps): enabled and
        // writable are burrow's recursive bind (submounts keep their own mode), disabled
        // leaves the submounts out.
        let recursive = v
            .get("bind")
            .and_then(|b| b.get(crate::compose::normalize::BIND_RECURSIVE))
            .map(scalar);
        if recursive.is_some() && kind != "bind" {
            return Err(bad(format!("{target}: bind.recursive on a {kind} mount")));
        }
        match recursive.as_deref() {
            None | Some("enabled" | "writable") => {}
            Some("disabled") => spec.nonrecursive = true,
            Some("readonly") => {
                return Err(bad(format!(
                    "{target}: bind.recursive readonly (submounts forced read-only) is not supported: use enabled, writable or disabled"
                )))
            }
            Some(other) => {
                return Err(bad(format!(
                    "{target}: bind.recursive {other:?}: use enabled, disabled, writable or readonly"
                )))
            }
        }
        // What `-v`'s text cannot carry: a volume's subpath.
        spec.subpath = v
            .get("volume")
            .and_then(|o| o.get("subpath"))
            .filter(|x| !x.is_null())
            .map(scalar);
        hc.binds.push(spec);
    }
    Ok(())
}

/// A long-form mount's options as `-v` modes (bind, volume) or `--tmpfs` options: read_only,
/// bind.propagation and bind.selinux, volume.nocopy, tmpfs.size and tmpfs.mode (volume.subpath
/// is checked here and set by the caller). What has no counterpart (image mounts) is refused.
fn long_form_modes(
    kind: &str,
    o: &serde_json::Map<String, Value>,
    target: &str,
) -> Result<Vec<String>, String> {
    let mut modes = Vec::new();
    if o.get("read_only").and_then(Value::as_bool) == Some(true) {
        modes.push("ro".to_string());
    }
    let sub = |k: &str| o.get(k).and_then(Value::as_object);
    if let Some(b) = sub("bind") {
        if let Some(p) = b.get("propagation") {
            modes.push(scalar(p));
        }
        if let Some(z) = b.get("selinux") {
            modes.push(scalar(z));
        }
    }
    if let Some(v) = sub("volume") {
        if v.get("nocopy").and_then(Value::as_bool) == Some(true) {
            modes.push("nocopy".into());
        }
        if let Some(p) = v.get("subpath").filter(|p| !p.is_null()) {
            if kind != "volume" {
                return Err(format!("{target}: volume.subpath on a {kind} mount"));
            }
            crate::containers::values::check_subpath(&scalar(p))
                .map_err(|e| format!("{target}: {e}"))?;
        }
    }
    if let Some(t) = sub("tmpfs") {
        if kind != "tmpfs" {
            return Err(format!("{target}: tmpfs options on a {kind} mount"));
        }
        if let Some(size) = t.get("size") {
            let bytes = super::convert::byte_size(size)
                .map_err(|e| format!("{target}: tmpfs.size: {e}"))?;
            modes.push(format!("size={}", bytes.0));
        }
        if let Some(mode) = t.get("mode").and_then(Value::as_u64) {
            modes.push(format!("mode={mode:o}"));
        }
    }
    Ok(modes)
}

fn is_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

/// A path relative to the project's directory made absolute (`~` is the user's home).
pub fn absolute(dir: &Path, p: &str) -> String {
    if let Some(rest) = p.strip_prefix("~/") {
        let home = std::env::var("HOME").unwrap_or_default();
        return format!("{home}/{rest}");
    }
    let path = dir.join(p);
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// One `secrets:` or `configs:` entry of a service, with its top-level definition.
struct Grant<'a> {
    name: String,
    /// Absolute, in the container.
    target: String,
    /// The long form's uid, gid and mode, as given.
    owner: [Option<String>; 3],
    def: Option<&'a Value>,
}

/// The `key` (secrets or configs) entries of `svc`: secrets at /run/secrets/NAME, configs at
/// /NAME unless `target` says otherwise.
fn grants<'a>(svc: &Service, key: &str, top: &'a Value) -> Vec<Grant<'a>> {
    let mut out = Vec::new();
    for s in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
        let (name, target, owner) = match s {
            Value::Object(o) => (
                o.get("source").map(scalar).unwrap_or_default(),
                o.get("target").map(scalar),
                ["uid", "gid", "mode"].map(|k| o.get(k).filter(|v| !v.is_null()).map(scalar)),
            ),
            v => (scalar(v), None, [None, None, None]),
        };
        let target = target.unwrap_or_else(|| name.clone());
        let target = match (key, target.starts_with('/')) {
            (_, true) => target,
            ("secrets", false) => format!("/run/secrets/{target}"),
            _ => format!("/{target}"),
        };
        let def = top.get(&name).filter(|d| !d.is_null());
        out.push(Grant {
            name,
            target,
            owner,
            def,
        });
    }
    out
}

/// Secrets and configs from files (`file:`), bound read-only; those of `environment:` and
/// `content:` are written into the container when it is made ([`injected`]).
pub fn secrets(
    project: &Project,
    svc: &Service,
    hc: &mut HostConfig,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let top = top(project, key);
    for g in grants(svc, key, &top) {
        let field = |f: &str| g.def.and_then(|d| d.get(f)).filter(|v| !v.is_null());
        if field("environment").is_some() || field("content").is_some() {
            continue;
        }
        let Some(file) = field("file").map(scalar) else {
            let kinds = match key {
                "configs" => "`file:`, `environment:` or `content:`",
                _ => "`file:` or `environment:`",
            };
            return Err(ComposeError::service(
                &svc.name,
                format!(
                    "{key}: {:?} is not a top-level {key} entry with {kinds}",
                    g.name
                ),
            ));
        };
        // The file is bound as it is: its owner and mode cannot be set (Docker Compose warns
        // about the same outside Swarm).
        let set: Vec<&str> = ["uid", "gid", "mode"]
            .into_iter()
            .zip(&g.owner)
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect();
        if !set.is_empty() {
            warnings.push(format!(
                "service {}: {key} {}: {} not applied (the file is bound read-only with its own owner and mode)",
                svc.name,
                g.name,
                set.join(", ")
            ));
        }
        let text = format!("{}:{}:ro", absolute(&project.working_dir, &file), g.target);
        hc.binds.push(parse::<VolumeSpec>(svc, key, &text)?);
    }
    Ok(())
}

/// A file Compose writes into a container before it starts: a secret or config given by
/// `environment:` (a variable's value) or `content:` (configs: the text itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Absolute, in the container.
    pub target: String,
    pub data: Vec<u8>,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
}

/// The files of `svc`'s secrets and configs that come from `environment:` or `content:`,
/// owned by `uid`/`gid` (default 0) with `mode` (octal; default 0444), as Docker Compose
/// writes them.
pub fn injected(project: &Project, svc: &Service) -> Result<Vec<Injected>, ComposeError> {
    let mut out = Vec::new();
    for key in ["secrets", "configs"] {
        let top = top(project, key);
        for g in grants(svc, key, &top) {
            let bad =
                |m: String| ComposeError::service(&svc.name, format!("{key}: {}: {m}", g.name));
            let field = |f: &str| g.def.and_then(|d| d.get(f)).filter(|v| !v.is_null());
            let data = match (field("environment"), field("content")) {
                (Some(var), _) => {
                    let var = scalar(var);
                    project
                        .variable(&var)
                        .ok_or_else(|| {
                            bad(format!(
                                "environment variable {var} is not set (in the environment or the project's .env file)"
                            ))
                        })?
                        .into_bytes()
                }
                (None, Some(text)) => scalar(text).into_bytes(),
                (None, None) => continue,
            };
            let id = |v: &Option<String>, what: &str| -> Result<u64, ComposeError> {
                match v {
                    None => Ok(0),
                    Some(t) => t
                        .parse()
                        .map_err(|_| bad(format!("{what} {t}: give a number"))),
                }
            };
            let mode = match &g.owner[2] {
                None => 0o444,
                Some(m) => parse_mode(m)
                    .ok_or_else(|| bad(format!("mode {m}: give an octal mode such as 0440")))?,
            };
            out.push(Injected {
                target: g.target.clone(),
                data,
                uid: id(&g.owner[0], "uid")?,
                gid: id(&g.owner[1], "gid")?,
                mode,
            });
        }
    }
    Ok(out)
}

/// A file mode as the loaded model holds it: a number (`0440` and `"0o440"` were read as
/// octal when the files were loaded, see [`crate::compose::normalize`]).
fn parse_mode(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|m| *m <= 0o7777)
}

/// The tar that carries `files` into a container's root (directories made as needed).
pub fn injected_tar(files: &[Injected]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(f.data.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, f.target.trim_start_matches('/'), f.data.as_slice())?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_configs_from_content_and_environment_are_written_in() {
        std::env::set_var("BURROW_TEST_INJECTED", "from-env");
        let p = crate::compose::project::for_tests(
            r#"
services:
  a:
    image: busybox
    secrets: [tok, {source: f, target: other}]
    configs: [{source: c, target: /etc/app.conf, uid: "100", gid: "101", mode: 0440}]
secrets:
  tok: {environment: BURROW_TEST_INJECTED}
  f: {file: ./f.txt}
configs:
  c: {content: "key=value"}
"#,
        );
        let svc = Service::of(&p, "a").unwrap();
        let files = injected(&p, &svc).unwrap();
        assert_eq!(
            files,
            [
                Injected {
                    target: "/run/secrets/tok".into(),
                    data: b"from-env".to_vec(),
                    uid: 0,
                    gid: 0,
                    mode: 0o444
                },
                Injected {
                    target: "/etc/app.conf".into(),
                    data: b"key=value".to_vec(),
                    uid: 100,
                    gid: 101,
                    mode: 0o440
                }
            ]
        );
        let mut hc = HostConfig::default();
        let mut warnings = Vec::new();
        secrets(&p, &svc, &mut hc, "secrets", &mut warnings).unwrap();
        secrets(&p, &svc, &mut hc, "configs", &mut warnings).unwrap();
        assert_eq!(hc.binds.len(), 1, "only the file is bound: {:?}", hc.binds);
        assert_eq!(hc.binds[0].target, "/run/secrets/other");
        let tar = injected_tar(&files).unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["run/secrets/tok", "etc/app.conf"]);
        std::env::remove_var("BURROW_TEST_INJECTED");
        let e = injected(&p, &svc).unwrap_err().to_string();
        assert!(e.contains("BURROW_TEST_INJECTED is not set"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_project() {
        assert_eq!(absolute(Path::new("/p/app"), "./data/../x"), "/p/app/x");
        assert_eq!(absolute(Path::new("/p/app"), "/abs"), "/abs");
    }

    #[test]
    fn long_form_options_reach_the_mounts() {
        let p = crate::compose::project::for_tests(
            r#"
services:
  a:
    image: busybox
    volumes:
      - {type: tmpfs, target: /t, tmpfs: {size: 1048576, mode: 448}}
      - {type: bind, source: /srv, target: /b, read_only: true, bind: {propagation: rslave}}
      - {type: volume, source: data, target: /d, volume: {nocopy: true}}
      - "/anon"
      - "cache:/c:ro"
volumes:
  data: {}
  cache: {}
"#,
        );
        let svc = Service::of(&p, "a").unwrap();
        let mut hc = HostConfig::default();
        volumes(&p, &svc, &mut hc).unwrap();
        assert_eq!(hc.tmpfs[0].target, "/t");
        assert_eq!(hc.tmpfs[0].options, ["size=1048576", "mode=700"]);
        let b = &hc.binds;
        assert_eq!(b.len(), 4);
        assert!(b[0].read_only && b[0].propagation.is_some(), "{:?}", b[0]);
        assert!(b[1].nocopy && b[1].target == "/d", "{:?}", b[1]);
        assert_eq!(
            b[2].source,
            crate::containers::values::VolumeSource::Anonymous
        );
        assert!(b[3].read_only && !b[3].nocopy, "{:?}", b[3]);

        let p = crate::compose::project::for_tests(
            "services:\n  a:\n    image: busybox\n    volumes:\n      - {type: volume, source: v, target: /d, volume: {subpath: x}}\nvolumes:\n  v: {}\n",
        );
        let mut hc = HostConfig::default();
        volumes(&p, &Service::of(&p, "a").unwrap(), &mut hc).unwrap();
        assert_eq!(hc.binds[0].subpath.as_deref(), Some("x"));
        // bind.recursive: disabled leaves the submounts out; readonly is refused by name.
        let bind = |opt: &str| {
            let p = crate::compose::project::for_tests(&format!(
                "services:\n  a:\n    image: busybox\n    volumes:\n      - {{type: bind, source: /srv, target: /b, bind: {{recursive: {opt}}}}}\n"
            ));
            let mut hc = HostConfig::default();
            volumes(&p, &Service::of(&p, "a").unwrap(), &mut hc).map(|_| hc.binds[0].nonrecursive)
        };
        assert!(bind("disabled").unwrap());
        assert!(!bind("enabled").unwrap());
        assert!(!bind("writable").unwrap());
        let e = bind("readonly").unwrap_err().to_string();
        assert!(e.contains("bind.recursive readonly"), "{e}");
        let p = crate::compose::project::for_tests(
            "services:\n  a:\n    image: busybox\n    volumes:\n      - {type: bind, source: /srv, target: /b, bind: {recursive: disabled}}\n",
        );
        let doc = serde_yaml::to_string(&p.document().unwrap()).unwrap();
        assert!(
            doc.contains("recursive: disabled") && !doc.contains("x-burrow"),
            "{doc}"
        );
        let p = crate::compose::project::for_tests(
            "services:\n  a:\n    image: busybox\n    volumes:\n      - {type: volume, source: v, target: /d, volume: {subpath: ../x}}\nvolumes:\n  v: {}\n",
        );
        let e = volumes(
            &p,
            &Service::of(&p, "a").unwrap(),
            &mut HostConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("without .."), "{e}");
    }
}
