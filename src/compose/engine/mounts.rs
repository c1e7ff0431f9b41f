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
    for v in svc
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (kind, source, target, ro) = match v {
            Value::Object(o) => (
                o.get("type").map(scalar).unwrap_or_else(|| "volume".into()),
                o.get("source").map(scalar).unwrap_or_default(),
                o.get("target").map(scalar).unwrap_or_default(),
                o.get("read_only").and_then(Value::as_bool).unwrap_or(false),
            ),
            v => {
                let s = scalar(v);
                let parts: Vec<&str> = s.splitn(3, ':').collect();
                match parts.as_slice() {
                    [t] => ("volume".into(), String::new(), t.to_string(), false),
                    [src, t, rest @ ..] => {
                        let ro = rest
                            .first()
                            .is_some_and(|m| m.split(',').any(|m| m == "ro"));
                        let kind = if is_path(src) { "bind" } else { "volume" };
                        (kind.into(), src.to_string(), t.to_string(), ro)
                    }
                    [] => continue,
                }
            }
        };
        let mode = if ro { ":ro" } else { "" };
        let text = match kind.as_str() {
            "tmpfs" => {
                hc.tmpfs.push(parse::<TmpfsSpec>(svc, "volumes", &target)?);
                continue;
            }
            "bind" => format!("{}:{target}{mode}", absolute(&project.working_dir, &source)),
            "volume" if source.is_empty() => target.clone(),
            "volume" => format!("{}:{target}{mode}", resource_name(project, &top, &source)),
            other => {
                return Err(ComposeError::service(
                    &svc.name,
                    format!("volumes: type {other:?} is not supported: use bind, volume or tmpfs"),
                ))
            }
        };
        hc.binds.push(parse::<VolumeSpec>(svc, "volumes", &text)?);
    }
    Ok(())
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
) -> Result<(), ComposeError> {
    let top = top(project, key);
    for s in svc.get(key).and_then(Value::as_array).into_iter().flatten() {
        let (name, target) = match s {
            Value::Object(o) => (
                o.get("source").map(scalar).unwrap_or_default(),
                o.get("target").map(scalar),
            ),
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
}
