//! Which calls are bypassed and what the container is told, from its networks and published
//! ports: pure logic, no system calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What the container's side says about its networks (the OCI spec's listenerMetadata, JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The container's own networks (its bridges and the launcher's network), as CIDRs:
    /// connects there stay inside the namespace.
    #[serde(default)]
    pub networks: Vec<String>,
    /// The launcher's gateway (10.0.2.2): it stands for the host, so its connects go to the
    /// host's loopback when `host_loopback` is true.
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub host_loopback: bool,
    /// The container's published TCP ports (`-p`): a bind of the container port is done on the
    /// host at the host port instead.
    #[serde(default)]
    pub ports: Vec<Published>,
    /// The launcher's API socket: a port bound on the host is taken from the launcher's port
    /// driver first (and given back if the host bind fails).
    #[serde(default)]
    pub launcher_api: Option<PathBuf>,
}

/// One published TCP port: `host_ip:host_port` on the host → `container_port` in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// The decision for one connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the call go through the container's own network.
    Keep,
    /// Connect a host socket to this address instead.
    Bypass(SocketAddr),
}

/// The policy of one container.
#[derive(Debug, Clone)]
pub struct Policy {
    networks: Vec<Net>,
    gateway: Option<IpAddr>,
    host_loopback: bool,
    ports: Vec<Published>,
    launcher_api: Option<PathBuf>,
}

/// Whether a container socket of the other kind of family can stand for a host address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    /// IPv6, and whether IPV6_V6ONLY is set on it.
    V6 {
        v6only: bool,
    },
}

impl Policy {
    pub fn new(m: &Metadata) -> Policy {
        Policy {
            networks: m.networks.iter().filter_map(|n| Net::parse(n)).collect(),
            gateway: m.gateway,
            host_loopback: m.host_loopback,
            ports: m.ports.clone(),
            launcher_api: m.launcher_api.clone(),
        }
    }

    /// Whether a container port is published over TCP (a cheap check before any system call).
    pub fn publishes(&self, container_port: u16) -> bool {
        container_port != 0
            && self
                .ports
                .iter()
                .any(|p| p.container_port == container_port)
    }

    pub fn launcher_api(&self) -> Option<&std::path::Path> {
        self.launcher_api.as_deref()
    }

    /// For a bind of a TCP socket of `family` to `addr` in the container: the published port it
    /// serves and the host address to bind instead, or None to let the bind go on unchanged.
    /// Only binds to the wildcard or one of the container's own non-loopback addresses
    /// (`is_local`) count: a bind to loopback is not reachable through -p anyway.
    pub fn bind_target(
        &self,
        addr: SocketAddr,
        family: Family,
        is_local: impl Fn(IpAddr) -> bool,
    ) -> Option<(Published, SocketAddr)> {
        let ip = canonical(addr.ip());
        if addr.port() == 0 || ip.is_loopback() || ip.is_multicast() {
            return None;
        }
        if !ip.is_unspecified() && !is_local(ip) {
            return None;
        }
        // With several mappings of one container port, the first the family can take.
        self.ports
            .iter()
            .filter(|p| p.container_port == addr.port())
            .find_map(|p| host_bind_addr(p, family).map(|a| (p.clone(), a)))
    }

    /// What getsockname answers for a bypassed (host) socket whose real local address is `real`:
    /// the container's address (`mine`, of the socket's family) and, for a published port's host
    /// side, the container port. A wildcard address stays the wildcard.
    pub fn local_view(&self, real: SocketAddr, mine: Option<IpAddr>) -> SocketAddr {
        let port = self
            .ports
            .iter()
            .find(|p| p.host_port == real.port())
            .map_or(real.port(), |p| p.container_port);
        let ip = canonical(real.ip());
        let shown = if ip.is_unspecified() {
            ip
        } else {
            match mine {
                Some(m) => m,
                None => ip,
            }
        };
        with_port(with_ip(real, shown), port)
    }

