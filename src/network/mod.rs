//! Container networks on CNI, as nerdctl keeps them: one `nerdctl-NAME.conflist` per network in
//! the CNI config dir (`~/.config/cni/net.d` rootless, `/etc/cni/net.d` rootful), the default
//! network "bridge" (nerdctl0, 10.4.0.0/24) written on first use, and the distribution's plugins.

pub mod cni;
pub mod files;
pub mod hook;
pub mod live;
pub mod manage;
pub mod masq;
pub mod ports;
pub mod prepare;
pub mod teardown;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::connection::{Endpoint, Mode, UserEnv};

/// The network containers join when no `--network` is given.
pub const DEFAULT_NETWORK: &str = "bridge";
/// Its bridge device and subnet (nerdctl's).
pub const DEFAULT_BRIDGE: &str = "nerdctl0";
pub const DEFAULT_SUBNET: &str = "10.4.0.0/24";

/// A network config could not be read, written or found.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0:?} not found (see `burrow network ls`; create it with `burrow network create {0}`)")]
    NotFound(String),
    #[error("network {0:?} already exists")]
    Exists(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network config {path}: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("invalid network name {0:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unsupported network driver {0:?}: only bridge")]
    Driver(String),
    #[error("network {0} is the default network and cannot be removed")]
    Default(String),
    #[error("network {network} is in use by container {container}: remove the container first")]
    InUse { network: String, container: String },
    #[error("invalid filter {0:?}: use name=, id=, label=KEY[=VALUE], driver=, type=custom|builtin, scope= or dangling=true|false")]
    Filter(String),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> NetworkError + 'a {
    move |source| NetworkError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Where network configs and plugins are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPaths {
    pub conf_dir: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
}

impl NetPaths {
    /// nerdctl's layout for the endpoint's mode.
    pub fn for_endpoint(ep: &Endpoint, env: &UserEnv) -> NetPaths {
        let conf_dir = match (ep.mode, &env.config_home) {
            (Mode::Rootless, Some(c)) => c.join("cni/net.d"),
            _ => PathBuf::from("/etc/cni/net.d"),
        };
        NetPaths {
            conf_dir,
            plugin_dirs: cni::default_plugin_dirs(),
        }
    }
}

/// One network config file.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub file: PathBuf,
    pub conf: Value,
}

impl Network {
    /// The bridge plugin's settings (device, subnet, gateway), when it has one.
    pub fn bridge(&self) -> Option<&Value> {
        self.conf["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["type"] == "bridge")
    }

    pub fn subnets(&self) -> Vec<(String, Option<String>)> {
        let Some(b) = self.bridge() else {
            return Vec::new();
        };
        b["ipam"]["ranges"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.as_array().into_iter().flatten())
            .filter_map(|r| {
                Some((
                    r["subnet"].as_str()?.to_string(),
                    r["gateway"].as_str().map(str::to_string),
                ))
            })
            .collect()
    }

    /// When the network was made: its config file's modification time (nothing rewrites it).
    pub fn created(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.file).ok()?.modified().ok()
    }

    /// Whether the network has no way out (`--internal`: its bridge is no gateway).
    pub fn internal(&self) -> bool {
        self.bridge().is_some_and(|b| b["isGateway"] == false)
    }

    /// The driver options the network was made with, as Docker's inspect shows them: as given
    /// to `network create -o` (a network made before burrow kept them: what its bridge shows).
    pub fn options(&self) -> serde_json::Map<String, Value> {
        let bridge = self.bridge();
        let mut out = serde_json::Map::new();
        // As Docker's default network shows its bridge (docker0).
        if let (true, Some(name)) = (
            self.name == DEFAULT_NETWORK,
            bridge.and_then(|b| b["bridge"].as_str()),
        ) {
            out.insert("com.docker.network.bridge.name".into(), json!(name));
        }
        if let Some(given) = self.conf["burrowOptions"].as_object() {
            out.extend(given.clone());
            return out;
        }
        let Some(b) = bridge else {
            return out;
        };
        if let Some(name) = b["bridge"].as_str().filter(|n| !n.starts_with("br-")) {
            out.insert("com.docker.network.bridge.name".into(), json!(name));
        }
        if let Some(mtu) = b["mtu"].as_u64() {
            out.insert(
                "com.docker.network.driver.mtu".into(),
                json!(mtu.to_string()),
            );
        }
        if b["ipMasq"] == false && b["isGateway"] == true {
            out.insert(
                "com.docker.network.bridge.enable_ip_masquerade".into(),
                json!("false"),
            );
        }
        out
    }

