//! The container's OCI hooks (like `nerdctl internal oci-hook`): runc runs them in the runtime's
//! namespaces, which are the launcher's when rootless. `createRuntime` attaches the container's
//! network namespace to its CNI networks, writes /etc/hosts and publishes ports (rootless through
//! the launcher's API, rootful through CNI portmap); `poststop` undoes all of it.

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
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
    /// A `--detach-netns` launcher's network namespace (inside its mount namespace): the
    /// runtime runs in the host's network, so the hooks join this one, where the bridges live.
    #[serde(default)]
    pub launcher_netns: Option<PathBuf>,
    pub extra_hosts: Vec<(String, String)>,
    /// The file bind-mounted at the container's /etc/hosts.
    pub hosts_file: PathBuf,
    /// `--ip`: the address asked of the first network's IPAM (configs written before
    /// `endpoints` existed).
    #[serde(default)]
    pub ip: Option<String>,
    /// Per network: aliases, fixed address and MAC (`--network name=..,alias=..`).
    #[serde(default)]
    pub endpoints: Vec<EndpointOpts>,
    /// `--link`: (the linked container's id, the alias it has here); the alias goes on that
    /// container's line in /etc/hosts wherever it is now (configs written before this kept
    /// links as fixed `extra_hosts`).
    #[serde(default)]
    pub links: Vec<(String, String)>,
}

/// How the container joins one network: the names it answers to there besides its own, and
/// the address and MAC asked of the plugins.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointOpts {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
}

impl HookConfig {
    /// The settings for `network`, `--ip` of old configs applying to the first one.
    pub fn endpoint(&self, network: &str) -> EndpointOpts {
        if let Some(e) = self.endpoints.iter().find(|e| e.network == network) {
            return e.clone();
        }
        let first = self.networks.first().is_some_and(|(n, _)| n == network);
        EndpointOpts {
            network: network.to_string(),
            ip: if first { self.ip.clone() } else { None },
            ..EndpointOpts::default()
        }
    }
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
    /// Set while the attachment was made ahead of the task by `run` (see [`super::prepare`]) in
    /// the namespace with this identity, and not yet claimed by the task's `createRuntime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<NsId>,
}

impl HookState {
    /// Takes `ip`, `prefix_len` and `gateway` from the first attachment with an IPv4 address.
    pub fn set_primary(&mut self) {
        let first = self
            .attachments
            .iter()
            .find_map(|(_, _, r)| cni::first_ipv4(r));
        let (ip, len, gw) = match &first {
            Some((addr, gw)) => {
                let (ip, len) = addr.split_once('/').unwrap_or((addr, "32"));
                (Some(ip.to_string()), len.parse().ok(), gw.clone())
            }
            None => (None, None, None),
        };
        self.ip = ip;
        self.prefix_len = len;
        self.gateway = gw;
    }
}

/// A namespace's identity (device and inode of its nsfs file).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    pub fn of(path: &Path) -> std::io::Result<NsId> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

pub const CONFIG_FILE: &str = "network-config.json";
/// Written before the first plugin runs and removed once every attachment is undone, so its
/// presence means "something may be attached".
pub const STATE_FILE: &str = "network-state.json";
/// Held (flock) by whoever attaches or detaches the container, so the hooks, `run`'s
/// ahead-of-time attach and a teardown never run plugins for the same container at once.
pub const LOCK_FILE: &str = "network.lock";
/// Why `run`'s ahead-of-time attach failed, for the task's `createRuntime` to report.
pub const AHEAD_ERROR_FILE: &str = "network-ahead-error";
/// The state file once a teardown outside the task has claimed it.
pub const CLAIMED_FILE: &str = "network-state.detaching.json";

/// Held (flock) while a CNI chain runs, in the `containers` dir above every container's
/// state dir: plugins of different containers share the host's (or the launcher's) namespace,
/// and some check-then-create in it (the firewall plugin's `CNI-FORWARD` and `CNI-ADMIN`
/// chains; a second ADD at the same time fails with "File exists"). Held exclusively until a
/// chain has once run in that namespace (its [`CHAINS_READY_PREFIX`] marker), shared after:
/// containers then attach at once. Always taken after a container's own lock.
pub const CHAIN_LOCK_FILE: &str = ".cni.lock";
/// Beside [`CHAIN_LOCK_FILE`], followed by a namespace's `DEV-INO`: a chain has run there
/// under the exclusive lock, so the shared iptables chains exist.
pub const CHAINS_READY_PREFIX: &str = ".cni.ready-";

