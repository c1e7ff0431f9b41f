//! The container's OCI hooks (like `nerdctl internal oci-hook`): runc runs them in the runtime's
//! namespaces, which are the launcher's when rootless. `createRuntime` attaches the container's
//! network namespace to its CNI networks, writes /etc/hosts and publishes ports (rootless through
//! the launcher's API, rootful through CNI portmap); `poststop` undoes all of it.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cni::{self, Attachment, RuntimeConfig};
use super::ports::PortMapping;
use super::{files, NetPaths};

/// What the hook needs to know, written by `run`/`create` into the container's state dir.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookConfig {
    pub container_id: String,
    pub name: String,
    pub hostname: String,
    /// Network names, each with its conflist as it was when the container was created.
    pub networks: Vec<(String, Value)>,
    pub ports: Vec<PortMapping>,
    pub plugin_dirs: Vec<PathBuf>,
    /// The launcher's API socket when rootless: ports go through it instead of CNI portmap.
    pub launcher_api: Option<PathBuf>,
    pub extra_hosts: Vec<(String, String)>,
    /// The file bind-mounted at the container's /etc/hosts.
    pub hosts_file: PathBuf,
    /// `--ip`: the address asked of the first network's IPAM.
    #[serde(default)]
    pub ip: Option<String>,
}

/// What `createRuntime` did, so `poststop` can undo it and `inspect`/`port` can show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HookState {
    /// (network, ifname, CNI result) per attachment.
    pub attachments: Vec<(String, String, Value)>,
    /// The first IPv4 address, without prefix.
    pub ip: Option<String>,
    pub prefix_len: Option<u8>,
    pub gateway: Option<String>,
    /// Ids of the ports published through the launcher's API.
    pub launcher_port_ids: Vec<u64>,
}

pub const CONFIG_FILE: &str = "network-config.json";
pub const STATE_FILE: &str = "network-state.json";

/// The hook failed; runc reports this text as the reason the container did not start.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("reading the OCI state from stdin: {0}")]
    State(String),
    #[error(transparent)]
    Cni(#[from] cni::CniError),
    #[error("publishing {port} through the launcher: {why}")]
    Port { port: String, why: String },
}

fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T, HookError> {
    let text = std::fs::read(path).map_err(|source| HookError::Io {
        op: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|e| HookError::Malformed {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), HookError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap_or_default())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| HookError::Io {
            op: "writing",
            path: path.to_path_buf(),
            source,
        })
}

/// Writes the hook's config for a container about to be created.
pub fn write_config(state_dir: &Path, cfg: &HookConfig) -> Result<(), HookError> {
    write_json(&state_dir.join(CONFIG_FILE), cfg)
}

/// The hook's state, if the container has been attached.
pub fn read_state(state_dir: &Path) -> Option<HookState> {
    read_json(&state_dir.join(STATE_FILE)).ok()
}

/// The pid in the OCI state JSON runc writes to a hook's stdin.
pub fn pid_from_stdin(mut input: impl Read) -> Result<i64, HookError> {
    let mut s = String::new();
    input
        .read_to_string(&mut s)
        .map_err(|e| HookError::State(e.to_string()))?;
    let v: Value = serde_json::from_str(&s).map_err(|e| HookError::State(e.to_string()))?;
    v["pid"]
        .as_i64()
        .ok_or_else(|| HookError::State("no pid in the state".into()))
}

fn attachment(cfg: &HookConfig, netns: &str, i: usize) -> Attachment {
    Attachment {
        container_id: cfg.container_id.clone(),
        netns: netns.to_string(),
        ifname: format!("eth{i}"),
        plugin_dirs: cfg.plugin_dirs.clone(),
    }
}

fn runtime_config(cfg: &HookConfig) -> RuntimeConfig {
    let mut rt = RuntimeConfig::new();
    if let Some(ip) = &cfg.ip {
        rt.insert("ips".into(), serde_json::json!([ip]));
    }
    if cfg.launcher_api.is_none() && !cfg.ports.is_empty() {
        let pm: Vec<Value> = cfg
            .ports
            .iter()
            .map(|p| {
                serde_json::json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol,
                    "hostIP": p.host_ip,
                })
            })
            .collect();
        rt.insert("portMappings".into(), Value::Array(pm));
    }
    rt
}

