//! The image config a commit writes, as Docker's commit makes it: the container's own config
//! (what it ran with: its command, environment, user, working dir, ports, labels, volumes,
//! stop signal, healthcheck; not only its image's), or a config the client sent, with the
//! container's filling what that leaves empty (Docker's `merge` in daemon/commit.go).

use containerd_client::services::v1::Container;
use serde_json::{json, Map, Value};

use super::{asked::Asked, mounts, record, Ctx};

/// The keys of a container config an image config carries.
const IMAGE_KEYS: &[&str] = &[
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "Shell",
];

/// The container `c`'s config in an image config's terms, over its image's `image`.
pub fn of_container(ctx: &Ctx, c: &Container, image: &Value) -> Value {
    let dir = ctx.store.container_dir(&c.id);
    let asked = Asked::read(&dir);
    let spec = record::spec_of(c);
    let process = spec.as_ref().and_then(|s| s.process().clone());
    let mut v = match image {
        Value::Object(_) => image.clone(),
        _ => json!({}),
    };
    let strings = |l: &[String]| -> Value {
        match l.is_empty() {
            true => Value::Null,
            false => json!(l),
        }
    };
    let spec_env = process
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default();
    let env = match asked.as_ref().and_then(|a| a.env.clone()) {
        Some(env) => env,
        None => runtime_env_removed(spec_env, &v["Env"]),
    };
    v["Env"] = strings(&env);
    if let Some(a) = &asked {
        v["Entrypoint"] = strings(&a.entrypoint);
        v["Cmd"] = strings(&a.cmd);
        v["User"] = json!(a.user);
        if !a.exposed_ports.is_empty() {
            let ports: Map<String, Value> = a
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            v["ExposedPorts"] = Value::Object(ports);
        }
        if !a.stop_signal.is_empty() {
            v["StopSignal"] = json!(a.stop_signal);
        }
    }
    let cwd = process.as_ref().map(|p| p.cwd().display().to_string());
    if let Some(cwd) = cwd.filter(|d| d != "/" || !text(&v["WorkingDir"]).is_empty()) {
        v["WorkingDir"] = json!(cwd);
    }
    // The image's labels with the container's over them (a Docker container's include both).
    let mut labels = v["Labels"].as_object().cloned().unwrap_or_default();
    for (k, val) in record::user_labels_of(c) {
        labels.insert(k, Value::String(val));
    }
    v["Labels"] = match labels.is_empty() {
        true => Value::Null,
        false => Value::Object(labels),
    };
    // The image's volumes and the container's anonymous ones (`-v /path`).
    let mut volumes = v["Volumes"].as_object().cloned().unwrap_or_default();
    for (dest, _) in mounts::anonymous_of(ctx, c) {
        volumes.insert(dest, json!({}));
    }
    if !volumes.is_empty() {
        v["Volumes"] = Value::Object(volumes);
    }
    if let Some(h) = super::health::config_of(c).and_then(|h| serde_json::to_value(h).ok()) {
        v["Healthcheck"] = h;
    }
    v
}

/// The environment a container made before its config's was recorded ran with, less what the
/// runtime adds (HOSTNAME, and HOME, TERM and PATH where its image did not set them).
fn runtime_env_removed(env: Vec<String>, image_env: &Value) -> Vec<String> {
    let from_image = |k: &str| {
        image_env
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|e| e.split_once('=').is_some_and(|(ik, _)| ik == k))
    };
    env.into_iter()
        .filter(|e| {
            let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
            !matches!(key, "HOSTNAME" | "HOME" | "TERM" | "PATH") || from_image(key)
        })
        .collect()
}

/// The keys of a client's container config (the Docker API's commit body) an image keeps.
pub fn image_keys(config: &Value) -> Value {
    let kept: Map<String, Value> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| IMAGE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Docker's merge: what `user` (a client's config, changes applied) leaves empty comes from
