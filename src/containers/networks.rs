//! Containers and their networks: which containers are on which network (`network rm`,
//! `network prune`, `network inspect`), and connecting or disconnecting a container (`network
//! connect` / `disconnect`, the Docker API's NetworkConnect / NetworkDisconnect, Compose) live
//! when it runs, recorded for its next start when it does not.

use serde_json::{json, Map, Value};

use super::endpoints::{Endpoint, EndpointError};
use super::record::{self, name_of, networks_of, State};
use super::{labels, notify, Ctx};
use crate::network::hook::{self, EndpointOpts, HookConfig};
use crate::network::live::{Change, Request};
use crate::network::manage::{self, Users};
use crate::network::{self as net, NetworkError, DEFAULT_NETWORK};
use crate::selfexec::Helper;

/// Every (network, container name) pair of the containers there are, running or not.
pub async fn users(ctx: &Ctx) -> anyhow::Result<Users> {
    let mut used = Vec::new();
    for c in ctx.client.list(vec![]).await? {
        for n in networks_of(&c) {
            used.push((n, name_of(&c)));
        }
    }
    Ok(Users(used))
}

/// `network ls` with filters (the CLI's and the Docker API's), the default network made first:
/// the containers are read only when a `dangling` filter needs to know which networks are used.
pub async fn list_matching(
    ctx: &Ctx,
    filters: &[manage::ListFilter],
) -> anyhow::Result<Vec<net::Network>> {
    net::ensure_default(&ctx.net)?;
    let all = net::list(&ctx.net)?;
    let users = match filters
        .iter()
        .any(|f| matches!(f, manage::ListFilter::Dangling(_)))
    {
        true => users(ctx).await?,
        false => Users::default(),
    };
    Ok(manage::filter(all, filters, &users))
}