/// Takes the container's network lock, waiting for it.
pub fn lock(state_dir: &Path) -> Result<Flock<std::fs::File>, HookError> {
    let (file, path) = lock_file(&state_dir.join(LOCK_FILE))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| locking(path, errno))
}

/// The lock on CNI chains of all containers under the data root ([`CHAIN_LOCK_FILE`]),
/// for chains run in the calling thread's network namespace.
pub struct ChainLock {
    _flock: Flock<std::fs::File>,
    /// Where a chain run under the exclusive lock leaves its marker; None when shared.
    exclusive: Option<PathBuf>,
}

impl ChainLock {
    /// Takes the lock, waiting for it: shared once a chain has run in this namespace under
    /// the exclusive lock (the shared iptables chains exist), else exclusive. `state_dir` is
    /// one container's.
    pub fn take(state_dir: &Path) -> Result<ChainLock, HookError> {
        let marker = ready_marker(state_dir);
        let shared = marker.as_deref().is_some_and(Path::exists);
        Self::take_as(state_dir, shared, marker)
    }

    /// Takes the lock exclusively (a retry after a chain failed under the shared lock).
    pub fn exclusive(state_dir: &Path) -> Result<ChainLock, HookError> {
        Self::take_as(state_dir, false, ready_marker(state_dir))
    }

    fn take_as(
        state_dir: &Path,
        shared: bool,
        marker: Option<PathBuf>,
    ) -> Result<ChainLock, HookError> {
        let (file, path) = lock_file(&chain_dir(state_dir).join(CHAIN_LOCK_FILE))?;
        let arg = if shared {
            FlockArg::LockShared
        } else {
            FlockArg::LockExclusive
        };
        let flock = Flock::lock(file, arg).map_err(|(_, errno)| locking(path, errno))?;
        Ok(ChainLock {
            _flock: flock,
            exclusive: if shared { None } else { marker },
        })
    }

    /// Whether it is held shared (a failed chain is worth one retry exclusively).
    pub fn is_shared(&self) -> bool {
        self.exclusive.is_none()
    }

