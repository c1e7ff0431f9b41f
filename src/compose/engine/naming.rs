//! Docker Compose's names and labels: `PROJECT-SERVICE-N` containers, `PROJECT_NAME` networks
//! and volumes, the com.docker.compose.* labels, and the config hash that tells `up` which
//! services changed.

use sha2::{Digest, Sha256};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const VERSION: &str = "com.docker.compose.version";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const IMAGE: &str = "com.docker.compose.image";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// The Compose version burrow's labels claim (Docker Compose v2's format).
pub const COMPOSE_VERSION: &str = "2.20.0";

/// `PROJECT-SERVICE-N`.
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// A one-off `run`'s container: `PROJECT-SERVICE-run-ID` (12 hex digits).
pub fn oneoff_name(project: &str, service: &str) -> String {
    let id = crate::containers::store::new_id();
    format!("{project}-{service}-run-{}", &id[..12])
}

/// A project's network or volume as the engine sees it: `PROJECT_KEY`.
pub fn scoped(project: &str, key: &str) -> String {
    format!("{project}_{key}")
}

/// The default network of a project.
pub fn default_network(project: &str) -> String {
    scoped(project, "default")
}

/// sha256 of the service's canonical config (keys sorted, replica counts left out: a scale
/// change adds or removes containers, it does not recreate them).
pub fn config_hash(service: &serde_json::Value) -> String {
    let mut v = service.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("scale");
        if let Some(d) = o.get_mut("deploy").and_then(|d| d.as_object_mut()) {
            d.remove("replicas");
        }
    }
    let text = canonical(&v);
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// JSON with every object's keys sorted.
fn canonical(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_docker_composes() {
        assert_eq!(container_name("app", "web", 2), "app-web-2");
        assert_eq!(default_network("app"), "app_default");
        let o = oneoff_name("app", "web");
        assert!(o.starts_with("app-web-run-") && o.len() == "app-web-run-".len() + 12);
    }

    #[test]
    fn the_hash_ignores_key_order_and_scale_but_not_config() {
        let a = json!({"image": "x", "environment": {"A": "1", "B": "2"}, "scale": 2});
        let b = json!({"environment": {"B": "2", "A": "1"}, "image": "x"});
        let c = json!({"environment": {"B": "3", "A": "1"}, "image": "x"});
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_ne!(config_hash(&b), config_hash(&c));
        assert_eq!(config_hash(&a).len(), 64);
    }
}
