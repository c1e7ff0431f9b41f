//! Published ports: the port spec (RootlessKit's JSON and `-p` syntax), the port driver trait, and
//! the drivers (builtin, slirp through the embedded stack, slirp4netns).

pub mod builtin;
pub mod slirp;
pub mod slirp4netns;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A transport protocol as RootlessKit spells it. `tcp`/`udp` listen on both IPv4 and IPv6 when the
/// parent IP is unspecified; the `4`/`6` forms listen on one family only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Tcp4,
    Tcp6,
    Udp,
    Udp4,
    Udp6,
}

impl Proto {
    /// Every protocol the builtin driver supports, in RootlessKit's order.
    pub const ALL: [Proto; 6] = [
        Proto::Tcp,
        Proto::Tcp4,
        Proto::Tcp6,
        Proto::Udp,
        Proto::Udp4,
        Proto::Udp6,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Tcp4 => "tcp4",
            Proto::Tcp6 => "tcp6",
            Proto::Udp => "udp",
            Proto::Udp4 => "udp4",
            Proto::Udp6 => "udp6",
        }
    }

    pub fn is_tcp(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Tcp4 | Proto::Tcp6)
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = PortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proto::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                PortError::Invalid(format!(
                    "unknown proto {s:?}: use one of tcp, tcp4, tcp6, udp, udp4, udp6"
                ))
            })
    }
}

