//! Which services a command works on: those whose profiles are enabled (or that have none),
//! or the ones named on the command line; plus what they depend on; in dependency order.

use compose_spec::service::Service;
use compose_spec::{Compose, ShortOrLong};

use super::error::ComposeError;

/// The services `s` depends on that must exist (`required: false` ones only when they do).
fn dependencies(s: &Service) -> Vec<(String, bool)> {
    match &s.depends_on {
        ShortOrLong::Short(names) => names.iter().map(|n| (n.to_string(), true)).collect(),
        ShortOrLong::Long(map) => map
            .iter()
            .map(|(n, d)| (n.to_string(), d.required))
            .collect(),
    }
}

/// Whether service `s` is active with `enabled` profiles (`*` enables all).
fn enabled(s: &Service, enabled: &[String]) -> bool {
    s.profiles.is_empty()
        || enabled
            .iter()
            .any(|p| p == "*" || s.profiles.iter().any(|sp| sp.as_str() == p))
}

/// The active services for `names` (empty: by profile) in dependency order.
pub fn select(
    compose: &Compose,
    names: &[String],
    profiles: &[String],
) -> Result<Vec<String>, ComposeError> {
    let all = &compose.services;
    let roots: Vec<String> = if names.is_empty() {
        all.iter()
            .filter(|(_, s)| enabled(s, profiles))
            .map(|(n, _)| n.to_string())
            .collect()
    } else {
        for n in names {
            if !all.contains_key(n.as_str()) {
                return Err(ComposeError::NoService(n.clone()));
            }
        }
        names.to_vec()
    };
    let mut order = Vec::new();
    for root in &roots {
        visit(compose, root, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

/// Depth-first: dependencies are pushed before the service; `path` detects cycles.
fn visit(
    compose: &Compose,
    name: &str,
    path: &mut Vec<String>,
    order: &mut Vec<String>,
) -> Result<(), ComposeError> {
    if order.iter().any(|o| o == name) {
        return Ok(());
    }
    if path.iter().any(|p| p == name) {
        path.push(name.to_string());
        return Err(ComposeError::Cycle(path.join(" -> ")));
    }
    let service = &compose.services[name];
    path.push(name.to_string());
    for (dep, required) in dependencies(service) {
        if !compose.services.contains_key(dep.as_str()) {
            if required {
                return Err(ComposeError::UndefinedDependency {
                    service: name.to_string(),
                    dependency: dep,
                });
            }
            continue;
        }
        visit(compose, &dep, path, order)?;
    }
    path.pop();
    order.push(name.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(s: &str) -> Compose {
        serde_yaml::from_str(s).unwrap()
    }

    const FILE: &str = "services:\n  web:\n    image: a\n    depends_on: [api]\n  api:\n    image: a\n    depends_on:\n      db: {condition: service_healthy}\n      opt: {condition: service_started, required: false}\n  db:\n    image: a\n  debug:\n    image: a\n    profiles: [dev]\n    depends_on: [tools]\n  tools:\n    image: a\n    profiles: [tools]\n";

    #[test]
    fn profiles_and_order() {
        let c = compose(FILE);
        assert_eq!(select(&c, &[], &[]).unwrap(), ["db", "api", "web"]);
        assert_eq!(
            select(&c, &[], &["dev".into()]).unwrap(),
            ["db", "api", "web", "tools", "debug"]
        );
        assert_eq!(select(&c, &[], &["*".into()]).unwrap().len(), 5);
        assert_eq!(
            select(&c, &["debug".into()], &[]).unwrap(),
            ["tools", "debug"]
        );
        assert_eq!(select(&c, &["api".into()], &[]).unwrap(), ["db", "api"]);
    }

    #[test]
    fn bad_names_and_cycles() {
        let c = compose(FILE);
        assert!(matches!(
            select(&c, &["nope".into()], &[]),
            Err(ComposeError::NoService(_))
        ));
        let c = compose("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n");
        assert_eq!(
            select(&c, &[], &[]).unwrap_err().to_string(),
            "dependency cycle between services: a -> b -> a"
        );
        let c = compose("services:\n  a:\n    image: x\n    depends_on: [zz]\n");
        assert!(matches!(
            select(&c, &[], &[]),
            Err(ComposeError::UndefinedDependency { .. })
        ));
    }
}
