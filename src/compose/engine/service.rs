//! A service as the engine reads it: the model's service as JSON (short and long forms as the
//! file gave them), with its dependencies, replica count and the strings of list-or-map keys.

use serde_json::Value;

use crate::compose::project::Project;
use crate::compose::ComposeError;

/// What a dependency waits for (Compose's depends_on conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// One depends_on entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    /// Restart this service when the dependency is restarted (`restart: true`).
    pub restart: bool,
    /// false: a missing or failed dependency is a warning, not an error.
    pub required: bool,
}

/// The dependencies of a model service.
pub fn dependencies(svc: &compose_spec::Service) -> Vec<Dependency> {
    serde_json::to_value(&svc.depends_on)
        .map(|v| dependencies_of(&v))
        .unwrap_or_default()
}

/// The dependencies of a `depends_on` value (list or map).
pub fn dependencies_of(v: &Value) -> Vec<Dependency> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| Dependency {
                service: s.to_string(),
                condition: Condition::Started,
                restart: false,
                required: true,
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, d)| Dependency {
                service: k.clone(),
                condition: match d.get("condition").and_then(Value::as_str) {
                    Some("service_healthy") => Condition::Healthy,
                    Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                    _ => Condition::Started,
                },
                restart: d.get("restart").and_then(Value::as_bool).unwrap_or(false),
                required: d.get("required").and_then(Value::as_bool).unwrap_or(true),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Docker Compose's depends_on label: `NAME:CONDITION:RESTART,...`.
pub fn depends_on_label(deps: &[Dependency]) -> String {
    deps.iter()
        .map(|d| format!("{}:{}:{}", d.service, d.condition.as_str(), d.restart))
        .collect::<Vec<_>>()
        .join(",")
}

/// A service of a loaded project, read as JSON.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub v: Value,
    /// The project's name (a built image is named `PROJECT-SERVICE`).
    pub project: String,
    /// The id of the image built for it (`build:`), once known: part of its config hash.
    pub image_id: Option<String>,
}

impl Service {
    /// The service `name` of `project`.
    pub fn of(project: &Project, name: &str) -> Result<Service, ComposeError> {
        let svc = project
            .compose
            .services
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, s)| s)
            .ok_or_else(|| ComposeError::NoService(name.to_string()))?;
        let v =
            serde_json::to_value(svc).map_err(|e| ComposeError::service(name, e.to_string()))?;
        Ok(Service {
            name: name.to_string(),
            v,
            project: project.name.clone(),
            image_id: None,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(scalar)
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn dependencies(&self) -> Vec<Dependency> {
        self.get("depends_on")
            .map(dependencies_of)
            .unwrap_or_default()
    }

    /// The image to run (`image:`, else the one `build:` makes), or why there is none.
    pub fn image(&self) -> Result<String, ComposeError> {
        super::build::image_name(&self.project, self).ok_or_else(|| {
            ComposeError::service(&self.name, "no image given: add `image:` or `build:`")
        })
    }

    /// Whether it has `build:` and no `image:` (its image is the project's own).
    pub fn builds_only(&self) -> bool {
        self.get("build").is_some() && self.str("image").is_none()
    }

    /// The config hash of its containers: the config, and the built image's id.
    pub fn config_hash(&self) -> String {
        let hash = super::naming::config_hash(&self.v);
        match &self.image_id {
            Some(id) => super::naming::config_hash(&serde_json::json!([hash, id])),
            None => hash,
        }
    }

    /// Replicas: `deploy.replicas`, else `scale`, else 1.
    pub fn replicas(&self) -> u32 {
        let deploy = self
            .get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(Value::as_u64);
        let scale = self.get("scale").and_then(Value::as_u64);
        deploy.or(scale).unwrap_or(1) as u32
    }

    /// The container name it asks for (`container_name:`).
    pub fn container_name(&self) -> Option<String> {
        self.str("container_name")
    }
}

/// A scalar as text (strings unquoted, numbers and booleans as written).
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list-or-map key (environment, labels, sysctls, annotations) as `KEY=VALUE` pairs; a list
/// entry without `=` (or a map entry with null) is `(KEY, None)`.
pub fn pairs(v: Option<&Value>) -> Vec<(String, Option<String>)> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                let s = scalar(e);
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (s, None),
                }
            })
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| scalar(v))))
            .collect(),
        _ => Vec::new(),
    }
}

/// A list-or-map key as `KEY=VALUE` (or bare `KEY`) strings, as Docker's APIs take them.
pub fn key_values(v: Option<&Value>) -> Vec<String> {
    pairs(v)
        .into_iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k,
        })
        .collect()
}

/// A string-or-list key (command, entrypoint, dns, tmpfs) as a list; a string command is split
/// as a shell would (quotes and backslashes).
pub fn words(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(a) => Some(a.iter().map(scalar).collect()),
        Value::String(s) => Some(split_shell(s)),
        Value::Null => None,
        other => Some(vec![scalar(other)]),
    }
}

/// A command line split into words as sh does it (single and double quotes, backslashes).
pub fn split_shell(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dependencies_read_both_forms() {
        let short = dependencies_of(&json!(["db"]));
        assert_eq!(short[0].condition, Condition::Started);
        let long = dependencies_of(
            &json!({"db": {"condition": "service_healthy", "restart": true, "required": false}}),
        );
        assert_eq!(long[0].condition, Condition::Healthy);
        assert!(long[0].restart && !long[0].required);
        assert_eq!(depends_on_label(&long), "db:service_healthy:true");
    }

    #[test]
    fn commands_split_as_sh_does() {
        assert_eq!(
            split_shell(r#"sh -c 'echo "a b"' x\ y"#),
            ["sh", "-c", "echo \"a b\"", "x y"]
        );
        assert_eq!(split_shell("a ''"), ["a", ""]);
    }

    #[test]
    fn lists_and_maps_become_pairs() {
        let l = pairs(Some(&json!(["A=1", "B"])));
        assert_eq!(l, [("A".into(), Some("1".into())), ("B".into(), None)]);
        let m = pairs(Some(&json!({"A": 1, "B": null})));
        assert_eq!(m, [("A".into(), Some("1".into())), ("B".into(), None)]);
    }
}
