//! `extends:`: a service built on another one, in the same file or in `file:` (read and
//! interpolated like any Compose file, its relative paths taken from its own directory).

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::error::ComposeError;
use super::keys::key_text;
use super::{merge, normalize};

/// Reads and interpolates another Compose file named by `extends.file`.
pub type LoadFile<'a> = &'a dyn Fn(&Path) -> Result<Value, ComposeError>;

/// Replaces every service of `doc` (read from `file`) that has `extends:` by its resolution.
pub fn resolve(doc: &mut Mapping, file: &Path, load: LoadFile) -> Result<(), ComposeError> {
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return Ok(());
    };
    let mut out = Mapping::new();
    for name in services.keys() {
        let name = key_text(name);
        let svc = resolved(services, &name, file, load, &mut Vec::new())?;
        out.insert(Value::from(name), Value::Mapping(svc));
    }
    doc.insert(Value::from("services"), Value::Mapping(out));
    Ok(())
}

/// Service `name` of `services` (from `file`) with its `extends` chain applied.
fn resolved(
    services: &Mapping,
    name: &str,
    file: &Path,
    load: LoadFile,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Mapping, ComposeError> {
    let err = |message: String| ComposeError::Extends {
        path: file.to_path_buf(),
        service: name.to_string(),
        message,
    };
    let mut svc = match services.get(name) {
        Some(Value::Mapping(m)) => m.clone(),
        Some(Value::Null) => Mapping::new(),
        Some(_) => return Err(err("a service must be a mapping".into())),
        None => return Err(err(format!("no service {name} in {}", file.display()))),
    };
    let Some(ext) = svc.remove("extends") else {
        return Ok(svc);
    };
    let (target, other) = target(&ext).map_err(err)?;
    let here = (file.to_path_buf(), name.to_string());
    if stack.contains(&here) {
        return Err(err("extends loops back to itself".into()));
    }
    stack.push(here);
    let mut base = match other {
        Some(rel) => from_file(file, &rel, &target, load, stack)?,
        None if target == name => return Err(err("a service cannot extend itself".into())),
        None if !services.contains_key(target.as_str()) => {
            return Err(err(format!("no service {target} in {}", file.display())))
        }
        None => resolved(services, &target, file, load, stack)?,
    };
    stack.pop();
    merge::service(&mut base, svc);
    Ok(base)
}

/// `extends: name` or `extends: {service: name, file: path}`.
fn target(ext: &Value) -> Result<(String, Option<String>), String> {
    match ext {
        Value::String(s) => Ok((s.clone(), None)),
        Value::Mapping(m) => {
            let service = m
                .get("service")
                .and_then(Value::as_str)
                .ok_or("extends needs `service:`")?;
            let file = m.get("file").and_then(Value::as_str).map(str::to_string);
            Ok((service.to_string(), file))
        }
        _ => Err("extends must be a service name or {service, file}".into()),
    }
}

fn from_file(
    file: &Path,
    rel: &str,
    target: &str,
    load: LoadFile,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Mapping, ComposeError> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let path = dir.join(rel);
    let doc = load(&path)?;
    let services = match doc.get("services") {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    };
    let mut base = resolved(&services, target, &path, load, stack)?;
    normalize::rebase(&mut base, path.parent().unwrap_or(Path::new("/")));
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(p: &Path) -> Result<Value, ComposeError> {
        panic!("unexpected read of {}", p.display())
    }

    fn resolve_str(s: &str) -> Result<Mapping, ComposeError> {
        let mut doc: Mapping = serde_yaml::from_str(s).unwrap();
        resolve(&mut doc, Path::new("/p/compose.yaml"), &no_files)?;
        Ok(doc)
    }

    #[test]
    fn same_file_chain() {
        let doc = resolve_str(
            "services:\n  base:\n    image: a\n    environment: [A=1]\n    command: [x]\n  mid:\n    extends: base\n    environment: [B=2]\n  web:\n    extends: {service: mid}\n    command: [y]\n",
        )
        .unwrap();
        let want: Mapping =
            serde_yaml::from_str("image: a\nenvironment: {A: '1', B: '2'}\ncommand: [y]\n")
                .unwrap();
        assert_eq!(doc["services"]["web"], Value::Mapping(want));
    }

    #[test]
    fn other_file_paths_from_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(
            sub.join("common.yml"),
            "services:\n  app:\n    image: a\n    volumes: ['./data:/data']\n",
        )
        .unwrap();
        let mut doc: Mapping = serde_yaml::from_str(
            "services:\n  web:\n    extends: {file: sub/common.yml, service: app}\n",
        )
        .unwrap();
        let load = |p: &Path| super::super::files::read(p);
        resolve(&mut doc, &dir.path().join("compose.yaml"), &load).unwrap();
        let vols = &doc["services"]["web"]["volumes"][0];
        assert_eq!(
            vols.as_str().unwrap(),
            format!("{}/data:/data", sub.display())
        );
    }

    #[test]
    fn loops_and_missing_are_errors() {
        let e = resolve_str("services:\n  a:\n    extends: b\n  b:\n    extends: a\n").unwrap_err();
        assert!(e.to_string().contains("loops back"), "{e}");
        let e = resolve_str("services:\n  a:\n    extends: nope\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/p/compose.yaml: services.a.extends: no service nope in /p/compose.yaml"
        );
    }
}