impl Serialize for Proto {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Proto {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One published port: `[parentIP:]parentPort[:childIP]:childPort/proto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    // Go's JSON decoder (RootlessKit's) matches keys in any case: the capitalised spellings a Go
    // struct's own field names give are taken too.
    #[serde(alias = "Proto", alias = "PROTO")]
    pub proto: Proto,
    #[serde(
        rename = "parentIP",
        alias = "ParentIP",
        alias = "parentIp",
        alias = "ParentIp",
        default,
        with = "opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_ip: Option<IpAddr>,
    #[serde(rename = "parentPort", alias = "ParentPort", default)]
    pub parent_port: u16,
    #[serde(
        rename = "childIP",
        alias = "ChildIP",
        alias = "childIp",
        alias = "ChildIp",
        default,
        with = "opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub child_ip: Option<IpAddr>,
    #[serde(rename = "childPort", alias = "ChildPort", default)]
    pub child_port: u16,
}

impl PortSpec {
    /// Checks what the JSON shape cannot: ports in 1..=65535 and addresses that fit the proto.
    pub fn validate(&self) -> Result<(), PortError> {
        if self.parent_port == 0 {
            return Err(PortError::Invalid(
                "invalid parentPort 0: use a port in 1..65535".into(),
            ));
        }
        if self.child_port == 0 {
            return Err(PortError::Invalid(
                "invalid childPort 0: use a port in 1..65535".into(),
            ));
        }
        let family_ok = |ip: Option<IpAddr>| {
            !matches!(
                (self.proto, ip),
                (Proto::Tcp4 | Proto::Udp4, Some(IpAddr::V6(_)))
                    | (Proto::Tcp6 | Proto::Udp6, Some(IpAddr::V4(_)))
            )
        };
        if !family_ok(self.parent_ip) {
            return Err(PortError::Invalid(format!(
                "parentIP {} does not match proto {}",
                self.parent_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                self.proto
            )));
        }
        if let Some(ip) = self.parent_ip {
            if ip.is_multicast() {
                return Err(PortError::Invalid(format!(
                    "parentIP {ip} is a multicast address"
                )));
            }
        }
        if let Some(ip) = self.child_ip {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(PortError::Invalid(format!(
                    "childIP {ip} cannot be dialled: use a unicast address such as 127.0.0.1"
                )));
            }
        }
        Ok(())
    }

    /// True when both specs would listen on the same parent address (RootlessKit's conflict rule).
    pub fn same_parent(&self, other: &PortSpec) -> bool {
        self.proto == other.proto
            && self.parent_ip == other.parent_ip
            && self.parent_port == other.parent_port
    }
}

fn fmt_ip(f: &mut fmt::Formatter<'_>, ip: IpAddr) -> fmt::Result {
    match ip {
        IpAddr::V4(v4) => write!(f, "{v4}:"),
        IpAddr::V6(v6) => write!(f, "[{v6}]:"),
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = self.parent_ip {
            fmt_ip(f, ip)?;
        }
        write!(f, "{}:", self.parent_port)?;
        if let Some(ip) = self.child_ip {
            fmt_ip(f, ip)?;
        }
        write!(f, "{}/{}", self.child_port, self.proto)
    }
}

/// Splits `a:[b::c]:d` on the colons that are outside brackets; bracketed parts keep no brackets.
fn split_fields(s: &str) -> Result<Vec<(String, bool)>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut bracketed = false;
    let mut in_bracket = false;
    for c in s.chars() {
        match c {
            '[' if !in_bracket && cur.is_empty() && !bracketed => in_bracket = true,
            ']' if in_bracket => {
                in_bracket = false;
                bracketed = true;
            }
            ':' if !in_bracket => {
                out.push((std::mem::take(&mut cur), std::mem::take(&mut bracketed)))
            }
            _ if bracketed => return Err("unexpected text after ']'".into()),
            _ => cur.push(c),
        }
    }
    if in_bracket {
        return Err("unclosed '['".into());
    }
    out.push((cur, bracketed));
    Ok(out)
}

impl FromStr for PortSpec {
    type Err = PortError;

    /// Parses `[parentIP:]parentPort[:childIP]:childPort/proto`, IPv6 addresses in brackets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            PortError::Invalid(format!("invalid port spec {s:?}: {why} (expected [parentIP:]parentPort[:childIP]:childPort/proto, e.g. 127.0.0.1:8080:80/tcp)"))
        };
        let (addrs, proto) = s.rsplit_once('/').ok_or_else(|| bad("missing /proto"))?;
        let proto: Proto = proto.parse().map_err(|e: PortError| bad(&e.to_string()))?;
        let fields = split_fields(addrs).map_err(|e| bad(&e))?;
        let ip = |f: &(String, bool)| -> Result<Option<IpAddr>, PortError> {
            if f.0.is_empty() && !f.1 {
                return Ok(None);
            }
            let ip: IpAddr =
                f.0.parse()
                    .map_err(|_| bad(&format!("{:?} is not an IP address", f.0)))?;
            // As RootlessKit: IPv6 addresses need brackets; IPv4 ones may have them.
            if ip.is_ipv6() && !f.1 {
                return Err(bad("IPv6 addresses go in [brackets]"));
            }
            Ok(Some(ip))
        };
        let port = |f: &(String, bool)| -> Result<u16, PortError> {
            if f.1 {
                return Err(bad(&format!("[{}] is not a port", f.0)));
            }
            f.0.parse::<u16>()
                .map_err(|_| bad(&format!("{:?} is not a port number", f.0)))
        };
        let looks_like_port =
            |f: &(String, bool)| !f.1 && !f.0.is_empty() && f.0.bytes().all(|b| b.is_ascii_digit());
        let (parent_ip, parent_port, child_ip, child_port) = match fields.as_slice() {
            [pp, cp] => (None, port(pp)?, None, port(cp)?),
            [a, b, cp] if looks_like_port(a) => (None, port(a)?, ip(b)?, port(cp)?),
            [a, b, cp] => (ip(a)?, port(b)?, None, port(cp)?),
            [pip, pp, cip, cp] => (ip(pip)?, port(pp)?, ip(cip)?, port(cp)?),
            _ => return Err(bad("wrong number of ':'-separated fields")),
        };
        let spec = PortSpec {
            proto,
            parent_ip,
            parent_port,
            child_ip,
            child_port,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// serde for `Option<IpAddr>` as RootlessKit writes it: absent or `""` means none.
mod opt_ip {
    use std::net::IpAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("invalid IP address {s:?}"))),
        }
    }
}

/// A port the driver has published, with the id that removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub id: u64,
    pub spec: PortSpec,
}

/// What `GET /v1/info` says about the port driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDriverInfo {
    pub driver: String,
    pub protos: Vec<String>,
    #[serde(
        rename = "disallowLoopbackChildIP",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disallow_loopback_child_ip: bool,
}

/// Why a port could not be added or removed; the message is shown to API clients as is.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "port {spec} conflicts with port id {id}, already forwarded (for another container, or added through the API): pick another host port, or stop the container that published it"
    )]
    Conflict { id: u64, spec: String },
    #[error("cannot listen on {addr} for {spec}: the address is already in use on the host; pick another parent port or stop what listens there")]
    AddrInUse { addr: String, spec: String },
    #[error("cannot listen on {addr} for {spec}: ports below {start} are privileged (net.ipv4.ip_unprivileged_port_start={start}); allow this one with `sysctl -w net.ipv4.ip_unprivileged_port_start={port}` as root (persist it in /etc/sysctl.d) or use a parent port >= {start}")]
    Privileged {
        addr: String,
        spec: String,
        port: u16,
        start: u16,
    },
    #[error("cannot listen on {addr} for {spec}: {source}")]
    Listen {
        addr: String,
        spec: String,
        source: std::io::Error,
    },
    #[error("no port with id {0}: list the ports with `rootlessctl list-ports`")]
    NotFound(u64),
    #[error("port driver: {0}")]
    Driver(String),
}

/// The ports a driver published, each with the key its backend knows it by (slirp4netns's
/// hostfwd id, the embedded stack's forward id). Kept under the driver's lock.
pub struct PortTable<K> {
    next: u64,
    map: std::collections::BTreeMap<u64, (PortStatus, K)>,
}

impl<K: Clone> Default for PortTable<K> {
    fn default() -> Self {
        PortTable {
            next: 1,
            map: std::collections::BTreeMap::new(),
        }
    }
}

impl<K: Clone> PortTable<K> {
    /// Refuses `spec` when a port with the same parent address and port exists.
    pub fn check_conflict(&self, spec: &PortSpec) -> Result<(), PortError> {
        match self
            .map
            .iter()
            .find(|(_, (st, _))| st.spec.same_parent(spec))
        {
            Some((id, _)) => Err(PortError::Conflict {
                id: *id,
                spec: spec.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Records a published port; returns its status (with the id the API shows).
    pub fn insert(&mut self, spec: PortSpec, key: K) -> PortStatus {
        let id = self.next;
        self.next += 1;
        let status = PortStatus { id, spec };
        self.map.insert(id, (status.clone(), key));
        status
    }

    pub fn list(&self) -> Vec<PortStatus> {
        self.map.values().map(|(s, _)| s.clone()).collect()
    }

    /// The backend key of port `id`.
    pub fn key(&self, id: u64) -> Result<K, PortError> {
        self.map
            .get(&id)
            .map(|(_, k)| k.clone())
            .ok_or(PortError::NotFound(id))
    }

    pub fn remove(&mut self, id: u64) {
        self.map.remove(&id);
    }
}

/// A port driver: publishes ports of the child's network namespace on the host. Implementations
/// must be thread-safe; the API server calls them from blocking threads.
pub trait PortDriver: Send + Sync {
    fn info(&self) -> PortDriverInfo;
    fn add(&self, spec: PortSpec) -> Result<PortStatus, PortError>;
    fn list(&self) -> Vec<PortStatus>;
    fn remove(&self, id: u64) -> Result<(), PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_all_forms() {
        let s = p("8080:80/tcp");
        assert_eq!(
            (
                s.parent_ip,
                s.parent_port,
                s.child_ip,
                s.child_port,
                s.proto
            ),
            (None, 8080, None, 80, Proto::Tcp)
        );
        let s = p("127.0.0.1:8080:80/udp4");
        assert_eq!(s.parent_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(s.proto, Proto::Udp4);
        let s = p("8080:10.0.2.100:80/tcp");
        assert_eq!(
            (s.parent_ip, s.child_ip),
            (None, Some("10.0.2.100".parse().unwrap()))
        );
        let s = p("[::1]:8080:[::2]:80/udp6");
        assert_eq!(s.parent_ip, Some("::1".parse().unwrap()));
        assert_eq!(s.child_ip, Some("::2".parse().unwrap()));
        let s = p(":8080:80/tcp");
        assert_eq!((s.parent_ip, s.parent_port), (None, 8080));
        let s = p("0.0.0.0:8080:127.0.0.1:80/tcp");
        assert_eq!(s.to_string(), "0.0.0.0:8080:127.0.0.1:80/tcp");
        assert_eq!(p("[::]:1:2/tcp6").to_string(), "[::]:1:2/tcp6");
        // Either family on either side, IPv4 in brackets too (as RootlessKit's parser).
        let s = p("[::]:8080:[127.0.0.1]:80/tcp");
        assert_eq!(s.child_ip, Some("127.0.0.1".parse().unwrap()));
        let s = p("0.0.0.0:8080:[::1]:80/tcp");
        assert_eq!(s.child_ip, Some("::1".parse().unwrap()));
        assert_eq!(p("[1.2.3.4]:1:2/tcp").to_string(), "1.2.3.4:1:2/tcp");
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "8080:80",
            "8080:80/sctp",
            "80/tcp",
            "a:1:2/tcp",
            "1:2:3:4:5/tcp",
            "::1:8080:80/tcp",
            "[::1:8080:80/tcp",
            "0:80/tcp",
            "8080:0/tcp",
            "70000:80/tcp",
            "[::1]:1:2/tcp4",
            "1.2.3.4:1:2/udp6",
            "1:0.0.0.0:2/tcp",
            "[::1]x:1:2/tcp",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn json_uses_rootlesskit_names() {
        let s = p("127.0.0.1:8080:80/tcp");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"proto": "tcp", "parentIP": "127.0.0.1", "parentPort": 8080, "childPort": 80})
        );
        let back: PortSpec = serde_json::from_value(serde_json::json!({"proto": "udp6", "parentIP": "", "parentPort": 1, "childIP": "::1", "childPort": 2})).unwrap();
        assert_eq!(back, p("1:[::1]:2/udp6"));
        // Go's decoder takes a Go struct's own capitalised field names; so does ours.
        let go: PortSpec = serde_json::from_value(
            serde_json::json!({"Proto": "udp6", "ParentPort": 1, "ChildIP": "::1", "ChildPort": 2}),
        )
        .unwrap();
        assert_eq!(go, p("1:[::1]:2/udp6"));
        assert!(serde_json::from_str::<PortSpec>(
            r#"{"proto":"sctp","parentPort":1,"childPort":2}"#
        )
        .is_err());
        assert!(serde_json::from_str::<PortSpec>(
            r#"{"proto":"tcp","parentIP":"x","parentPort":1,"childPort":2}"#
        )
        .is_err());
        let info = PortDriverInfo {
            driver: "builtin".into(),
            protos: vec!["tcp".into()],
            disallow_loopback_child_ip: false,
        };
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            serde_json::json!({"driver": "builtin", "protos": ["tcp"]})
        );
    }
}
