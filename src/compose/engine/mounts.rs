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
        hc.binds.push(parse::<VolumeSpec>(svc, "volumes", &text)?);
    }
    Ok(())
}

/// A long-form mount's options as `-v` modes (bind, volume) or `--tmpfs` options: read_only,
/// bind.propagation and bind.selinux, volume.nocopy, tmpfs.size and tmpfs.mode. What has no
/// counterpart (volume.subpath, image mounts) is refused.
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
        if v.get("subpath").is_some_and(|p| !p.is_null()) {
            return Err(format!(
                "{target}: volume.subpath is not supported by burrow: mount the whole volume"
            ));
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

/// Secrets (at /run/secrets/NAME) or configs (at /NAME) from files, bound read-only.
pub fn secrets(
    project: &Project,
    svc: &Service,
    hc: &mut HostConfig,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let top = top(project, key);
    for s in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
        let (name, target) = match s {
            Value::Object(o) => {
                // The file is bound as it is: its owner and mode cannot be set (Docker Compose
                // warns about the same outside Swarm).
                let set: Vec<&str> = ["uid", "gid", "mode"]
                    .into_iter()
                    .filter(|k| o.get(*k).is_some_and(|v| !v.is_null()))
                    .collect();
                if !set.is_empty() {
                    warnings.push(format!(
                        "service {}: {key} {}: {} not applied (the file is bound read-only with its own owner and mode)",
                        svc.name,
                        o.get("source").map(scalar).unwrap_or_default(),
                        set.join(", ")
                    ));
                }
                (
                    o.get("source").map(scalar).unwrap_or_default(),
                    o.get("target").map(scalar),
                )
            }
            v => (scalar(v), None),
        };
        let Some(file) = top.get(&name).and_then(|d| d.get("file")).map(scalar) else {
            return Err(ComposeError::service(
                &svc.name,
                format!("{key}: {name:?} is not a top-level {key} entry with `file:` (burrow compose supports {key} from files)"),
            ));
        };
        let target = target.unwrap_or_else(|| name.clone());
        let target = match (key, target.starts_with('/')) {
            (_, true) => target,
            ("secrets", false) => format!("/run/secrets/{target}"),
            _ => format!("/{target}"),
        };
        let text = format!("{}:{target}:ro", absolute(&project.working_dir, &file));
        hc.binds.push(parse::<VolumeSpec>(svc, key, &text)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = volumes(
            &p,
            &Service::of(&p, "a").unwrap(),
            &mut HostConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("subpath"), "{e}");
    }
}
