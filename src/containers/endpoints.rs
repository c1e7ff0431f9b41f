//! The networks a container joins and how, as Docker's `EndpointSettings`: `--network` in its
//! short and long forms (`name=N,alias=A,ip=IP,mac-address=M`), `--network-alias`,
//! `--mac-address` and `--ip`, resolved against the network mode into one ordered endpoint list
//! (the primary network first), with Docker's conflicting-options errors.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::record::{self, State};
use super::request::ContainerRequest;
use super::spec::NetNs;
use super::values::ValueError;
use super::{labels, Ctx};
use crate::network::hook::{self, EndpointOpts};
use crate::network::DEFAULT_NETWORK;

/// An Ethernet MAC address (`02:42:ac:11:00:02`), unicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl FromStr for MacAddress {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let mut out = [0u8; 6];
        if parts.len() != 6 {
            return Err(ValueError::Mac);
        }
        for (b, p) in out.iter_mut().zip(&parts) {
            if p.len() != 2 {
                return Err(ValueError::Mac);
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| ValueError::Mac)?;
        }
        if out[0] & 1 == 1 {
            return Err(ValueError::MacMulticast);
        }
        Ok(MacAddress(out))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// One network the container joins, and its settings there (Docker's `EndpointSettings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Endpoint {
    /// The network's name (or id).
    pub network: String,
    /// Extra names the container answers to on this network.
    pub aliases: Vec<String>,
    /// A fixed address within the network's subnet.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<Ipv4Addr>,
    pub mac_address: Option<MacAddress>,
}

/// `--network`: `NAME`, or the long form `name=NAME[,alias=A]...[,ip=IP][,mac-address=MAC]`.
impl FromStr for Endpoint {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        if !s.contains('=') {
            if s.is_empty() {
                return Err(ValueError::NetworkForm("no network name".into()));
            }
            return Ok(Endpoint {
                network: s.to_string(),
                ..Endpoint::default()
            });
        }
        let mut e = Endpoint::default();
        for field in s.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| ValueError::NetworkForm(format!("{field:?} is not KEY=VALUE")))?;
            match k {
                "name" => e.network = v.to_string(),
                "alias" => e.aliases.push(v.to_string()),
                "ip" => {
                    e.ipv4_address = Some(v.parse().map_err(|_| {
                        ValueError::NetworkForm(format!("ip={v}: expected an IPv4 address"))
                    })?)
                }
                "mac-address" => {
                    e.mac_address = Some(v.parse().map_err(|err: ValueError| {
                        ValueError::NetworkForm(format!("mac-address={v}: {err}"))
                    })?)
                }
                other => {
                    return Err(ValueError::NetworkForm(format!(
                        "unknown key {other:?} (name, alias, ip, mac-address)"
                    )))
                }
            }
        }
        if e.network.is_empty() {
            return Err(ValueError::NetworkForm("no name=NETWORK".into()));
        }
        Ok(e)
    }
}

/// How the container is networked, from its network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// CNI networks, each an endpoint; the first is the primary (default route).
    Networks(Vec<Endpoint>),
    /// The runtime's own namespace.
    Host,
    /// Only loopback.
    None,
    /// Another container's namespace (its name or id).
    Container(String),
}

/// The request's networks cannot be combined so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("conflicting options: cannot attach both user-defined and non-user-defined network-modes (--network {0} joins no other network)")]
    ModeMix(String),
    #[error("conflicting options: {0} and the network mode (--network host, none and container:NAME have no network of their own)")]
    Conflict(&'static str),
    #[error("network-scoped alias is supported only for containers in user defined networks (create one with `burrow network create NAME`)")]
    AliasOnDefault,
    #[error("network {0:?} is specified multiple times")]
    Duplicate(String),
    #[error("invalid --network container:NAME: give the container's name or id")]
    NoContainer,
}