/// `createRuntime`: attach, write /etc/hosts, publish ports. Undoes its own work on failure.
pub fn create_runtime(state_dir: &Path, pid: i64) -> Result<HookState, HookError> {
    let cfg: HookConfig = read_json(&state_dir.join(CONFIG_FILE))?;
    let netns = format!("/proc/{pid}/ns/net");
    let mut state = HookState::default();
    let result = attach(&cfg, &netns, &mut state);
    if let Err(e) = result {
        detach(&cfg, &state);
        return Err(e);
    }
    write_json(&state_dir.join(STATE_FILE), &state)?;
    refresh_peer_hosts(state_dir);
    Ok(state)
}

/// One attached container, as seen by its peers' /etc/hosts.
struct Member {
    networks: Vec<String>,
    ip: String,
    names: Vec<String>,
    cfg: HookConfig,
}

fn member(dir: &Path) -> Option<Member> {
    let cfg: HookConfig = read_json(&dir.join(CONFIG_FILE)).ok()?;
    let state: HookState = read_json(&dir.join(STATE_FILE)).ok()?;
    let mut names = vec![cfg
        .container_id
        .get(..12)
        .unwrap_or(&cfg.container_id)
        .to_string()];
    for n in [&cfg.hostname, &cfg.name] {
        if !n.is_empty() && !names.contains(n) {
            names.push(n.clone());
        }
    }
    Some(Member {
        networks: cfg.networks.iter().map(|(n, _)| n.clone()).collect(),
        ip: state.ip.clone()?,
        names,
        cfg,
    })
}

/// Rewrites the /etc/hosts of every attached container next to `state_dir` so containers on a
/// shared network find each other by name (as nerdctl's etchosts does). Best effort.
pub fn refresh_peer_hosts(state_dir: &Path) {
    let Some(parent) = state_dir.parent() else {
        return;
    };
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(parent.join(".hosts.lock"))
        .ok()
        .and_then(|f| nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok());
    let members: Vec<Member> = std::fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| member(&e.path()))
        .collect();
    for m in &members {
        let mut extra = Vec::new();
        for peer in &members {
            if std::ptr::eq(peer, m) || !peer.networks.iter().any(|n| m.networks.contains(n)) {
                continue;
            }
            extra.push((peer.names.join(" "), peer.ip.clone()));
        }
        extra.extend(m.cfg.extra_hosts.iter().cloned());
        let names: Vec<&str> = m.names.iter().map(String::as_str).collect();
        let text = files::hosts(Some(&m.ip), &names, &extra);
        if let Err(err) = std::fs::write(&m.cfg.hosts_file, text) {
            tracing::warn!(%err, path = %m.cfg.hosts_file.display(), "updating /etc/hosts");
        }
    }
    drop(lock);
}

fn attach(cfg: &HookConfig, netns: &str, state: &mut HookState) -> Result<(), HookError> {
    let rt = runtime_config(cfg);
    for (i, (name, conf)) in cfg.networks.iter().enumerate() {
        let at = attachment(cfg, netns, i);
        let result = cni::add(conf, &at, &rt)?;
        if state.ip.is_none() {
            if let Some((addr, gw)) = cni::first_ipv4(&result) {
                let (ip, len) = addr.split_once('/').unwrap_or((&addr, "32"));
                state.ip = Some(ip.to_string());
                state.prefix_len = len.parse().ok();
                state.gateway = gw;
            }
        }
        state.attachments.push((name.clone(), at.ifname, result));
    }
    let names = [
        cfg.container_id.get(..12).unwrap_or(&cfg.container_id),
        cfg.hostname.as_str(),
        cfg.name.as_str(),
    ];
    let hosts = files::hosts(state.ip.as_deref(), &names, &cfg.extra_hosts);
    // Written in place: the file is bind-mounted into the container.
    std::fs::write(&cfg.hosts_file, hosts).map_err(|source| HookError::Io {
        op: "writing",
        path: cfg.hosts_file.clone(),
        source,
    })?;
    if let (Some(api), false) = (&cfg.launcher_api, cfg.ports.is_empty()) {
        let child_ip: Option<IpAddr> = state.ip.as_deref().and_then(|s| s.parse().ok());
        let client = burrow_rootlesskit::api::client::Client::new(api);
        for p in &cfg.ports {
            let spec = launcher_spec(p, child_ip).map_err(|why| HookError::Port {
                port: p.display(),
                why,
            })?;
            let status = client.add_port(&spec).map_err(|e| HookError::Port {
                port: p.display(),
                why: e.to_string(),
            })?;
            state.launcher_port_ids.push(status.id);
        }
    }
    Ok(())
}