    /// Records that a chain ran whole under the exclusive lock: later chains in this
    /// namespace share the lock.
    pub fn ran(&self) {
        let Some(marker) = &self.exclusive else {
            return;
        };
        if std::fs::write(marker, b"").is_err() {
            return;
        }
        // Markers of namespaces gone since (a launcher started again) go.
        let (Some(dir), Some(mine)) = (marker.parent(), marker.file_name()) else {
            return;
        };
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            if name != mine && name.to_string_lossy().starts_with(CHAINS_READY_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// containers/NS/ID -> containers/
fn chain_dir(state_dir: &Path) -> &Path {
    state_dir.ancestors().nth(2).unwrap_or(state_dir)
}

/// The marker of the calling thread's network namespace (see [`CHAINS_READY_PREFIX`]).
fn ready_marker(state_dir: &Path) -> Option<PathBuf> {
    let ns = NsId::of(Path::new("/proc/thread-self/ns/net")).ok()?;
    let name = format!("{CHAINS_READY_PREFIX}{}-{}", ns.dev, ns.ino);
    Some(chain_dir(state_dir).join(name))
}

/// Takes the container's network lock, or None when another process holds it.
pub fn try_lock(state_dir: &Path) -> Result<Option<Flock<std::fs::File>>, HookError> {
    let (file, path) = lock_file(&state_dir.join(LOCK_FILE))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(locking(path, errno)),
    }
}

fn lock_file(path: &Path) -> Result<(std::fs::File, PathBuf), HookError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map(|f| (f, path.to_path_buf()))
        .map_err(|source| HookError::Io {
            op: "opening",
            path: path.to_path_buf(),
            source,
        })
}

fn locking(path: PathBuf, errno: nix::errno::Errno) -> HookError {
    HookError::Io {
        op: "locking",
        path,
        source: errno.into(),
    }
}

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
    #[error("masquerading the network's traffic: {0}")]
    Masq(#[from] super::masq::MasqError),
    #[error("publishing {port} through the launcher: {why}")]
    Port { port: String, why: String },
    /// `run`'s ahead-of-time attach failed; its error, as it said it.
    #[error("{0}")]
    Ahead(String),
}

pub(super) fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T, HookError> {
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

pub(super) fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), HookError> {
    let text = serde_json::to_vec_pretty(v).unwrap_or_default();
    crate::fsutil::replace_file(path, text).map_err(|source| HookError::Io {
        op: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the hook's config for a container about to be created.
pub fn write_config(state_dir: &Path, cfg: &HookConfig) -> Result<(), HookError> {
    write_json(&state_dir.join(CONFIG_FILE), cfg)
}

/// Writes the hook's state.
pub fn write_state(state_dir: &Path, state: &HookState) -> Result<(), HookError> {
    write_json(&state_dir.join(STATE_FILE), state)
}

/// Joins the detached network namespace of a `--detach-netns` launcher, when the container's
/// config names one (this thread, and the plugins it runs, work there from then on).
fn enter_launcher_netns(state_dir: &Path) -> Result<(), HookError> {
    let Some(path) = read_config(state_dir).and_then(|c| c.launcher_netns) else {
        return Ok(());
    };
    crate::connection::ns::enter_net(&path).map_err(|e| {
        HookError::State(format!(
            "the launcher's detached network namespace: {e}; if the launcher that made it stopped or was restarted without --detach-netns, recreate the container once it runs"
        ))
    })
}

/// The hook's config, if the container has networks of its own (not host, none or another
/// container's).
pub fn read_config(state_dir: &Path) -> Option<HookConfig> {
    read_json(&state_dir.join(CONFIG_FILE)).ok()
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

pub(super) fn attachment(cfg: &HookConfig, netns: &str, i: usize) -> Attachment {
    Attachment {
        container_id: cfg.container_id.clone(),
        netns: netns.to_string(),
        ifname: format!("eth{i}"),
        plugin_dirs: cfg.plugin_dirs.clone(),
    }
}

/// Rootless (a launcher's API is set): the MTU of the launcher's namespace, where the hook
/// runs. Rootful: None, the host's bridges keep the kernel's default as Docker's do.
pub(super) fn launcher_mtu(cfg: &HookConfig) -> Option<u32> {
    cfg.launcher_api.as_ref().and_then(|_| super::uplink_mtu())
}

/// The conflist to run for a network: with the launcher's MTU on its bridge when rootless
/// (see [`super::with_mtu`]).
pub(super) fn launcher_conf(cfg: &HookConfig, conf: &Value, mtu: Option<u32>) -> Value {
    match (mtu, &cfg.launcher_api) {
        (Some(mtu), Some(_)) => super::with_mtu(conf, mtu),
        _ => conf.clone(),
    }
}

/// The runtime config for joining `network`: its endpoint's address and MAC, and (on the
/// primary network only, rootful) the published ports.
pub(super) fn runtime_config(cfg: &HookConfig, network: &str) -> RuntimeConfig {
    let mut rt = RuntimeConfig::new();
    let ep = cfg.endpoint(network);
    if let Some(ip) = &ep.ip {
        rt.insert("ips".into(), serde_json::json!([ip]));
    }
    if let Some(mac) = &ep.mac {
        rt.insert("mac".into(), serde_json::json!(mac));
    }
    let primary = cfg.networks.first().is_some_and(|(n, _)| n == network);
    if primary && cfg.launcher_api.is_none() && !cfg.ports.is_empty() {
        rt.insert("portMappings".into(), port_mappings(cfg));
    }
    rt
}

/// [`runtime_config`] for the `i`th network, with the published ports for portmap on the
/// primary one: in the launcher's namespace they then answer on its own addresses too (the
/// bridge's gateway, what `host-gateway` names), so a container reaches another's published
/// port as it does under Docker (rootless Docker's proxy listens there too); and where the
/// launcher forwards host ports to its child's address ([`publishes_via_child_ip`]), portmap
/// takes them on to the container.
pub(super) fn rootless_runtime_config(cfg: &HookConfig, name: &str, i: usize) -> RuntimeConfig {
    let mut rt = runtime_config(cfg, name);
    if i == 0 && !cfg.ports.is_empty() {
        rt.insert("portMappings".into(), port_mappings(cfg));
    }
    rt
}

/// CNI portmap's runtime config for the container's published ports.
fn port_mappings(cfg: &HookConfig) -> Value {
    let pm: Vec<Value> = cfg
        .ports
        .iter()
        .map(|p| {
            serde_json::json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol,
                "hostIP": if cfg.launcher_api.is_some() { "" } else { p.host_ip.as_str() },
            })
        })
        .collect();
    Value::Array(pm)
}

/// Whether the rootless launcher's port driver can only reach its child's own address (the
/// slirp4netns driver: slirp4netns forwards into its network only, never to a container's
/// bridge address). Then the launcher forwards each host port to the same port of the child,
/// and CNI portmap in the launcher's namespace takes it on to the container, as nerdctl does.
fn publishes_via_child_ip(cfg: &HookConfig) -> bool {
    let (Some(api), false) = (&cfg.launcher_api, cfg.ports.is_empty()) else {
        return false;
    };
    burrow_rootlesskit::api::client::Client::new(api)
        .info()
        .ok()
        .and_then(|i| i.port_driver)
        .is_some_and(|d| d.disallow_loopback_child_ip)
}

/// The launcher port for a mapping when the launcher reaches only its child's address: host
/// IP:port on the host → the child's address, same port (portmap does the rest).
fn via_child_spec(p: &PortMapping) -> burrow_rootlesskit::port::PortSpec {
    use burrow_rootlesskit::port::{PortSpec, Proto};
    let parent_ip: Option<IpAddr> = p.host_ip.parse().ok();
    PortSpec {
        proto: if p.protocol == "udp" {
            Proto::Udp
        } else {
            Proto::Tcp
        },
        parent_ip,
        parent_port: p.host_port,
        child_ip: None,
        child_port: p.host_port,
    }
}

/// `createRuntime`: attach, write /etc/hosts, publish ports. Undoes its own work on failure.
/// When `run` attached the container's namespace ahead of the task, waits for that to finish
/// and claims it instead.
pub fn create_runtime(state_dir: &Path, pid: i64) -> Result<HookState, HookError> {
    enter_launcher_netns(state_dir)?;
    let _lock = lock(state_dir)?;
    let netns = format!("/proc/{pid}/ns/net");
    let ahead_error = state_dir.join(AHEAD_ERROR_FILE);
    if let Ok(why) = std::fs::read_to_string(&ahead_error) {
        // Attaching again would fail the same way (and find the first try's interface).
        let _ = std::fs::remove_file(&ahead_error);
        return Err(HookError::Ahead(why));
    }
    if let Some(mut state) = read_state(state_dir) {
        let here = NsId::of(Path::new(&netns)).ok();
        match state.prepared {
            Some(id) if Some(id) == here => {
                state.prepared = None;
                write_state(state_dir, &state)?;
                return Ok(state);
            }
            // Attached to some other namespace (not ours): undo that first.
            _ => detach_all(state_dir),
        }
    }
    attach_at(state_dir, &netns, None)
}

/// Attaches the container's namespace at `netns` under the caller's lock: the state file
/// first (so a crash leaves a trace for poststop), then the plugins; undone on failure.
pub fn attach_at(
    state_dir: &Path,
    netns: &str,
    prepared: Option<NsId>,
) -> Result<HookState, HookError> {
    let cfg: HookConfig = read_json(&state_dir.join(CONFIG_FILE))?;
    let state_path = state_dir.join(STATE_FILE);
    let mut state = HookState {
        prepared,
        ..HookState::default()
    };
    write_json(&state_path, &state)?;
    let mut chain = ChainLock::take(state_dir)?;
    let mut result = attach(&cfg, netns, &mut state);
    if matches!(result, Err(HookError::Cni(_))) && chain.is_shared() {
        // A chain racing another's first run in a namespace whose shared iptables chains were
        // flushed since the marker: once more, alone.
        detach(&cfg, &state, netns);
        drop(chain);
        chain = ChainLock::exclusive(state_dir)?;
        state = HookState {
            prepared,
            ..HookState::default()
        };
        result = attach(&cfg, netns, &mut state);
    }
    let result = result.and_then(|_| write_json(&state_path, &state));
    if let Err(e) = result {
        detach(&cfg, &state, netns);
        let _ = std::fs::remove_file(&state_path);
        return Err(e);
    }
    chain.ran();
    drop(chain);
    refresh_peer_hosts(state_dir);
    Ok(state)
}

/// One attached container, as seen by its peers' /etc/hosts.
struct Member {
    /// (network, address there) per attachment.
    addrs: Vec<(String, String)>,
    /// The address of its first attachment, for its own /etc/hosts.
    ip: String,
    names: Vec<String>,
    cfg: HookConfig,
}

impl Member {
    /// Its names on `network` as `seer` sees them: id, hostname, name, the aliases it has
    /// there, then those `seer`'s links give it.
    fn names_on(&self, network: &str, seer: &HookConfig) -> String {
        let mut names = self.names.clone();
        let linked = seer
            .links
            .iter()
            .filter(|(id, _)| *id == self.cfg.container_id)
            .map(|(_, alias)| alias.clone());
        for a in self.cfg.endpoint(network).aliases.into_iter().chain(linked) {
            if !names.contains(&a) {
                names.push(a);
            }
        }
        names.join(" ")
    }
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
    let addrs = state
        .attachments
        .iter()
        .filter_map(|(n, _, r)| {
            let (addr, _) = cni::first_ipv4(r)?;
            let ip = addr.split_once('/').map_or(addr.as_str(), |(ip, _)| ip);
            Some((n.clone(), ip.to_string()))
        })
        .collect();
    Some(Member {
        addrs,
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
        for peer in members.iter().filter(|p| !std::ptr::eq(*p, m)) {
            // One line per network they share, in the order this container joined them.
            for (net, _) in &m.addrs {
                if let Some((_, ip)) = peer.addrs.iter().find(|(n, _)| n == net) {
                    extra.push((peer.names_on(net, &m.cfg), ip.clone()));
                }
            }
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
    let via_child = publishes_via_child_ip(cfg);
    let mtu = launcher_mtu(cfg);
    // One default route: the first network's that gives one.
    let mut routed = false;
    let confs: Vec<(Value, Vec<super::masq::Rule>)> = cfg
        .networks
        .iter()
        .map(|(_, conf)| {
            let conf = launcher_conf(cfg, conf, mtu);
            let conf = if routed {
                super::without_default_route(&conf)
            } else {
                conf
            };
            routed |= super::gives_default_route(&conf);
            super::masq::plugin_conf(&conf)
        })
        .collect();
    // Each network's chain at once (their interfaces and addresses are apart).
    let added = each_network(cfg.networks.len(), |i| {
        let at = attachment(cfg, netns, i);
        let rt = rootless_runtime_config(cfg, &cfg.networks[i].0, i);
        let (conf, rules) = &confs[i];
        for rule in rules {
            rule.ensure()?;
        }
        cni::add(conf, &at, &rt)
            .map(|result| (at.ifname, result))
            .map_err(HookError::from)
    });
    let mut failed = None;
    for ((name, _), added) in cfg.networks.iter().zip(added) {
        match added {
            Ok((ifname, result)) => state.attachments.push((name.clone(), ifname, result)),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    state.set_primary();
    if let Some(e) = failed {
        // The caller detaches what did attach (now in `state`).
        return Err(e);
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
            let spec = if via_child {
                Ok(via_child_spec(p))
            } else {
                launcher_spec(p, child_ip)
            };
            let spec = spec.map_err(|why| HookError::Port {
                port: p.display(),
                why,
            })?;
            let status = client.add_port(&spec).map_err(|e| HookError::Port {
                port: p.display(),
                why: port_refusal(p, &e.to_string()),
            })?;
            state.launcher_port_ids.push(status.id);
        }
    }
    Ok(())
}

/// The launcher's refusal of port `p`, with what to do where its text does not say (RootlessKit
/// answers a port published twice with only "conflict with ID N"); a clash in Docker's words
/// ("Bind for IP:PORT failed: port is already allocated", which scripts look for).
fn port_refusal(p: &PortMapping, why: &str) -> String {
    if why.contains("conflict with ID") {
        format!(
            "Bind for {} failed: port is already allocated ({why}: that host port is already published, for another container: pick another host port or stop the container that has it)",
            p.host_address()
        )
    } else {
        why.to_string()
    }
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

/// Unpublishes and detaches; `netns` is the namespace's path while it still exists (the
/// plugins then also remove the interfaces), "" once it is gone.
fn detach(cfg: &HookConfig, state: &HookState, netns: &str) {
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
    each_network(cfg.networks.len(), |i| {
        let (name, conf) = &cfg.networks[i];
        let found = state.attachments.iter().find(|(n, _, _)| n == name);
        let mut at = attachment(cfg, netns, i);
        if let Some((_, ifname, _)) = found {
            at.ifname = ifname.clone();
        }
        let rt = rootless_runtime_config(cfg, name, i);
        // CNI DEL copes with an empty CNI_NETNS (the namespace is gone by poststop).
        let prev = found.map(|(_, _, r)| r);
        let (conf, _) = super::masq::plugin_conf(conf);
        if let Err(err) = cni::del(&conf, &at, &rt, prev) {
            tracing::warn!(%err, "detaching from a network");
        }
    });
}

/// `run(i)` for each of a container's `n` networks, at once when there are several (each on a
/// thread of its own, in the caller's namespaces); the results in network order.
fn each_network<T: Send>(n: usize, run: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if n <= 1 {
        return (0..n).map(&run).collect();
    }
    std::thread::scope(|scope| {
        let run = &run;
        let threads: Vec<_> = (0..n).map(|i| scope.spawn(move || run(i))).collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// `poststop`: unpublish, detach, forget. Safe to run twice. Returns at once when another
/// process holds the container's network lock (a teardown is under way), and leaves a
/// claimed state (see [`claim`]) to its claimant.
pub fn poststop(state_dir: &Path) -> Result<(), HookError> {
    enter_launcher_netns(state_dir)?;
    let Some(_lock) = try_lock(state_dir)? else {
        return Ok(());
    };
    detach_from(state_dir, STATE_FILE);
    Ok(())
}

/// Detaches under the lock the caller holds, from the state file and from a claimed one left
/// by a teardown that did not finish.
pub fn detach_all(state_dir: &Path) {
    for file in [STATE_FILE, CLAIMED_FILE] {
        detach_from(state_dir, file);
    }
}

/// Takes the state file for a teardown outside the task (`run --rm` runs one alongside the
/// task's deletion): the poststop hook then finds nothing to detach. False when there is
/// nothing attached.
pub fn claim(state_dir: &Path) -> bool {
    std::fs::rename(state_dir.join(STATE_FILE), state_dir.join(CLAIMED_FILE)).is_ok()
}

/// Gives a claimed state back to the poststop hook.
pub fn unclaim(state_dir: &Path) {
    let _ = std::fs::rename(state_dir.join(CLAIMED_FILE), state_dir.join(STATE_FILE));
}

/// Detaches what [`claim`] took, under the container's lock.
pub fn detach_claimed(state_dir: &Path) -> Result<(), HookError> {
    let _lock = lock(state_dir)?;
    detach_from(state_dir, CLAIMED_FILE);
    Ok(())
}

fn detach_from(state_dir: &Path, file: &str) {
    let path = state_dir.join(file);
    let Ok(state) = read_json::<HookState>(&path) else {
        // Nothing attached, or already detached.
        return;
    };
    match (
        read_json::<HookConfig>(&state_dir.join(CONFIG_FILE)),
        ChainLock::take(state_dir),
    ) {
        (Ok(cfg), Ok(_chain)) => detach(&cfg, &state, ""),
        (Err(err), _) | (_, Err(err)) => tracing::warn!(%err, "detaching"),
    }
    let _ = std::fs::remove_file(&path);
    refresh_peer_hosts(state_dir);
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
    fn peers_find_each_other_by_name_and_alias_on_shared_networks() {
        let root = tempfile::tempdir().unwrap();
        let member = |name: &str, nets: &[(&str, &str, &[&str])], links: &[(&str, &str)]| {
            let dir = root.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let cfg = HookConfig {
                container_id: format!("{name:0<64}"),
                name: name.into(),
                hostname: name.into(),
                networks: nets
                    .iter()
                    .map(|(n, _, _)| (n.to_string(), serde_json::json!({})))
                    .collect(),
                ports: vec![],
                plugin_dirs: vec![],
                launcher_api: None,
                launcher_netns: None,
                extra_hosts: vec![],
                hosts_file: dir.join("hosts"),
                ip: None,
                endpoints: nets
                    .iter()
                    .map(|(n, _, aliases)| EndpointOpts {
                        network: n.to_string(),
                        aliases: aliases.iter().map(|a| a.to_string()).collect(),
                        ..Default::default()
                    })
                    .collect(),
                links: links
                    .iter()
                    .map(|(n, alias)| (format!("{n:0<64}"), alias.to_string()))
                    .collect(),
            };
            write_config(&dir, &cfg).unwrap();
            let mut state = HookState::default();
            for (i, (n, ip, _)) in nets.iter().enumerate() {
                let result = serde_json::json!({"ips": [{"address": format!("{ip}/24")}]});
                state
                    .attachments
                    .push((n.to_string(), format!("eth{i}"), result));
            }
            state.set_primary();
            write_state(&dir, &state).unwrap();
            dir
        };
        let a = member(
            "a",
            &[("front", "10.1.0.2", &[]), ("back", "10.2.0.2", &[])],
            &[("b", "store"), ("c", "elsewhere")],
        );
        member("b", &[("back", "10.2.0.3", &["db"])], &[]);
        member("c", &[("other", "10.3.0.4", &["x"])], &[]);
        refresh_peer_hosts(&a);
        let hosts = std::fs::read_to_string(a.join("hosts")).unwrap();
        assert!(hosts.contains("10.1.0.2\t"), "{hosts}");
        assert!(hosts.contains("10.2.0.3\tb000"), "{hosts}");
        // Its own alias there, then the one a's link gives it (only a sees that one).
        assert!(hosts.contains(" b db store\n"), "{hosts}");
        assert!(!hosts.contains("10.3.0.4"), "{hosts}");
        let b = std::fs::read_to_string(root.path().join("b/hosts")).unwrap();
        assert!(b.contains("10.2.0.2\ta000"), "{b}");
        assert!(!b.contains("10.1.0.2"), "{b}");
        assert!(!b.contains("store"), "{b}");
        // b moves (a restart gives it another address): a's linked alias follows it.
        let mut st = read_state(&root.path().join("b")).unwrap();
        st.attachments[0].2 = serde_json::json!({"ips": [{"address": "10.2.0.9/24"}]});
        st.set_primary();
        write_state(&root.path().join("b"), &st).unwrap();
        refresh_peer_hosts(&root.path().join("b"));
        let hosts = std::fs::read_to_string(a.join("hosts")).unwrap();
        assert!(hosts.contains("10.2.0.9\tb000"), "{hosts}");
        assert!(
            hosts.contains(" b db store\n") && !hosts.contains("10.2.0.3"),
            "{hosts}"
        );
    }

    #[test]
    fn containers_of_every_namespace_share_one_chain_lock() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("containers/default/a");
        let b = root.path().join("containers/k8s.io/b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let held = ChainLock::take(&a).unwrap();
        let path = root.path().join("containers").join(CHAIN_LOCK_FILE);
        let other = std::fs::File::open(&path).unwrap();
        let busy = Flock::lock(other, FlockArg::LockExclusiveNonblock);
        assert!(
            busy.is_err(),
            "a second chain ran while the first held the lock"
        );
        drop(held);
        let _b = ChainLock::take(&b).unwrap();
        // Containers' own locks stay apart from it.
        let _a = lock(&a).unwrap();
    }

    #[test]
    fn chains_share_the_lock_once_one_ran_alone_in_the_namespace() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (
            root.path().join("c/default/a"),
            root.path().join("c/default/b"),
        );
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let stale = root.path().join(format!("c/{CHAINS_READY_PREFIX}1-2"));
        std::fs::write(&stale, b"").unwrap();
        let first = ChainLock::take(&a).unwrap();
        assert!(!first.is_shared(), "no chain ran here yet: alone");
        first.ran();
        drop(first);
        assert!(!stale.exists(), "a gone namespace's marker is cleared");
        let one = ChainLock::take(&a).unwrap();
        let two = ChainLock::take(&b).unwrap();
        assert!(one.is_shared() && two.is_shared(), "two chains at once");
        let path = root.path().join("c").join(CHAIN_LOCK_FILE);
        let other = std::fs::File::open(&path).unwrap();
        assert!(
            Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err(),
            "a retry alone waits for the shared holders"
        );
        drop((one, two));
        assert!(!ChainLock::exclusive(&b).unwrap().is_shared());
    }

    #[test]
    fn poststop_without_config_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        poststop(dir.path()).unwrap();
    }
}