/// The request's network mode, endpoints merged: `HostConfig.NetworkMode` names the primary
/// network, `NetworkingConfig.Endpoints` may set it and add more; `--ip`, `--mac-address` and
/// Config-level settings apply to the primary.
pub fn net_mode(req: &ContainerRequest) -> Result<NetMode, EndpointError> {
    let hc = &req.host_config;
    let primary = match hc.network_mode.as_str() {
        "" => DEFAULT_NETWORK,
        m => m,
    };
    let others: Vec<&Endpoint> = req
        .networking_config
        .endpoints
        .iter()
        .filter(|e| e.network != primary)
        .collect();
    let special = match primary {
        "host" => Some(NetMode::Host),
        "none" => Some(NetMode::None),
        m => m
            .strip_prefix("container:")
            .map(|c| NetMode::Container(c.to_string())),
    };
    if let Some(mode) = special {
        if !others.is_empty() {
            return Err(EndpointError::ModeMix(primary.to_string()));
        }
        if let NetMode::Container(c) = &mode {
            container_conflicts(req, c)?;
        }
        if req
            .networking_config
            .endpoints
            .iter()
            .any(|e| !e.aliases.is_empty())
        {
            return Err(EndpointError::AliasOnDefault);
        }
        let mac = req.config.mac_address.is_some()
            || req
                .networking_config
                .endpoints
                .iter()
                .any(|e| e.mac_address.is_some());
        if mac {
            return Err(EndpointError::Conflict("mac-address"));
        }
        return Ok(mode);
    }
    let named_primary = req
        .networking_config
        .endpoints
        .iter()
        .filter(|e| e.network == primary)
        .count();
    if named_primary > 1 {
        return Err(EndpointError::Duplicate(primary.to_string()));
    }
    let mut first = req
        .networking_config
        .endpoints
        .iter()
        .find(|e| e.network == primary)
        .cloned()
        .unwrap_or_else(|| Endpoint {
            network: primary.to_string(),
            ..Endpoint::default()
        });
    if let Some(ip) = req.networking_config.ipv4_address {
        first.ipv4_address = Some(ip);
    }
    if let Some(mac) = req.config.mac_address {
        first.mac_address = Some(mac);
    }
    let mut all = vec![first];
    for e in others {
        if all.iter().any(|a| a.network == e.network) {
            return Err(EndpointError::Duplicate(e.network.clone()));
        }
        all.push(e.clone());
    }
    if all
        .iter()
        .any(|e| e.network == DEFAULT_NETWORK && !e.aliases.is_empty())
    {
        return Err(EndpointError::AliasOnDefault);
    }
    Ok(NetMode::Networks(all))
}

/// Docker's refusals for `--network container:NAME` with options of a network of one's own.
fn container_conflicts(req: &ContainerRequest, target: &str) -> Result<(), EndpointError> {
    let hc = &req.host_config;
    let nc = &req.networking_config;
    let checks: [(bool, &'static str); 6] = [
        (
            !hc.port_bindings.is_empty() || hc.publish_all_ports,
            "port publishing",
        ),
        (!hc.dns.is_empty(), "dns"),
        (!hc.extra_hosts.is_empty(), "custom host-to-IP mapping"),
        (req.config.hostname.is_some(), "hostname"),
        (req.config.mac_address.is_some(), "mac-address"),
        (
            nc.ipv4_address.is_some() || nc.endpoints.iter().any(|e| !e.aliases.is_empty()),
            "network-scoped settings (--ip, --network-alias)",
        ),
    ];
    if target.is_empty() {
        return Err(EndpointError::NoContainer);
    }
    match checks.iter().find(|(bad, _)| *bad) {
        Some((_, what)) => Err(EndpointError::Conflict(what)),
        None => Ok(()),
    }
}

/// Another running container whose network namespace (and /etc/hosts, /etc/resolv.conf and
/// host name) a `--network container:NAME` container shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedNet {
    pub id: String,
    /// Its namespace as the runtime sees it.
    pub netns: String,
    /// Its state dir (hosts, resolv.conf, hostname).
    pub dir: PathBuf,
    pub hostname: String,
}