    /// What getpeername answers for a bypassed socket whose real peer is `real`: a peer on the
    /// host's loopback shows as the gateway (the host as the container sees it), never as the
    /// container's own loopback.
    pub fn peer_view(&self, real: SocketAddr) -> SocketAddr {
        let ip = canonical(real.ip());
        match self.gateway {
            Some(gw) if ip.is_loopback() && gw.is_ipv4() == ip.is_ipv4() => with_ip(real, gw),
            _ => real,
        }
    }

    pub fn decide(&self, dest: SocketAddr) -> Decision {
        let ip = canonical(dest.ip());
        if dest.port() == 0 || ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
            return Decision::Keep;
        }
        if ip.is_loopback() {
            // The container's own loopback.
            return Decision::Keep;
        }
        if Some(ip) == self.gateway.map(canonical) {
            if !self.host_loopback {
                return Decision::Keep;
            }
            let lo: IpAddr = match ip {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            };
            return Decision::Bypass(with_ip(dest, lo));
        }
        if self.networks.iter().any(|n| n.contains(ip)) {
            return Decision::Keep;
        }
        Decision::Bypass(dest)
    }
}

/// The host address to bind for a published port, for a container socket of `family`; None
/// when that socket cannot stand for it (a v4 socket for a v6 host address, or a v6-only socket
/// for a v4 one).
fn host_bind_addr(p: &Published, family: Family) -> Option<SocketAddr> {
    match (family, p.host_ip) {
        (Family::V4, IpAddr::V4(v4)) => Some(SocketAddr::V4(SocketAddrV4::new(v4, p.host_port))),
        (Family::V4, IpAddr::V6(_)) => None,
        // The wildcard: a dual-stack socket listens on both families, as Docker's -p does.
        (Family::V6 { .. }, IpAddr::V4(v4)) if v4.is_unspecified() => Some(SocketAddr::V6(
            SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, p.host_port, 0, 0),
        )),
        (Family::V6 { v6only: false }, IpAddr::V4(v4)) => Some(SocketAddr::V6(SocketAddrV6::new(
            v4.to_ipv6_mapped(),
            p.host_port,
            0,
            0,
        ))),
        (Family::V6 { v6only: true }, IpAddr::V4(_)) => None,
        (Family::V6 { .. }, IpAddr::V6(v6)) => {
            Some(SocketAddr::V6(SocketAddrV6::new(v6, p.host_port, 0, 0)))
        }
    }
}

/// Whether a host socket bound to `host` (with `v6only` for a v6 one) takes the connections of a
/// launcher port listening on `parent` (None: the wildcard) of the same port number, so the
/// launcher's listener must make way for it.
pub fn covers(host: SocketAddr, v6only: bool, parent: Option<IpAddr>) -> bool {
    let h = canonical(host.ip());
    let p = parent.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), canonical);
    if h == p {
        return true;
    }
    match host {
        // A dual-stack wildcard takes both families' wildcards.
        SocketAddr::V6(a) if a.ip().is_unspecified() && !v6only => p.is_unspecified(),
        _ => false,
    }
}

/// Encodes a socket address as the kernel returns it from getsockname(2): `sockaddr_in` (16
/// bytes) or `sockaddr_in6` (28).
pub fn encode_sockaddr(a: SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v4) => {
            let mut b = vec![0u8; 16];
            b[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v4.port().to_be_bytes());
            b[4..8].copy_from_slice(&v4.ip().octets());
            b
        }
        SocketAddr::V6(v6) => {
            let mut b = vec![0u8; 28];
            b[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b[2..4].copy_from_slice(&v6.port().to_be_bytes());
            b[4..8].copy_from_slice(&v6.flowinfo().to_be_bytes());
            b[8..24].copy_from_slice(&v6.ip().octets());
            b[24..28].copy_from_slice(&v6.scope_id().to_ne_bytes());
            b
        }
    }
}

