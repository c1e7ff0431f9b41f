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
        // Checked even when it exists: a setting burrow cannot honour is refused either way.
        let req = network_request(project, &key, &name, &def)?;
        if exists {
            continue;
        }
        networks::create(ctx, req)
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
    refuse_settings(
        &format!("networks.{key}"),
        def,
        &[("enable_ipv6", "IPv6 on networks")],
    )?;
    let configs = def
        .get("ipam")
        .and_then(|i| i.get("config"))
        .and_then(Value::as_array);
    if configs.is_some_and(|c| c.len() > 1) {
        return Err(ComposeError::Load(format!(
            "networks.{key}.ipam.config: burrow's networks have one subnet: give one entry"
        )));
    }
    if let Some(d) = def.get("ipam").and_then(|i| i.get("driver")).map(s) {
        if d != "default" {
            return Err(ComposeError::Load(format!(
                "networks.{key}.ipam.driver {d:?}: burrow has only the default IPAM driver"
            )));
        }
    }
    let ipam = configs.and_then(|c| c.first());
    let opts = super::service::pairs(def.get("driver_opts"));
    let options = net::DriverOptions::parse(
        opts.iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or_default())),
    )
    .map_err(|e| ComposeError::Load(format!("networks.{key}.driver_opts: {e}")))?;
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
        internal: def.get("internal").and_then(Value::as_bool) == Some(true),
        options,
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
        if let Some(d) = def.get("driver").map(super::service::scalar) {
            if d != "local" {
                return Err(ComposeError::Load(format!(
                    "volumes.{key}.driver {d:?}: burrow has only the local volume driver"
                )));
            }
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
        let options: std::collections::HashMap<String, String> =
            super::service::pairs(def.get("driver_opts"))
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect();
        volumes::create(ctx, Some(name.clone()), labels, options)
            .await
            .map_err(|e| ComposeError::Load(format!("creating volume {name}: {e}")))?;
        report(format!("Volume {name}  Created"));
    }
    Ok(())
}

/// Refuses the settings of a top-level network or volume burrow cannot honour (set to
/// something other than false or empty), naming the key.
fn refuse_settings(at: &str, def: &Value, keys: &[(&str, &str)]) -> Result<(), ComposeError> {
    for (k, what) in keys {
        let set = match def.get(*k) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Object(m)) => !m.is_empty(),
            Some(_) => true,
        };
        if set {
            return Err(ComposeError::Load(format!(
                "{at}.{k}: burrow does not support {what}; remove it from the file"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_burrow_cannot_honour_are_refused() {
        let p = crate::compose::project::for_tests("services:\n  a:\n    image: busybox\n");
        let ok = network_request(
            &p,
            "back",
            "app_back",
            &json!({"internal": false, "ipam": {"config": [{"subnet": "10.9.0.0/24"}]}}),
        )
        .unwrap();
        assert_eq!(ok.subnet.as_deref(), Some("10.9.0.0/24"));
        let mtu = network_request(
            &p,
            "back",
            "app_back",
            &json!({"internal": true, "driver_opts": {"com.docker.network.driver.mtu": 1400}}),
        )
        .unwrap();
        assert!(mtu.internal);
        assert_eq!(mtu.options.mtu, Some(1400));
        for (def, says) in [
            (json!({"enable_ipv6": true}), "networks.back.enable_ipv6"),
            (
                json!({"driver_opts": {"com.docker.network.bridge.host_binding_ipv4": "1.2.3.4"}}),
                "networks.back.driver_opts",
            ),
            (
                json!({"ipam": {"driver": "dhcp"}}),
                "networks.back.ipam.driver",
            ),
            (
                json!({"ipam": {"config": [{"subnet": "10.1.0.0/24"}, {"subnet": "10.2.0.0/24"}]}}),
                "networks.back.ipam.config",
            ),
        ] {
            let e = network_request(&p, "back", "app_back", &def).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
        let e = refuse_settings(
            "volumes.data",
            &json!({"driver_opts": {"type": "none"}}),
            &[("driver_opts", "x")],
        )
        .unwrap_err();
        assert!(e.to_string().contains("volumes.data.driver_opts"), "{e}");
    }
}