/// the container's config `container`; ports, environment, volumes and labels are added to.
pub fn merge(user: &mut Value, container: &Value) {
    if !user.is_object() {
        *user = json!({});
    }
    for key in ["User", "WorkingDir", "StopSignal"] {
        if is_empty(&user[key]) && !is_empty(&container[key]) {
            user[key] = container[key].clone();
        }
    }
    for key in ["ExposedPorts", "Volumes"] {
        match (user[key].as_object_mut(), container[key].as_object()) {
            (Some(mine), Some(theirs)) => {
                for (k, v) in theirs {
                    mine.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            (None, Some(_)) => user[key] = container[key].clone(),
            _ => {}
        }
    }
    let env_key = |e: &str| e.split_once('=').map(|(k, _)| k).unwrap_or(e).to_string();
    match (user["Env"].as_array_mut(), container["Env"].as_array()) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            let have: Vec<String> = mine.iter().filter_map(Value::as_str).map(env_key).collect();
            for e in theirs {
                if e.as_str().is_some_and(|e| !have.contains(&env_key(e))) {
                    mine.push(e.clone());
                }
            }
        }
        _ => {
            if !is_empty(&container["Env"]) {
                user["Env"] = container["Env"].clone();
            }
        }
    }
    let mut labels = user["Labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in container["Labels"].as_object().into_iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    user["Labels"] = Value::Object(labels);
    if is_empty(&user["Entrypoint"]) {
        if is_empty(&user["Cmd"]) {
            user["Cmd"] = container["Cmd"].clone();
            if let Some(a) = container.get("ArgsEscaped") {
                user["ArgsEscaped"] = a.clone();
            }
        }
        if user["Entrypoint"].is_null() {
            user["Entrypoint"] = container["Entrypoint"].clone();
        }
    }
    if let Some(theirs) = container["Healthcheck"].as_object() {
        match user["Healthcheck"].as_object_mut() {
            None => user["Healthcheck"] = container["Healthcheck"].clone(),
            Some(mine) => {
                for (k, v) in theirs {
                    if mine.get(k).is_none_or(is_empty) {
                        mine.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_fills_what_the_client_left_empty() {
        let container = json!({
            "User": "app", "WorkingDir": "/srv", "Env": ["PATH=/bin", "A=1"],
            "Cmd": ["serve"], "Entrypoint": null, "ExposedPorts": {"80/tcp": {}},
            "Labels": {"team": "x"}, "StopSignal": "SIGINT",
        });
        let mut user =
            json!({"Env": ["A=2", "B=3"], "ExposedPorts": {"53/udp": {}}, "Labels": {"team": "y"}});
        merge(&mut user, &container);
        assert_eq!(user["Env"], json!(["A=2", "B=3", "PATH=/bin"]));
        assert_eq!(user["ExposedPorts"], json!({"53/udp": {}, "80/tcp": {}}));
        assert_eq!(
            (&user["User"], &user["WorkingDir"]),
            (&json!("app"), &json!("/srv"))
        );
        assert_eq!(user["Cmd"], json!(["serve"]));
        assert_eq!(user["StopSignal"], "SIGINT");
        assert_eq!(user["Labels"], json!({"team": "y"}));
        // A client's entrypoint keeps its own (absent) command.
        let mut user = json!({"Entrypoint": ["run"]});
        merge(&mut user, &container);
        assert!(user["Cmd"].is_null(), "{user}");
    }

    #[test]
    fn legacy_environment_loses_what_the_runtime_added() {
        let env = vec![
            "PATH=/usr/bin".to_string(),
            "HOSTNAME=abc".to_string(),
            "A=1".to_string(),
            "HOME=/root".to_string(),
        ];
        let kept = runtime_env_removed(env, &json!(["PATH=/usr/bin"]));
        assert_eq!(kept, ["PATH=/usr/bin", "A=1"]);
    }

    #[test]
    fn image_keys_drop_the_container_only_fields() {
        let v = image_keys(&json!({"Hostname": "h", "Tty": true, "Cmd": ["x"], "Labels": {}}));
        assert_eq!(v, json!({"Cmd": ["x"], "Labels": {}}));
    }
}