fn with_port(mut a: SocketAddr, port: u16) -> SocketAddr {
    a.set_port(port);
    a
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// The same kind of address (v4, or v6 for v6 and mapped sockets) with another IP.
fn with_ip(dest: SocketAddr, ip: IpAddr) -> SocketAddr {
    match (dest, ip) {
        (SocketAddr::V6(d), IpAddr::V4(v4)) => SocketAddr::V6(SocketAddrV6::new(
            v4.to_ipv6_mapped(),
            d.port(),
            d.flowinfo(),
            d.scope_id(),
        )),
        (SocketAddr::V6(d), IpAddr::V6(v6)) => {
            SocketAddr::V6(SocketAddrV6::new(v6, d.port(), d.flowinfo(), d.scope_id()))
        }
        (SocketAddr::V4(d), IpAddr::V4(v4)) => SocketAddr::V4(SocketAddrV4::new(v4, d.port())),
        (SocketAddr::V4(d), IpAddr::V6(v6)) => {
            SocketAddr::V6(SocketAddrV6::new(v6, d.port(), 0, 0))
        }
    }
}

/// Parses a `struct sockaddr` as the kernel would take it from connect(2); None for other families.
pub fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes([*b.first()?, *b.get(1)?]));
    match family {
        libc::AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 if b.len() >= 28 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(host_loopback: bool) -> Policy {
        Policy::new(&Metadata {
            networks: vec![
                "10.4.0.0/24".into(),
                "10.0.2.0/24".into(),
                "fd00::/64".into(),
            ],
            gateway: Some("10.0.2.2".parse().unwrap()),
            host_loopback,
            ports: vec![
                Published {
                    host_ip: "0.0.0.0".parse().unwrap(),
                    host_port: 8080,
                    container_port: 80,
                },
                Published {
                    host_ip: "127.0.0.1".parse().unwrap(),
                    host_port: 9443,
                    container_port: 443,
                },
            ],
            launcher_api: None,
        })
    }

    #[test]
    fn binds_of_published_ports_go_to_the_host_port() {
        let p = policy(false);
        let local = |ip: IpAddr| ip == "10.4.0.7".parse::<IpAddr>().unwrap();
        let v6 = Family::V6 { v6only: false };
        let target = |a: &str, f| p.bind_target(sa(a), f, local).map(|(_, h)| h);
        assert_eq!(target("0.0.0.0:80", Family::V4), Some(sa("0.0.0.0:8080")));
        assert_eq!(target("10.4.0.7:80", Family::V4), Some(sa("0.0.0.0:8080")));
        // A dual-stack wildcard listens on both families of the host.
        assert_eq!(target("[::]:80", v6), Some(sa("[::]:8080")));
        assert_eq!(target("[::]:443", v6), Some(sa("[::ffff:127.0.0.1]:9443")));
        assert_eq!(target("[::]:443", Family::V6 { v6only: true }), None);
        // Not published, loopback, another container's address, or no port: unchanged.
        for (a, f) in [
            ("0.0.0.0:81", Family::V4),
            ("127.0.0.1:80", Family::V4),
            ("[::1]:80", v6),
            ("10.4.0.8:80", Family::V4),
            ("0.0.0.0:0", Family::V4),
        ] {
            assert_eq!(target(a, f), None, "{a}");
        }
        let (published, _) = p.bind_target(sa("0.0.0.0:443"), Family::V4, local).unwrap();
        assert_eq!(published.host_port, 9443);
    }

    #[test]
    fn host_binds_cover_the_launcher_ports_they_replace() {
        let any4 = Some("0.0.0.0".parse().unwrap());
        let lo4 = Some("127.0.0.1".parse().unwrap());
        let any6 = Some("::".parse().unwrap());
        assert!(covers(sa("0.0.0.0:8080"), false, any4));
        assert!(covers(sa("0.0.0.0:8080"), false, None));
        assert!(!covers(sa("0.0.0.0:8080"), false, any6));
        assert!(covers(sa("[::]:8080"), false, any4));
        assert!(covers(sa("[::]:8080"), false, any6));
        assert!(!covers(sa("[::]:8080"), true, any4));
        assert!(covers(sa("[::ffff:127.0.0.1]:8080"), false, lo4));
        assert!(!covers(sa("127.0.0.1:8080"), false, any4));
    }

    #[test]
    fn sockaddrs_encode_as_the_kernel_does() {
        for a in ["10.4.0.7:80", "[fd00::5]:443", "[::ffff:10.0.2.2]:5555"] {
            let b = encode_sockaddr(sa(a));
            assert_eq!(parse_sockaddr(&b), Some(sa(a)), "{a}");
        }
        assert_eq!(encode_sockaddr(sa("1.2.3.4:5")).len(), 16);
        assert_eq!(encode_sockaddr(sa("[::1]:5")).len(), 28);
    }

    #[test]
    fn names_show_the_containers_view() {
        let p = policy(false);
        let mine: Option<IpAddr> = Some("10.4.0.7".parse().unwrap());
        // A listener on the host wildcard: the container port, the wildcard kept.
        assert_eq!(p.local_view(sa("0.0.0.0:8080"), mine), sa("0.0.0.0:80"));
        assert_eq!(p.local_view(sa("[::]:8080"), None), sa("[::]:80"));
        // An accepted connection: the container's address and port.
        assert_eq!(p.local_view(sa("127.0.0.1:8080"), mine), sa("10.4.0.7:80"));
        // A v6 socket's mapped address stays mapped.
        assert_eq!(
            p.local_view(sa("[::ffff:192.168.1.9]:8080"), mine),
            sa("[::ffff:10.4.0.7]:80")
        );
        // An outgoing connection: the container's address with the real port.
        assert_eq!(
            p.local_view(sa("192.168.1.9:40000"), mine),
            sa("10.4.0.7:40000")
        );
        // A host-loopback peer is the gateway; others are themselves.
        assert_eq!(p.peer_view(sa("127.0.0.1:5555")), sa("10.0.2.2:5555"));
        assert_eq!(
            p.peer_view(sa("[::ffff:127.0.0.1]:5555")),
            sa("[::ffff:10.0.2.2]:5555")
        );
        assert_eq!(p.peer_view(sa("192.168.1.5:80")), sa("192.168.1.5:80"));
        assert_eq!(p.peer_view(sa("[::1]:80")), sa("[::1]:80"));
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn outside_destinations_are_bypassed() {
        let p = policy(true);
        assert_eq!(
            p.decide(sa("192.168.1.5:80")),
            Decision::Bypass(sa("192.168.1.5:80"))
        );
        assert_eq!(
            p.decide(sa("[2001:db8::1]:443")),
            Decision::Bypass(sa("[2001:db8::1]:443"))
        );
    }

    #[test]
    fn container_networks_and_loopback_stay() {
        let p = policy(true);
        for d in [
            "10.4.0.7:80",
            "10.0.2.3:53",
            "127.0.0.1:80",
            "[::1]:80",
            "[fd00::5]:80",
            "0.0.0.0:80",
            "224.0.0.1:5",
            "255.255.255.255:9",
            "1.2.3.4:0",
        ] {
            assert_eq!(p.decide(sa(d)), Decision::Keep, "{d}");
        }
    }

    #[test]
    fn the_gateway_is_the_hosts_loopback_unless_disabled() {
        assert_eq!(
            policy(true).decide(sa("10.0.2.2:8080")),
            Decision::Bypass(sa("127.0.0.1:8080"))
        );
        assert_eq!(policy(false).decide(sa("10.0.2.2:8080")), Decision::Keep);
        // A v6 socket connecting to the v4-mapped gateway stays a v6 sockaddr.
        assert_eq!(
            policy(true).decide(sa("[::ffff:10.0.2.2]:8080")),
            Decision::Bypass(sa("[::ffff:127.0.0.1]:8080"))
        );
        assert_eq!(
            policy(true).decide(sa("[::ffff:10.4.0.9]:80")),
            Decision::Keep
        );
    }

    #[test]
    fn nets_parse_and_match() {
        let n = Net::parse("10.4.0.0/24").unwrap();
        assert!(n.contains("10.4.0.255".parse().unwrap()));
        assert!(!n.contains("10.4.1.0".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("junk").is_none());
    }

    #[test]
    fn sockaddrs_parse() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 2, 2]);
        assert_eq!(parse_sockaddr(&v4), Some(sa("10.0.2.2:8080")));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(parse_sockaddr(&v6), Some(sa("[2001:db8::1]:443")));
        let mut unix = vec![0u8; 110];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(parse_sockaddr(&unix), None);
        assert_eq!(parse_sockaddr(&v4[..6]), None);
        assert_eq!(parse_sockaddr(&[]), None);
    }
}
