//! A container's own addresses, read from its network namespace's /proc/PID/net files.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The addresses of one network namespace (loopback left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addrs {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Addrs {
    /// The namespace of a process (any thread id of it works).
    pub fn of(pid: u32) -> Addrs {
        let trie = std::fs::read_to_string(format!("/proc/{pid}/net/fib_trie")).unwrap_or_default();
        let inet6 =
            std::fs::read_to_string(format!("/proc/{pid}/net/if_inet6")).unwrap_or_default();
        Addrs {
            v4: local_v4(&trie),
            v6: global_v6(&inet6),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(&v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.contains(&v4),
                None => self.v6.contains(&v6),
            },
        }
    }

    /// The address the container calls its own for a family: the first one found.
    pub fn primary(&self, v4: bool) -> Option<IpAddr> {
        if v4 {
            self.v4.first().copied().map(IpAddr::V4)
        } else {
            self.v6.first().copied().map(IpAddr::V6)
        }
    }
}

/// The local IPv4 addresses in a `fib_trie` (the leaves followed by a `/32 host LOCAL` line),
/// without loopback, each once, in order.
pub fn local_v4(trie: &str) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = Vec::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for line in trie.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("|-- ") {
            leaf = rest.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(ip) = leaf {
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        } else if t.starts_with("+-- ") {
            leaf = None;
        }
    }
    out
}

/// The global-scope addresses in `if_inet6` (32 hex digits, index, prefix, scope, flags, name).
pub fn global_v6(text: &str) -> Vec<Ipv6Addr> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[3] != "00" || f[0].len() != 32 {
                return None;
            }
            u128::from_str_radix(f[0], 16).ok().map(Ipv6Addr::from)
        })
        .filter(|a| !a.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.4.0.0/24 2 0 2
        |-- 10.4.0.0
           /24 link UNICAST
        |-- 10.4.0.7
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.4.0.0/24 2 0 2
        |-- 10.4.0.7
           /32 host LOCAL
        |-- 10.4.0.255
           /32 link BROADCAST
";

    #[test]
    fn v4_addresses_come_from_the_local_leaves() {
        assert_eq!(local_v4(TRIE), vec![Ipv4Addr::new(10, 4, 0, 7)]);
        assert!(local_v4("").is_empty());
    }

    #[test]
    fn v6_addresses_are_the_global_ones() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000a8c1abfffe010203 02 40 20 80     eth0
fd000000000000000000000000000064 03 40 00 80     tap0
";
        assert_eq!(
            global_v6(text),
            vec!["fd00::64".parse::<Ipv6Addr>().unwrap()]
        );
        let a = Addrs {
            v4: local_v4(TRIE),
            v6: global_v6(text),
        };
        assert!(a.contains("10.4.0.7".parse().unwrap()));
        assert!(a.contains("::ffff:10.4.0.7".parse().unwrap()));
        assert!(!a.contains("10.4.0.8".parse().unwrap()));
        assert_eq!(a.primary(false), Some("fd00::64".parse().unwrap()));
    }
}
