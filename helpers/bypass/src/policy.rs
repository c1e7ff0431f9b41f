//! Which connects are bypassed, from the container's networks: pure logic, no system calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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
}

impl Policy {
    pub fn new(m: &Metadata) -> Policy {
        Policy {
            networks: m.networks.iter().filter_map(|n| Net::parse(n)).collect(),
            gateway: m.gateway,
            host_loopback: m.host_loopback,
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
        })
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