/// The launcher port for a mapping: host IP:port on the host → container IP:port in the launcher.
pub fn launcher_spec(
    p: &PortMapping,
    child_ip: Option<IpAddr>,
) -> Result<burrow_rootlesskit::port::PortSpec, String> {
    use burrow_rootlesskit::port::{PortSpec, Proto};
    let parent_ip: IpAddr = p
        .host_ip
        .parse()
        .map_err(|_| format!("bad host IP {:?}", p.host_ip))?;
    let proto = match (p.protocol.as_str(), parent_ip) {
        ("udp", IpAddr::V6(_)) => Proto::Udp6,
        ("udp", _) => Proto::Udp,
        (_, IpAddr::V6(_)) => Proto::Tcp6,
        _ => Proto::Tcp,
    };
    let child_ip = child_ip.ok_or("the container has no IPv4 address (use --network bridge)")?;
    Ok(PortSpec {
        proto,
        parent_ip: Some(parent_ip),
        parent_port: p.host_port,
        child_ip: Some(child_ip),
        child_port: p.container_port,
    })
}

fn detach(cfg: &HookConfig, state: &HookState) {
    if let Some(api) = &cfg.launcher_api {
        let client = burrow_rootlesskit::api::client::Client::new(api);
        for id in &state.launcher_port_ids {
            match client.remove_port(*id) {
                Ok(()) => {}
                // Taken over by burrow-bypass (bound on the host by the container itself).
                Err(burrow_rootlesskit::api::client::ClientError::Api { status: 404, .. }) => {}
                Err(err) => tracing::warn!(%err, id, "removing a published port"),
            }
        }
    }
    let rt = runtime_config(cfg);
    for (i, (_, conf)) in cfg.networks.iter().enumerate().rev() {
        let prev = state
            .attachments
            .iter()
            .find(|(n, _, _)| conf["name"].as_str() == Some(n.as_str()))
            .map(|(_, _, r)| r);
        // The namespace is gone by poststop; CNI DEL must cope with an empty CNI_NETNS.
        if let Err(err) = cni::del(conf, &attachment(cfg, "", i), &rt, prev) {
            tracing::warn!(%err, "detaching from a network");
        }
    }
}

/// `poststop`: unpublish, detach, forget. Safe to run twice.
pub fn poststop(state_dir: &Path) -> Result<(), HookError> {
    let cfg: HookConfig = match read_json(&state_dir.join(CONFIG_FILE)) {
        Ok(c) => c,
        // No config: the container never had networks, or was already cleaned.
        Err(HookError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let state = read_state(state_dir).unwrap_or_default();
    detach(&cfg, &state);
    let _ = std::fs::remove_file(state_dir.join(STATE_FILE));
    refresh_peer_hosts(state_dir);
    Ok(())
}

/// The plugin dirs and the conflists of `networks`, for the hook config.
pub fn resolve_networks(
    paths: &NetPaths,
    networks: &[String],
) -> Result<Vec<(String, Value)>, super::NetworkError> {
    networks
        .iter()
        .map(|n| super::get(paths, n).map(|net| (net.name, net.conf)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_is_read_from_runc_state() {
        let state =
            r#"{"ociVersion":"1.0.2","id":"x","status":"creating","pid":4242,"bundle":"/b"}"#;
        assert_eq!(pid_from_stdin(state.as_bytes()).unwrap(), 4242);
        assert!(pid_from_stdin(&b"{}"[..]).is_err());
    }

    #[test]
    fn launcher_port_specs() {
        let p = PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: "0.0.0.0".into(),
        };
        let s = launcher_spec(&p, Some("10.4.0.2".parse().unwrap())).unwrap();
        assert_eq!(s.parent_port, 8080);
        assert_eq!(s.child_port, 80);
        assert_eq!(s.child_ip, Some("10.4.0.2".parse().unwrap()));
        assert!(s.validate().is_ok());
        assert!(launcher_spec(&p, None).is_err());
    }

    #[test]
    fn poststop_without_config_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        poststop(dir.path()).unwrap();
    }
}
