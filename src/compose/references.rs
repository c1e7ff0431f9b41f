//! The names a service uses (networks, named volumes, secrets, configs) must be declared at the
//! top level, as Docker Compose requires; the implicit `default` network needs no declaration.

use serde_yaml::{Mapping, Value};

use super::keys::key_text;

/// The first undeclared name as (key path, message), if any.
pub fn check(doc: &Mapping) -> Result<(), (String, String)> {
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return Ok(());
    };
    for (name, svc) in services {
        let name = key_text(name);
        let Value::Mapping(svc) = svc else { continue };
        for (key, top, used) in [
            ("networks", "networks", names(svc.get("networks"))),
            ("volumes", "volumes", volumes(svc.get("volumes"))),
            ("secrets", "secrets", grants(svc.get("secrets"))),
            ("configs", "configs", grants(svc.get("configs"))),
        ] {
            for used in used {
                if key == "networks" && used == "default" {
                    continue;
                }
                if !declared(doc, top, &used) {
                    let kind = top.trim_end_matches('s');
                    return Err((
                        format!("services.{name}.{key}"),
                        format!("{kind} {used} is not declared: add it under the top-level {top}:"),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn declared(doc: &Mapping, top: &str, name: &str) -> bool {
    matches!(doc.get(top), Some(Value::Mapping(m)) if m.contains_key(name))
}

fn names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().map(key_text).collect(),
        Some(Value::Mapping(m)) => m.keys().map(key_text).collect(),
        _ => Vec::new(),
    }
}

/// Named volume sources: `name:/path` (not a path) or long form `type: volume` with a source.
fn volumes(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Sequence(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::String(s) => {
                let (src, _) = s.split_once(':')?;
                let path = src.starts_with(['/', '.', '~']);
                (!path && !src.is_empty()).then(|| src.to_string())
            }
            Value::Mapping(m) if m.get("type").and_then(Value::as_str) == Some("volume") => {
                m.get("source").map(key_text).filter(|s| !s.is_empty())
            }
            _ => None,
        })
        .collect()
}

fn grants(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Sequence(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| match i {
            Value::Mapping(m) => m.get("source").map(key_text),
            other => Some(key_text(other)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<(), (String, String)> {
        check(&serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn declared_names_pass() {
        run("services:\n  a:\n    networks: [default, n]\n    volumes: ['v:/v', './x:/x', '/y:/y', '/anon', {type: volume, source: w, target: /w}, {type: bind, source: z, target: /z}]\n    secrets: [s]\nnetworks:\n  n:\nvolumes:\n  v:\n  w: {}\nsecrets:\n  s:\n    file: ./s\n").unwrap();
    }

    #[test]
    fn undeclared_names_are_named() {
        let e = run("services:\n  a:\n    volumes: ['data:/d']\n").unwrap_err();
        assert_eq!(e.0, "services.a.volumes");
        assert_eq!(
            e.1,
            "volume data is not declared: add it under the top-level volumes:"
        );
        let e = run("services:\n  a:\n    networks: {front: {aliases: [x]}}\n").unwrap_err();
        assert_eq!(e.0, "services.a.networks");
        assert!(run("services:\n  a:\n    configs: [{source: c}]\n").is_err());
    }
}
