//! IPv4 CIDR math for the namespace network: the child's, gateway's and DNS addresses of `--cidr`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `10.0.2.0/24` (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

/// Why a `--cidr` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("{0:?} is not an IPv4 CIDR like 10.0.2.0/24")]
    Syntax(String),
    #[error("{0:?}: the prefix must be between 1 and 25 so the network holds .2, .3 and .100")]
    Prefix(String),
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| CidrError::Syntax(s.into()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| CidrError::Syntax(s.into()))?;
        let prefix: u8 = prefix.parse().map_err(|_| CidrError::Syntax(s.into()))?;
        if !(1..=25).contains(&prefix) {
            return Err(CidrError::Prefix(s.into()));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// The address `n` within the network (`.n` for a /24).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + n)
    }
    /// The child's address (slirp4netns convention: .100).
    pub fn child_ip(&self) -> Ipv4Addr {
        self.host(100)
    }
    /// The gateway, which reaches the host (.2).
    pub fn gateway(&self) -> Ipv4Addr {
        self.host(2)
    }
    /// The DNS forwarder (.3).
    pub fn dns(&self) -> Ipv4Addr {
        self.host(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network() {
        let c: Cidr = "10.0.2.0/24".parse().unwrap();
        assert_eq!(c.child_ip(), Ipv4Addr::new(10, 0, 2, 100));
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(c.dns(), Ipv4Addr::new(10, 0, 2, 3));
        assert_eq!(c.to_string(), "10.0.2.0/24");
    }

    #[test]
    fn clears_host_bits_and_checks_prefix() {
        let c: Cidr = "192.168.7.77/16".parse().unwrap();
        assert_eq!(c.network, Ipv4Addr::new(192, 168, 0, 0));
        assert_eq!(c.child_ip(), Ipv4Addr::new(192, 168, 0, 100));
        assert!(matches!(
            "10.0.2.0/26".parse::<Cidr>(),
            Err(CidrError::Prefix(_))
        ));
        assert!(matches!(
            "10.0.2.0".parse::<Cidr>(),
            Err(CidrError::Syntax(_))
        ));
        assert!(matches!(
            "fd00::/64".parse::<Cidr>(),
            Err(CidrError::Syntax(_))
        ));
    }
}
