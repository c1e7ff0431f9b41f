//! `network connect` / `network disconnect` on the network hook's files: a running container's
//! namespace gets (or loses) an interface at once, a stopped one only has its hook config
//! changed and is attached on its next start. Both update the /etc/hosts of the container and
//! its peers. Runs under the container's network lock, inside the launcher's namespaces when
//! rootless (`burrow internal net-connect`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni;
use super::hook::{self, EndpointOpts, HookConfig, HookError, HookState, CONFIG_FILE};

/// What to change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Change {
    /// Join a network (its conflist) with these settings.
    Connect { endpoint: EndpointOpts, conf: Value },
    /// Leave the network of this name.
    Disconnect { network: String },
}

/// A change and where: `netns` is the running task's namespace path, None when stopped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub change: Change,
    pub netns: Option<String>,
}

/// Applies `req` to the container whose state dir is `state_dir`, under its network lock.
pub fn apply(state_dir: &Path, req: &Request) -> Result<(), HookError> {
    let _lock = hook::lock(state_dir)?;
    let cfg_path = state_dir.join(CONFIG_FILE);
    let mut cfg: HookConfig = hook::read_json(&cfg_path)?;
    let live = req
        .netns
        .as_deref()
        .map(|ns| (ns, hook::read_state(state_dir).unwrap_or_default()));
    // Only a running container's change runs plugins.
    let _chain = live
        .as_ref()
        .map(|_| hook::ChainLock::take(state_dir))
        .transpose()?;
    match (&req.change, live) {
        (Change::Connect { endpoint, conf }, live) => {
            let name = endpoint.network.clone();
            cfg.networks.push((name.clone(), conf.clone()));
            cfg.endpoints.retain(|e| e.network != name);
            cfg.endpoints.push(endpoint.clone());
            if let Some((netns, mut state)) = live {
                let at = cni::Attachment {
                    ifname: free_ifname(&state),
                    ..hook::attachment(&cfg, netns, 0)
                };
                let conf = hook::launcher_conf(&cfg, conf, hook::launcher_mtu(&cfg));
                // Its default route stays the one it has (Docker's single gateway).
                let attached = |n: &str| state.attachments.iter().any(|(a, _, _)| a == n);
                let routed = cfg
                    .networks
                    .iter()
                    .any(|(n, c)| attached(n) && super::gives_default_route(c));
                let conf = if routed {
                    super::without_default_route(&conf)
                } else {
                    conf
                };
                let (conf, rules) = super::masq::plugin_conf(&conf);
                for rule in &rules {
                    rule.ensure().map_err(HookError::from)?;
                }
                let result = cni::add(&conf, &at, &hook::runtime_config(&cfg, &name))?;
                state.attachments.push((name, at.ifname, result));
                state.set_primary();
                hook::write_state(state_dir, &state)?;
            }
        }
        (Change::Disconnect { network }, live) => {
            if let Some((netns, mut state)) = live {
                detach_one(&cfg, &mut state, netns, network);
                hook::write_state(state_dir, &state)?;
            }
            cfg.networks.retain(|(n, _)| n != network);
            cfg.endpoints.retain(|e| &e.network != network);
        }
    }
    hook::write_json(&cfg_path, &cfg)?;
    if req.netns.is_some() {
        hook::refresh_peer_hosts(state_dir);
    }
    Ok(())
}

/// `ethN` with the lowest N no attachment uses.
fn free_ifname(state: &HookState) -> String {
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !state.attachments.iter().any(|(_, f, _)| f == n))
        .unwrap_or_default()
}

/// CNI DEL of one network (the interface goes with it), forgotten in `state`.
fn detach_one(cfg: &HookConfig, state: &mut HookState, netns: &str, network: &str) {
    let Some(pos) = state.attachments.iter().position(|(n, _, _)| n == network) else {
        return;
    };
    let (_, ifname, result) = state.attachments.remove(pos);
    if let Some(i) = cfg.networks.iter().position(|(n, _)| n == network) {
        let at = cni::Attachment {
            ifname,
            ..hook::attachment(cfg, netns, 0)
        };
        // The runtime config the attach had (on the first network, the published ports for
        // portmap): without them portmap's DEL would be passed by.
        let rt = hook::rootless_runtime_config(cfg, network, i);
        let (conf, _) = super::masq::plugin_conf(&cfg.networks[i].1);
        if let Err(err) = cni::del(&conf, &at, &rt, Some(&result)) {
            tracing::warn!(%err, network, "detaching from a network");
        }
    }
    state.set_primary();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(dir: &Path) -> HookConfig {
        HookConfig {
            container_id: "c".repeat(64),
            name: "web".into(),
            hostname: "web".into(),
            networks: vec![("a".into(), json!({"name": "a", "plugins": []}))],
            ports: vec![],
            plugin_dirs: vec![],
            launcher_api: None,
            launcher_netns: None,
            extra_hosts: vec![],
            hosts_file: dir.join("hosts"),
            ip: None,
            endpoints: vec![],
            links: vec![],
        }
    }

    #[test]
    fn stopped_containers_change_their_config_only() {
        let dir = tempfile::tempdir().unwrap();
        hook::write_config(dir.path(), &cfg(dir.path())).unwrap();
        let endpoint = EndpointOpts {
            network: "b".into(),
            aliases: vec!["db".into()],
            ..Default::default()
        };
        let conf = json!({"name": "b", "plugins": []});
        let connect = Request {
            change: Change::Connect { endpoint, conf },
            netns: None,
        };
        apply(dir.path(), &connect).unwrap();
        let got: HookConfig = hook::read_json(&dir.path().join(CONFIG_FILE)).unwrap();
        assert_eq!(got.networks.len(), 2);
        assert_eq!(got.endpoint("b").aliases, ["db"]);
        assert!(hook::read_state(dir.path()).is_none());
        let disconnect = Request {
            change: Change::Disconnect {
                network: "a".into(),
            },
            netns: None,
        };
        apply(dir.path(), &disconnect).unwrap();
        let got: HookConfig = hook::read_json(&dir.path().join(CONFIG_FILE)).unwrap();
        assert_eq!(got.networks[0].0, "b");
        assert_eq!(got.networks.len(), 1);
    }

    #[test]
    fn interfaces_take_the_lowest_free_name() {
        let mut s = HookState::default();
        assert_eq!(free_ifname(&s), "eth0");
        s.attachments.push(("a".into(), "eth0".into(), json!({})));
        s.attachments.push(("c".into(), "eth2".into(), json!({})));
        assert_eq!(free_ifname(&s), "eth1");
    }
}