/// A connect or disconnect Docker would refuse, or that failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("container {container} is already connected to network {network}")]
    Already { container: String, network: String },
    #[error("container {container} is not connected to network {network}")]
    NotConnected { container: String, network: String },
    #[error("container {container} has network mode {mode}: a container sharing the host's or another container's network namespace, or with none, cannot be connected to or disconnected from networks")]
    Mode { container: String, mode: String },
    #[error("the {0} network cannot be connected to or disconnected from (give it with --network when creating the container)")]
    Special(String),
    #[error("network {network} has no tuning plugin to set a MAC address with (recreate it with `burrow network create`)")]
    NoMac { network: String },
    #[error("{0}")]
    Ip(String),
    #[error("connecting container {container}: {why}")]
    Helper { container: String, why: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Connects the container `query` names to `endpoint.network` (with its aliases, address and
/// MAC): at once when it runs, on its next start otherwise.
pub async fn connect(ctx: &Ctx, query: &str, endpoint: &Endpoint) -> Result<(), ConnectError> {
    if matches!(endpoint.network.as_str(), "host" | "none") {
        return Err(ConnectError::Special(endpoint.network.clone()));
    }
    let network = net::get(&ctx.net, &endpoint.network)?;
    if network.name == DEFAULT_NETWORK && !endpoint.aliases.is_empty() {
        return Err(EndpointError::AliasOnDefault.into());
    }
    check_endpoint(&network, endpoint)?;
    let (c, cfg) = networked(ctx, query).await?;
    if cfg.networks.iter().any(|(n, _)| *n == network.name) {
        return Err(ConnectError::Already {
            container: name_of(&c),
            network: network.name,
        });
    }
    let opts = EndpointOpts {
        network: network.name.clone(),
        aliases: endpoint.aliases.clone(),
        ip: endpoint.ipv4_address.map(|ip| ip.to_string()),
        mac: endpoint.mac_address.map(|m| m.to_string()),
    };
    let change = Change::Connect {
        endpoint: opts,
        conf: network.conf.clone(),
    };
    apply(ctx, &c, change).await?;
    notify::network(ctx, "connect", &network, Some(&c.id)).await;
    Ok(())
}

/// Disconnects the container `query` names from `network` (`force`: also when the network's
/// config is gone, as Docker's `-f`).
pub async fn disconnect(
    ctx: &Ctx,
    network: &str,
    query: &str,
    force: bool,
) -> Result<(), ConnectError> {
    if matches!(network, "host" | "none") {
        return Err(ConnectError::Special(network.to_string()));
    }
    let found = match net::get(&ctx.net, network) {
        Ok(n) => Some(n),
        Err(NetworkError::NotFound(_)) if force => None,
        Err(e) => return Err(e.into()),
    };
    let name = found
        .as_ref()
        .map_or_else(|| network.to_string(), |n| n.name.clone());
    let (c, cfg) = networked(ctx, query).await?;
    if !cfg.networks.iter().any(|(n, _)| *n == name) {
        return Err(ConnectError::NotConnected {
            container: name_of(&c),
            network: name,
        });
    }
    apply(ctx, &c, Change::Disconnect { network: name }).await?;
    if let Some(n) = &found {
        notify::network(ctx, "disconnect", n, Some(&c.id)).await;
    }
    Ok(())
}

/// Creates a network (`network create`, the API's NetworkCreate), with its create event.
pub async fn create(ctx: &Ctx, req: manage::CreateRequest) -> Result<net::Network, NetworkError> {
    let n = manage::create(&ctx.net, req)?;
    notify::network(ctx, "create", &n, None).await;
    Ok(n)
}

/// Removes the network `query` names unless it is the default one or one of `users` is on it
/// (`network rm`, the API's NetworkDelete), with its destroy event.
pub async fn remove(ctx: &Ctx, query: &str, users: &Users) -> Result<(), NetworkError> {
    let n = net::get(&ctx.net, query)?;
    manage::remove_unused(&ctx.net, query, users)?;
    delete_bridge(ctx, &n).await;
    notify::network(ctx, "destroy", &n, None).await;
    Ok(())
}

/// Deletes a removed network's bridge (with its gateway address and route), as Docker and
/// nerdctl do: left behind, it would keep the subnet's route when a new network takes the same
/// subnet. Rootful the helper deletes it at once. Rootless the bridge is in the launcher's
/// network namespace: the helper takes it down there, which removes its routes at once, and
/// leaves the deletion itself (the kernel's unregister, tens of milliseconds) to a daemon it
/// starts, so that `network rm` and `compose down` do not wait for it. A failure is logged,
/// not returned: the network itself is gone by then.
async fn delete_bridge(ctx: &Ctx, n: &net::Network) {
    let Some(bridge) = n
        .bridge()
        .and_then(|b| b["bridge"].as_str())
        .map(str::to_string)
    else {
        return;
    };
    let launcher = ctx.ep.launcher.as_ref();
    if launcher.is_none() && !nix::unistd::geteuid().is_root() {
        return; // rootless without a running launcher: its namespace and bridges are gone
    }
    let helper = Helper::NetRemove {
        bridge: bridge.clone(),
        launcher_pid: launcher.map(|l| l.child_pid),
        netns: launcher.and_then(|l| l.detached_netns()),
    };
    let out =
        tokio::task::spawn_blocking(move || helper.command().and_then(|mut c| c.output())).await;
    match out {
        Ok(Ok(o)) if o.status.success() => {}
        Ok(Ok(o)) => tracing::warn!(
            "network {} removed, but its bridge {bridge} was not: {}",
            n.name,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(Err(e)) => tracing::warn!(
            "network {} removed, but not its bridge {bridge}: {e}",
            n.name
        ),
        Err(e) => tracing::warn!(
            "network {} removed, but not its bridge {bridge}: {e}",
            n.name
        ),
    }
}

/// Removes every network but the default one that no container is on and `filters` pass
/// (`network prune`; `until` against when it was made, `label`, `label!`); returns them.
pub async fn prune(
    ctx: &Ctx,
    filters: &super::prunefilter::PruneFilters,
) -> anyhow::Result<Vec<net::Network>> {
    let users = users(ctx).await?;
    let mut removed = Vec::new();
    for n in manage::prunable(&ctx.net, &users)? {
        let created = n
            .created()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        let labels: std::collections::HashMap<String, String> = n
            .labels()
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
        if !filters.pass(created, &labels) {
            continue;
        }
        net::remove(&n)?;
        delete_bridge(ctx, &n).await;
        notify::network(ctx, "destroy", &n, None).await;
        removed.push(n);
    }
    Ok(removed)
}

/// `--ip` inside the network's subnet, `--mac-address` only where a plugin can set it.
fn check_endpoint(network: &net::Network, e: &Endpoint) -> Result<(), ConnectError> {
    if let Some(ip) = e.ipv4_address {
        let conf = [(network.name.clone(), network.conf.clone())];
        super::create::check_ip(ip, &network.name, &conf)
            .map_err(|e| ConnectError::Ip(e.to_string()))?;
    }
    if e.mac_address.is_some() && !net::sets_mac(&network.conf) {
        return Err(ConnectError::NoMac {
            network: network.name.clone(),
        });
    }
    Ok(())
}

/// The container and its network hook config; refused for host, none and container: modes.
async fn networked(
    ctx: &Ctx,
    query: &str,
) -> Result<(containerd_client::services::v1::Container, HookConfig), ConnectError> {
    let c = ctx.find(query).await?;
    let dir = ctx.store.container_dir(&c.id);
    match hook::read_config(&dir) {
        Some(cfg) => Ok((c, cfg)),
        None => Err(ConnectError::Mode {
            container: name_of(&c),
            mode: networks_of(&c)
                .first()
                .cloned()
                .unwrap_or_else(|| "none".into()),
        }),
    }
}

/// Runs the change in the helper (live when the task runs), then records the networks label.
async fn apply(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    change: Change,
) -> Result<(), ConnectError> {
    let netns = match record::state(ctx, &c.id).await? {
        State::Running { pid } | State::Paused { pid } => Some(format!("/proc/{pid}/ns/net")),
        _ => None,
    };
    let dir = ctx.store.container_dir(&c.id);
    let request = serde_json::to_string(&Request { change, netns }).map_err(anyhow::Error::from)?;
    let helper = Helper::NetConnect {
        state_dir: dir.clone(),
        launcher_pid: ctx.launcher_pid(),
        request,
    };
    let out = tokio::task::spawn_blocking(move || helper.command().and_then(|mut c| c.output()))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| anyhow::anyhow!("running the network helper: {e}"))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let why = why.strip_prefix("burrow: ").unwrap_or(&why).to_string();
        return Err(ConnectError::Helper {
            container: name_of(c),
            why,
        });
    }
    // Recorded for `network rm`, `ps --filter network=` and inspect.
    if let Some(cfg) = hook::read_config(&dir) {
        let names: Vec<String> = cfg.networks.iter().map(|(n, _)| n.clone()).collect();
        let mut l = c.labels.clone();
        l.insert(
            labels::NETWORKS.into(),
            serde_json::to_string(&names).map_err(anyhow::Error::from)?,
        );
        ctx.client
            .update_labels(c.clone(), l)
            .await
            .map_err(anyhow::Error::from)?;
    }
    Ok(())
}

/// `network inspect`'s `Containers`: id → name, MAC and address of each container attached to
/// `network` now.
pub async fn members(ctx: &Ctx, network: &str) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for c in ctx.client.list(vec![]).await? {
        let dir = ctx.store.container_dir(&c.id);
        let Some(state) = hook::read_state(&dir) else {
            continue;
        };
        for (n, ifname, result) in &state.attachments {
            if n != network {
                continue;
            }
            let (addr, _) = net::cni::first_ipv4(result).unwrap_or_default();
            out.insert(
                c.id.clone(),
                json!({
                    "Name": name_of(&c),
                    "EndpointID": "",
                    "MacAddress": net::cni::mac_of(result, ifname).unwrap_or_default(),
                    "IPv4Address": addr,
                    "IPv6Address": "",
                }),
            );
        }
    }
    Ok(out)
}