/// The running container `query` names, for `--network container:NAME`.
pub async fn joined(ctx: &Ctx, query: &str) -> anyhow::Result<JoinedNet> {
    let c = ctx.find(query).await?;
    let pid = match record::state(ctx, &c.id).await? {
        State::Running { pid } | State::Paused { pid } => pid,
        _ => anyhow::bail!(
            "container {query} is not running: its network namespace cannot be joined (start it first with `burrow start {query}`)"
        ),
    };
    Ok(JoinedNet {
        netns: format!("/proc/{pid}/ns/net"),
        dir: ctx.store.container_dir(&c.id),
        hostname: c
            .labels
            .get(labels::HOSTNAME)
            .cloned()
            .unwrap_or_else(|| record::short_id(&c.id).to_string()),
        id: c.id,
    })
}

/// Before a `--network container:NAME` container starts again: points its spec at the other
/// container's namespace as it is now (that container may have restarted since), or says it
/// is not running. Nothing for other containers.
pub async fn rejoin(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
) -> anyhow::Result<()> {
    let Some(target) = record::networks_of(c)
        .first()
        .and_then(|m| m.strip_prefix("container:").map(str::to_string))
    else {
        return Ok(());
    };
    let j = joined(ctx, &target).await?;
    let Some(mut spec) = record::spec_of(c) else {
        return Ok(());
    };
    let mut changed = false;
    if let Some(linux) = spec.linux_mut() {
        let mut namespaces = linux.namespaces().clone().unwrap_or_default();
        for n in namespaces
            .iter_mut()
            .filter(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        {
            changed |= n.path().as_deref() != Some(std::path::Path::new(&j.netns));
            n.set_path(Some(j.netns.clone().into()));
        }
        linux.set_namespaces(Some(namespaces));
    }
    if changed {
        ctx.client.update_spec(&c.id, &spec).await?;
    }
    Ok(())
}

/// The request's networking, resolved on the host.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The namespace the container runs in.
    pub netns: NetNs,
    /// The networks label: CNI network names, or the one mode (host, container:ID); empty for
    /// none.
    pub label: Vec<String>,
    /// The CNI networks joined (name, conflist), primary first.
    pub confs: Vec<(String, Value)>,
    /// Their endpoint settings, for the network hook.
    pub endpoints: Vec<EndpointOpts>,
    pub joined: Option<JoinedNet>,
}

