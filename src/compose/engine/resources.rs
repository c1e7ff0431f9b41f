//! The networks and volumes of a project: made (through the library's event-publishing
//! wrappers) with Docker Compose's names and labels before any container, external ones only
//! checked.

use serde_json::Value;

use super::convert::{is_external, resource_name, top};
use super::naming;
use super::service::Service;
use super::up::Report;
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::{networks, volumes, Ctx};
use crate::network as net;

/// The network keys the services use (`default` when one joins none).
fn network_keys(services: &[Service]) -> Vec<String> {
    let mut keys = Vec::new();
    for s in services {
        if s.get("network_mode").is_some() {
            continue;
        }
        let mine: Vec<String> = match s.get("networks") {
            Some(Value::Array(a)) => a.iter().map(super::service::scalar).collect(),
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            _ => vec!["default".into()],
        };
        for k in mine {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys
}

pub async fn ensure_networks(
    ctx: &Ctx,
    project: &Project,
    services: &[Service],
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let top = top(project, "networks");
    for key in network_keys(services) {
        let name = resource_name(project, &top, &key);
        let def = top.get(&key).cloned().unwrap_or(Value::Null);
        let exists = net::get(&ctx.net, &name).is_ok();
        if is_external(&def) {
            if !exists {
                return Err(ComposeError::Load(format!(
                    "network {name} is declared as external, but could not be found: create it with `burrow network create {name}`"
                )));
            }
            continue;
        }
        if exists {
            continue;
        }
        networks::create(ctx, network_request(project, &key, &name, &def)?)
            .await
            .map_err(|e| ComposeError::Load(format!("creating network {name}: {e}")))?;
        report(format!("Network {name}  Created"));
    }
    Ok(())
}

fn network_request(
    project: &Project,
    key: &str,
    name: &str,
    def: &Value,
) -> Result<net::manage::CreateRequest, ComposeError> {
    let s = super::service::scalar;
    let ipam = def
        .get("ipam")
        .and_then(|i| i.get("config"))
        .and_then(|c| c.get(0));
    let mut labels = serde_json::Map::new();
    for (k, v) in super::service::pairs(def.get("labels")) {
        labels.insert(k, Value::String(v.unwrap_or_default()));
    }
    labels.insert(naming::NETWORK.into(), key.into());
    labels.insert(naming::PROJECT.into(), project.name.clone().into());
    labels.insert(naming::VERSION.into(), naming::COMPOSE_VERSION.into());
    Ok(net::manage::CreateRequest {
        name: name.to_string(),
        driver: def.get("driver").map(s).unwrap_or_else(|| "bridge".into()),
        subnet: ipam.and_then(|c| c.get("subnet")).map(s),
        gateway: ipam.and_then(|c| c.get("gateway")).map(s),
        ip_range: ipam.and_then(|c| c.get("ip_range")).map(s),
        labels,
    })
}

pub async fn ensure_volumes(
    ctx: &Ctx,
    project: &Project,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let top = top(project, "volumes");
    let Some(m) = top.as_object() else {
        return Ok(());
    };
    let store = volumes::Volumes::of(ctx);
    for (key, def) in m {
        let name = resource_name(project, &top, key);
        let exists = store.get(&name).is_ok();
        if is_external(def) {
            if !exists {
                return Err(ComposeError::Load(format!(
                    "volume {name} is declared as external, but could not be found: create it with `burrow volume create {name}`"
                )));
            }
            continue;
        }
        if exists {
            continue;
        }
        let mut labels: std::collections::HashMap<String, String> =
            super::service::pairs(def.get("labels"))
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect();
        labels.insert(naming::VOLUME.into(), key.clone());
        labels.insert(naming::PROJECT.into(), project.name.clone());
        labels.insert(naming::VERSION.into(), naming::COMPOSE_VERSION.into());
        volumes::create(ctx, Some(name.clone()), labels)
            .await
            .map_err(|e| ComposeError::Load(format!("creating volume {name}: {e}")))?;
        report(format!("Volume {name}  Created"));
    }
    Ok(())
}