    pub fn labels(&self) -> serde_json::Map<String, Value> {
        self.conf["nerdctlLabels"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}

/// Whether a conflist can give an interface a chosen MAC (it runs the tuning plugin, which
/// takes `--mac-address`; see [`cni`]).
pub fn sets_mac(conf: &Value) -> bool {
    conf["plugins"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["type"] == "tuning"))
}

/// Docker's rule for names.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn id_for(name: &str) -> String {
    Sha256::digest(format!("burrow-network-{name}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `network create` (and the default network) decide.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    pub bridge: String,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: Option<String>,
    pub labels: serde_json::Map<String, Value>,
    /// No way out (Docker's `--internal`): the bridge has no address, masquerades nothing,
    /// and its containers get no default route.
    pub internal: bool,
    /// Docker's bridge driver options this takes (see [`DriverOptions::parse`]).
    pub options: DriverOptions,
}

/// The bridge driver options of Docker's `network create -o` that burrow's bridge takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverOptions {
    /// `com.docker.network.bridge.name`: the bridge interface's name.
    pub bridge_name: Option<String>,
    /// `com.docker.network.driver.mtu`: the containers' and the bridge's MTU.
    pub mtu: Option<u32>,
    /// `com.docker.network.bridge.enable_ip_masquerade=false`: no masquerade on the way out.
    pub masquerade: Option<bool>,
    /// The options as given, kept verbatim for inspect's `Options` (Compose compares them
    /// with its file's `driver_opts` and refuses to reuse a network whose options differ).
    pub given: std::collections::BTreeMap<String, String>,
}

impl DriverOptions {
    /// Reads `-o KEY=VALUE` options; any other key, or a value that cannot be used, is refused.
    pub fn parse<'a>(
        opts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<DriverOptions, NetworkError> {
        let mut out = DriverOptions::default();
        for (k, v) in opts {
            let bad = |why: &str| NetworkError::Invalid(format!("driver option {k}={v}: {why}"));
            out.given.insert(k.to_string(), v.to_string());
            match k {
                "com.docker.network.bridge.name" => {
                    if v.is_empty() || v.len() > 15 || v.contains(['/', ' ']) {
                        return Err(bad("give an interface name of at most 15 characters"));
                    }
                    out.bridge_name = Some(v.to_string());
                }
                "com.docker.network.driver.mtu" => {
                    let mtu: u32 = v.parse().map_err(|_| bad("give a number"))?;
                    if !(68..=65535).contains(&mtu) {
                        return Err(bad("give an MTU from 68 to 65535"));
                    }
                    out.mtu = Some(mtu);
                }
                "com.docker.network.bridge.enable_ip_masquerade" => {
                    out.masquerade = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("give true or false")),
                    });
                }
                _ => {
                    return Err(bad(
                        "not supported (burrow's bridge takes com.docker.network.bridge.name, com.docker.network.driver.mtu and com.docker.network.bridge.enable_ip_masquerade)",
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// The conflist nerdctl writes for a bridge network.
pub fn conflist(spec: &NetworkSpec) -> Value {
    let mut range = json!({"subnet": spec.subnet, "gateway": spec.gateway});
    if let Some(r) = &spec.ip_range {
        if let Some((start, end)) = ip_range_bounds(r) {
            range["rangeStart"] = json!(start);
            range["rangeEnd"] = json!(end);
        }
    }
    let mut ipam = json!({
        "ranges": [[range]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "type": "host-local"
    });
    if spec.internal {
        if let Some(o) = ipam.as_object_mut() {
            o.remove("routes");
        }
    }
    let mut bridge = json!({
        "type": "bridge",
        "bridge": spec.options.bridge_name.as_deref().unwrap_or(&spec.bridge),
        "isGateway": !spec.internal,
        "ipMasq": !spec.internal && spec.options.masquerade != Some(false),
        "hairpinMode": true,
        "ipam": ipam
    });
    if let Some(mtu) = spec.options.mtu {
        bridge["mtu"] = json!(mtu);
    }
    json!({
        "cniVersion": "1.0.0",
        "name": spec.name,
        "nerdctlID": id_for(&spec.name),
        "nerdctlLabels": spec.labels,
        "burrowOptions": spec.options.given,
        "plugins": [
            bridge,
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall", "ingressPolicy": "same-bridge"},
            {"type": "tuning"}
        ]
    })
}

/// `conf` with its bridge plugins' MTU set to `mtu` where the config names none (an explicit
/// `"mtu"` is kept). Rootless, the bridge's traffic leaves through the launcher's `tap0`, whose
/// MTU (65520 with the setup) is far above the kernel's 1500 default: a bridge at 1500 would cut
/// every TCP segment of a container to 1500 bytes for the userspace stack to carry.
pub fn with_mtu(conf: &Value, mtu: u32) -> Value {
    let mut conf = conf.clone();
    if let Some(plugins) = conf["plugins"].as_array_mut() {
        for p in plugins.iter_mut().filter(|p| p["type"] == "bridge") {
            if let Some(obj) = p.as_object_mut() {
                obj.entry("mtu").or_insert(json!(mtu));
            }
        }
    }
    conf
}

/// Whether `conf`'s bridge gives its containers a default route (an IPAM route to 0.0.0.0/0).
pub fn gives_default_route(conf: &Value) -> bool {
    conf["plugins"].as_array().is_some_and(|plugins| {
        plugins.iter().any(|p| {
            p["ipam"]["routes"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["dst"] == "0.0.0.0/0"))
        })
    })
}

/// `conf` without the default route its IPAM gives: a container has one default route, its
/// first network's that gives one (Docker's single gateway), not one per network.
pub fn without_default_route(conf: &Value) -> Value {
    let mut conf = conf.clone();
    if let Some(plugins) = conf["plugins"].as_array_mut() {
        for p in plugins {
            if let Some(routes) = p["ipam"]["routes"].as_array_mut() {
                routes.retain(|r| r["dst"] != "0.0.0.0/0");
            }
        }
    }
    conf
}

/// The MTU of the calling thread's network namespace's uplink (its IPv4 default route's
/// interface): the launcher's `tap0` when called in a rootless launcher's namespace. None when
/// there is no default route or it cannot be read (logged).
pub fn uplink_mtu() -> Option<u32> {
    match burrow_rootlesskit::launcher::netconf::uplink_mtu() {
        Ok(mtu) => mtu,
        Err(err) => {
            tracing::warn!(%err, "reading the launcher's MTU; the bridge keeps the default");
            None
        }
    }
}

/// Every `"subnet"` in a CNI conflist (the bridge's IPAM ranges).
pub fn conf_subnets(conf: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("subnet", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(conf, &mut out);
    out
}

/// Parses `a.b.c.d/n` into (network address as u32, prefix).
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if len > 32 {
        return None;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

fn ip_range_bounds(r: &str) -> Option<(String, String)> {
    let (net, len) = parse_cidr(r)?;
    let size = if len >= 31 {
        1
    } else {
        (1u64 << (32 - len)) - 2
    };
    let first = if len >= 31 { net } else { net + 1 };
    let last = first + (size as u32).saturating_sub(1);
    Some((
        std::net::Ipv4Addr::from(first).to_string(),
        std::net::Ipv4Addr::from(last).to_string(),
    ))
}

fn file_for(paths: &NetPaths, name: &str) -> PathBuf {
    paths.conf_dir.join(format!("nerdctl-{name}.conflist"))
}

/// Every network config in the config dir (`*.conflist`), sorted by name.
pub fn list(paths: &NetPaths) -> Result<Vec<Network>, NetworkError> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&paths.conf_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("reading", &paths.conf_dir)(e)),
    };
    for entry in rd.flatten() {
        let file = entry.path();
        if file.extension().and_then(|e| e.to_str()) != Some("conflist") {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(io("reading", &file))?;
        let conf: Value = serde_json::from_str(&text).map_err(|e| NetworkError::Malformed {
            path: file.clone(),
            why: e.to_string(),
        })?;
        let Some(name) = conf["name"].as_str().map(str::to_string) else {
            continue;
        };
        let id = conf["nerdctlID"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| id_for(&name));
        out.push(Network {
            name,
            id,
            file,
            conf,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The network called `name` (or whose id starts with `name`); the default one is created on demand.
pub fn get(paths: &NetPaths, name: &str) -> Result<Network, NetworkError> {
    if name == DEFAULT_NETWORK {
        ensure_default(paths)?;
    }
    let all = list(paths)?;
    if let Some(n) = all.iter().find(|n| n.name == name) {
        return Ok(n.clone());
    }
    let by_id: Vec<&Network> = all
        .iter()
        .filter(|n| name.len() >= 3 && n.id.starts_with(name))
        .collect();
    match by_id.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(NetworkError::NotFound(name.to_string())),
    }
}

fn write(paths: &NetPaths, name: &str, conf: &Value) -> Result<PathBuf, NetworkError> {
    std::fs::create_dir_all(&paths.conf_dir).map_err(io("creating", &paths.conf_dir))?;
    let file = file_for(paths, name);
    let tmp = file.with_extension("conflist.tmp");
    let text = serde_json::to_string_pretty(conf).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, &file).map_err(io("renaming", &file))?;
    Ok(file)
}

/// Writes `nerdctl-bridge.conflist` if no network named "bridge" exists yet.
pub fn ensure_default(paths: &NetPaths) -> Result<(), NetworkError> {
    if list(paths)?.iter().any(|n| n.name == DEFAULT_NETWORK) {
        return Ok(());
    }
    let spec = NetworkSpec {
        name: DEFAULT_NETWORK.into(),
        bridge: DEFAULT_BRIDGE.into(),
        subnet: DEFAULT_SUBNET.into(),
        gateway: "10.4.0.1".into(),
        ip_range: None,
        labels: Default::default(),
        internal: false,
        options: Default::default(),
    };
    write(paths, DEFAULT_NETWORK, &conflist(&spec))?;
    Ok(())
}

/// Creates a bridge network; without a subnet, the first free 10.4.N.0/24 is taken.
pub fn create(paths: &NetPaths, req: &manage::CreateRequest) -> Result<Network, NetworkError> {
    let (name, subnet, gateway, ip_range) = (
        req.name.as_str(),
        req.subnet.as_deref(),
        req.gateway.as_deref(),
        req.ip_range.as_deref(),
    );
    if !valid_name(name) {
        return Err(NetworkError::BadName(name.to_string()));
    }
    if name == "host" || name == "none" {
        return Err(NetworkError::Invalid(format!(
            "network name {name:?} is reserved"
        )));
    }
    ensure_default(paths)?;
    let existing = list(paths)?;
    if existing.iter().any(|n| n.name == name) {
        return Err(NetworkError::Exists(name.to_string()));
    }
    let used: Vec<(u32, u8)> = existing
        .iter()
        .flat_map(|n| n.subnets())
        .filter_map(|(s, _)| parse_cidr(&s))
        .collect();
    let overlaps = |(a, al): (u32, u8)| {
        used.iter().any(|&(b, bl)| {
            let l = al.min(bl);
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            a & mask == b & mask
        })
    };
    let subnet = match subnet {
        Some(s) => {
            let c = parse_cidr(s).ok_or_else(|| {
                NetworkError::Invalid(format!(
                    "invalid --subnet {s:?}: expected an IPv4 CIDR such as 10.5.0.0/24"
                ))
            })?;
            if overlaps(c) {
                return Err(NetworkError::Invalid(format!(
                    "subnet {s} overlaps an existing network's (see `burrow network inspect`)"
                )));
            }
            format!("{}/{}", std::net::Ipv4Addr::from(c.0), c.1)
        }
        None => (1..=255u32)
            .map(|n| (u32::from(std::net::Ipv4Addr::new(10, 4, n as u8, 0)), 24u8))
            .find(|c| !overlaps(*c))
            .map(|(a, l)| format!("{}/{l}", std::net::Ipv4Addr::from(a)))
            .ok_or_else(|| {
                NetworkError::Invalid("no free subnet in 10.4.0.0/16: give --subnet".into())
            })?,
    };
    let (net, len) = parse_cidr(&subnet).unwrap_or((0, 24));
    let gateway = match gateway {
        Some(g) => {
            let ip: std::net::Ipv4Addr = g.parse().map_err(|_| {
                NetworkError::Invalid(format!("invalid --gateway {g:?}: expected an IPv4 address"))
            })?;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if u32::from(ip) & mask != net {
                return Err(NetworkError::Invalid(format!(
                    "--gateway {g} is not in subnet {subnet}"
                )));
            }
            g.to_string()
        }
        None => std::net::Ipv4Addr::from(net + 1).to_string(),
    };
    if let Some(r) = ip_range {
        let (rn, rl) = parse_cidr(r).ok_or_else(|| {
            NetworkError::Invalid(format!("invalid --ip-range {r:?}: expected an IPv4 CIDR"))
        })?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if rl < len || rn & mask != net {
            return Err(NetworkError::Invalid(format!(
                "--ip-range {r} is not inside subnet {subnet}"
            )));
        }
    }
    let id = id_for(name);
    let spec = NetworkSpec {
        name: name.to_string(),
        bridge: format!("br-{}", &id[..12]),
        subnet,
        gateway,
        ip_range: ip_range.map(str::to_string),
        labels: req.labels.clone(),
        internal: req.internal,
        options: req.options.clone(),
    };
    if let Some(b) = &spec.options.bridge_name {
        if existing
            .iter()
            .any(|n| n.bridge().and_then(|p| p["bridge"].as_str()) == Some(b.as_str()))
        {
            return Err(NetworkError::Invalid(format!(
                "bridge name {b} is another network's: give another com.docker.network.bridge.name"
            )));
        }
    }
    let conf = conflist(&spec);
    let file = write(paths, name, &conf)?;
    Ok(Network {
        name: name.to_string(),
        id,
        file,
        conf,
    })
}

/// Removes a network's config file.
pub fn remove(net: &Network) -> Result<(), NetworkError> {
    std::fs::remove_file(&net.file).map_err(io("removing", &net.file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> NetPaths {
        NetPaths {
            conf_dir: dir.join("net.d"),
            plugin_dirs: vec![],
        }
    }

    #[test]
    fn with_mtu_sets_the_bridge_mtu_unless_the_config_names_one() {
        let spec = NetworkSpec {
            name: "n".into(),
            bridge: "br-n".into(),
            subnet: "10.4.9.0/24".into(),
            gateway: "10.4.9.1".into(),
            ip_range: None,
            labels: Default::default(),
            internal: false,
            options: Default::default(),
        };
        let conf = conflist(&spec);
        let set = with_mtu(&conf, 65520);
        let bridge = |c: &Value| c["plugins"][0].clone();
        assert_eq!(bridge(&set)["type"], "bridge");
        assert_eq!(bridge(&set)["mtu"], 65520);
        assert!(
            bridge(&conf).get("mtu").is_none(),
            "the stored config is unchanged"
        );
        assert!(
            set["plugins"][1].get("mtu").is_none(),
            "only the bridge plugin"
        );
        let mut explicit = conf.clone();
        explicit["plugins"][0]["mtu"] = json!(9000);
        assert_eq!(bridge(&with_mtu(&explicit, 65520))["mtu"], 9000);
    }

    #[test]
    fn default_network_is_nerdctls() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let n = get(&p, "bridge").unwrap();
        assert!(n.file.ends_with("net.d/nerdctl-bridge.conflist"));
        assert_eq!(n.bridge().unwrap()["bridge"], "nerdctl0");
        assert_eq!(
            n.subnets(),
            [("10.4.0.0/24".to_string(), Some("10.4.0.1".to_string()))]
        );
        assert_eq!(n.conf["cniVersion"], "1.0.0");
        let types: Vec<_> = n.conf["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "firewall", "tuning"]);
    }

    fn req(
        name: &str,
        subnet: Option<&str>,
        gateway: Option<&str>,
        ip_range: Option<&str>,
        internal: bool,
    ) -> manage::CreateRequest {
        manage::CreateRequest {
            name: name.into(),
            driver: "bridge".into(),
            subnet: subnet.map(str::to_string),
            gateway: gateway.map(str::to_string),
            ip_range: ip_range.map(str::to_string),
            internal,
            ..Default::default()
        }
    }

    #[test]
    fn options_of_a_network_made_before_they_were_kept() {
        let mut conf = json!({"plugins": [{"type": "bridge", "bridge": "br-0123456789ab",
            "isGateway": true, "ipMasq": false, "mtu": 9000}]});
        let n = |conf: &Value| Network {
            name: "old".into(),
            id: String::new(),
            file: PathBuf::new(),
            conf: conf.clone(),
        };
        assert_eq!(
            Value::Object(n(&conf).options()),
            json!({"com.docker.network.driver.mtu": "9000",
                "com.docker.network.bridge.enable_ip_masquerade": "false"})
        );
        conf["plugins"][0]["bridge"] = json!("mybr");
        assert_eq!(n(&conf).options()["com.docker.network.bridge.name"], "mybr");
        conf["burrowOptions"] = json!({"com.docker.network.driver.mtu": "09000"});
        assert_eq!(
            Value::Object(n(&conf).options()),
            json!({"com.docker.network.driver.mtu": "09000"})
        );
    }

    #[test]
    fn bridge_driver_options() {
        let o = DriverOptions::parse([
            ("com.docker.network.driver.mtu", "1400"),
            ("com.docker.network.bridge.name", "br-mine"),
            ("com.docker.network.bridge.enable_ip_masquerade", "false"),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let n = create(
            &p,
            &manage::CreateRequest {
                options: o,
                ..req("opts", None, None, None, false)
            },
        )
        .unwrap();
        let b = n.bridge().unwrap();
        assert_eq!(
            (&b["mtu"], &b["bridge"], &b["ipMasq"]),
            (&json!(1400), &json!("br-mine"), &json!(false))
        );
        // An explicit MTU is the launcher's to keep, not to raise.
        assert_eq!(with_mtu(&n.conf, 65520)["plugins"][0]["mtu"], 1400);
        for bad in [
            ("com.docker.network.driver.mtu", "big"),
            (
                "com.docker.network.bridge.name",
                "a-name-far-too-long-for-linux",
            ),
            ("com.docker.network.bridge.host_binding_ipv4", "127.0.0.1"),
        ] {
            assert!(DriverOptions::parse([bad]).is_err(), "{bad:?}");
        }
        let clash = DriverOptions::parse([("com.docker.network.bridge.name", "br-mine")]).unwrap();
        assert!(create(
            &p,
            &manage::CreateRequest {
                options: clash,
                ..req("again", None, None, None, false)
            },
        )
        .is_err());
    }

    #[test]
    fn a_default_route_is_dropped_from_later_networks_only() {
        let conf = json!({"plugins": [
            {"type": "bridge", "isGateway": true, "ipam": {
                "ranges": [[{"subnet": "10.4.9.0/24"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16"}]}},
            {"type": "firewall"}
        ]});
        assert!(gives_default_route(&conf));
        let later = without_default_route(&conf);
        assert!(!gives_default_route(&later));
        assert_eq!(
            later["plugins"][0]["ipam"]["ranges"],
            conf["plugins"][0]["ipam"]["ranges"]
        );
        assert_eq!(
            later["plugins"][0]["isGateway"], true,
            "still the network's gateway"
        );
        assert_eq!(
            later["plugins"][0]["ipam"]["routes"],
            json!([{"dst": "192.168.0.0/16"}]),
            "other routes kept"
        );
    }

    #[test]
    fn create_picks_free_subnets_and_refuses_clashes() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let a = create(&p, &req("a", None, None, None, false)).unwrap();
        assert_eq!(a.subnets()[0].0, "10.4.1.0/24");
        assert!(a.bridge().unwrap()["bridge"]
            .as_str()
            .unwrap()
            .starts_with("br-"));
        let b = create(
            &p,
            &req(
                "b",
                Some("10.9.0.0/16"),
                Some("10.9.0.254"),
                Some("10.9.1.0/24"),
                false,
            ),
        )
        .unwrap();
        let r = &b.bridge().unwrap()["ipam"]["ranges"][0][0];
        assert_eq!(r["gateway"], "10.9.0.254");
        assert_eq!(r["rangeStart"], "10.9.1.1");
        assert_eq!(r["rangeEnd"], "10.9.1.254");
        assert!(matches!(
            create(&p, &req("a", None, None, None, false)),
            Err(NetworkError::Exists(_))
        ));
        assert!(create(&p, &req("c", Some("10.4.0.0/16"), None, None, false)).is_err());
        assert!(create(
            &p,
            &req("d", Some("10.8.0.0/24"), Some("10.7.0.1"), None, false)
        )
        .is_err());
        assert!(create(&p, &req("-x", None, None, None, false)).is_err());
        // --internal: a bridge that is no gateway, masquerades nothing, gives no default route.
        let i = create(&p, &req("inside", None, None, None, true)).unwrap();
        assert!(i.internal() && !b.internal());
        let bridge = i.bridge().unwrap();
        assert_eq!(bridge["ipMasq"], false);
        assert!(bridge["ipam"].get("routes").is_none());
        remove(&i).unwrap();
        assert_eq!(list(&p).unwrap().len(), 3);
        assert_eq!(get(&p, &b.id[..8]).unwrap().name, "b");
        remove(&get(&p, "a").unwrap()).unwrap();
        assert!(matches!(get(&p, "a"), Err(NetworkError::NotFound(_))));
    }
}