/// Resolves [`net_mode`] on the host: networks found (their addresses and MACs checked), the
/// container to share a namespace with found running.
pub async fn resolve(ctx: &Ctx, req: &ContainerRequest) -> anyhow::Result<Resolved> {
    let mode = net_mode(req)?;
    let one = |m: &str| vec![m.to_string()];
    let (netns, label, eps, joined) = match mode {
        // No label: inspect shows "none" for a container without networks.
        NetMode::None => (NetNs::New, vec![], vec![], None),
        // The runtime's own network namespace: the launcher's, or with --detach-netns the
        // host's own (as nerdctl 2 gives `--net=host` there).
        NetMode::Host => (NetNs::Host, one("host"), vec![], None),
        NetMode::Container(q) => {
            let j = joined(ctx, &q).await?;
            let ns = NetNs::Path(j.netns.clone());
            (ns, one(&format!("container:{}", j.id)), vec![], Some(j))
        }
        NetMode::Networks(eps) => (NetNs::New, vec![], eps, None),
    };
    let names: Vec<String> = eps.iter().map(|e| e.network.clone()).collect();
    let confs = hook::resolve_networks(&ctx.net, &names)?;
    let mut endpoints = Vec::new();
    for (e, (name, conf)) in eps.iter().zip(&confs) {
        if let Some(ip) = e.ipv4_address {
            super::create::check_ip(ip, name, &[(name.clone(), conf.clone())])?;
        }
        if e.mac_address.is_some() && !crate::network::sets_mac(conf) {
            anyhow::bail!("network {name} has no tuning plugin to set a MAC address with (recreate it with `burrow network create`)");
        }
        endpoints.push(EndpointOpts {
            network: name.clone(),
            aliases: e.aliases.clone(),
            ip: e.ipv4_address.map(|ip| ip.to_string()),
            mac: e.mac_address.map(|m| m.to_string()),
        });
    }
    let label = match confs.is_empty() {
        false => confs.iter().map(|(n, _)| n.clone()).collect(),
        true => label,
    };
    Ok(Resolved {
        netns,
        label,
        confs,
        endpoints,
        joined,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses() {
        let m: MacAddress = "02:42:AC:11:00:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!("02-42-ac-11-00-02".parse::<MacAddress>().unwrap(), m);
        for bad in [
            "02:42:ac:11:00",
            "02:42:ac:11:00:0g",
            "0242ac110002",
            "2:42:ac:11:00:02",
        ] {
            assert_eq!(bad.parse::<MacAddress>(), Err(ValueError::Mac), "{bad}");
        }
        assert_eq!(
            "01:00:5e:00:00:01".parse::<MacAddress>(),
            Err(ValueError::MacMulticast)
        );
    }

    #[test]
    fn network_flag_forms() {
        assert_eq!("a".parse::<Endpoint>().unwrap().network, "a");
        let e: Endpoint = "name=a,alias=x,alias=y,ip=10.4.1.9,mac-address=02:00:00:00:00:01"
            .parse()
            .unwrap();
        assert_eq!(e.network, "a");
        assert_eq!(e.aliases, ["x", "y"]);
        assert_eq!(e.ipv4_address, Some(Ipv4Addr::new(10, 4, 1, 9)));
        assert_eq!(e.mac_address.unwrap().to_string(), "02:00:00:00:00:01");
        assert!("alias=x".parse::<Endpoint>().is_err());
        assert!("name=a,driver=x".parse::<Endpoint>().is_err());
        assert!("name=a,ip=nope".parse::<Endpoint>().is_err());
    }

    fn req(mode: &str, extra: &[&str]) -> ContainerRequest {
        let mut r = ContainerRequest::new("busybox");
        r.host_config.network_mode = mode.into();
        r.networking_config.endpoints = extra.iter().map(|e| e.parse().unwrap()).collect();
        r
    }

    #[test]
    fn modes_and_conflicts() {
        let NetMode::Networks(eps) = net_mode(&req("a", &["a", "name=b,alias=x"])).unwrap() else {
            panic!()
        };
        assert_eq!(
            eps.iter().map(|e| e.network.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(net_mode(&req("host", &[])).unwrap(), NetMode::Host);
        assert!(matches!(
            net_mode(&req("host", &["b"])),
            Err(EndpointError::ModeMix(_))
        ));
        assert_eq!(
            net_mode(&req("bridge", &["name=bridge,alias=x"])),
            Err(EndpointError::AliasOnDefault)
        );
        assert_eq!(
            net_mode(&req("a", &["b", "b"])),
            Err(EndpointError::Duplicate("b".into()))
        );
        assert_eq!(
            net_mode(&req("a", &["a", "a"])),
            Err(EndpointError::Duplicate("a".into()))
        );
        let mut r = req("container:web", &[]);
        assert_eq!(net_mode(&r).unwrap(), NetMode::Container("web".into()));
        r.config.hostname = Some("h".into());
        assert_eq!(net_mode(&r), Err(EndpointError::Conflict("hostname")));
        r.config.hostname = None;
        r.host_config.dns = vec!["1.1.1.1".into()];
        assert_eq!(
            net_mode(&r).unwrap_err().to_string(),
            "conflicting options: dns and the network mode (--network host, none and container:NAME have no network of their own)"
        );
        let mut r = req("a", &[]);
        r.config.mac_address = Some("02:00:00:00:00:09".parse().unwrap());
        let NetMode::Networks(eps) = net_mode(&r).unwrap() else {
            panic!()
        };
        assert!(eps[0].mac_address.is_some());
    }
}
