//! burrow-slirp's command line: slirp4netns's flags, with slirp4netns's own checks and error
//! wording for the values (CIDR, MAC address, outbound address) and its `-v` block.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use burrow_rootlesskit::cidr::Cidr;
use clap::{Parser, ValueEnum};

/// The slirp4netns release whose command line, API and `-v` block burrow-slirp follows.
pub const SLIRP4NETNS_VERSION: &str = "1.2.0";
/// The libslirp configuration level slirp4netns 1.2.0 reports, which tools (and slirp4netns's own
/// tests) read to know --outbound-addr (2) and --disable-dns (3) are there.
pub const SLIRP_CONFIG_VERSION_MAX: u32 = 4;

/// User-mode networking for an unprivileged network namespace, with slirp4netns's command line:
/// a tap device in the namespace served by burrow's embedded userspace stack.
#[derive(Debug, Parser)]
#[command(
    name = "burrow-slirp",
    disable_version_flag = true,
    after_help = "Example (as slirp4netns is documented to be run):\n  \
                  unshare --user --map-root-user --net sh   # then, from another shell:\n  \
                  burrow-slirp --configure --mtu=65520 --disable-host-loopback $PID tap0\n\
                  See docs/network.md."
)]
pub struct Args {
    /// Bring up the interface: address .100 of --cidr, MTU, default route via .2.
    #[arg(short = 'c', long)]
    pub configure: bool,

    /// Exit when this file descriptor is closed (or becomes readable).
    #[arg(short = 'e', long, value_name = "FD")]
    pub exit_fd: Option<i32>,

    /// Write "1" to this file descriptor once the network is up.
    #[arg(short = 'r', long, value_name = "FD")]
    pub ready_fd: Option<i32>,

    /// MTU of the tap device (68..=65521, as slirp4netns's maximum).
    #[arg(short = 'm', long, default_value_t = 1500)]
    pub mtu: usize,

    /// Also serve IPv6: the namespace is fd00::100/64, the gateway (the host's ::1) fd00::2, DNS
    /// fd00::3.
    #[arg(short = '6', long)]
    pub enable_ipv6: bool,

    /// Serve slirp4netns's JSON API (add_hostfwd, list_hostfwd, remove_hostfwd) on this socket.
    #[arg(short = 'a', long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,

    /// The namespace's network: it is .100, the gateway (the host) .2, DNS .3 (prefix 1-25).
    #[arg(long, default_value = "10.0.2.0/24")]
    pub cidr: String,

    /// The tap device's MAC address (xx:xx:xx:xx:xx:xx; only with --configure).
    #[arg(long, value_name = "MAC")]
    pub macaddress: Option<String>,

    /// Outbound IPv4 connections and datagrams leave from this host address (or the first
    /// IPv4 address of this host interface).
    #[arg(long, value_name = "IPv4|INTERFACE")]
    pub outbound_addr: Option<String>,

    /// Outbound IPv6 connections and datagrams leave from this host address (or the first
    /// IPv6 address of this host interface).
    #[arg(long, value_name = "IPv6|INTERFACE")]
    pub outbound_addr6: Option<String>,

    /// What TARGET is: a network namespace (the only type burrow-slirp serves; slirp4netns's
    /// experimental "bess" is refused).
    #[arg(long, value_name = "TYPE", default_value = "netns")]
    pub target_type: String,

    /// Prohibit connecting to the host's 127.0.0.1 through the gateway address (connections get
    /// "network unreachable"; ping of the gateway still works).
    #[arg(long)]
    pub disable_host_loopback: bool,

    /// No DNS at .3: what is sent there is dropped.
    #[arg(long)]
    pub disable_dns: bool,

    /// How TARGET names the namespace: a process id, a path to a network namespace file, or
    /// (tapfd) an inherited tap device's descriptor number, served as it is.
    #[arg(long, value_enum, default_value_t = NetnsType::Pid)]
    pub netns_type: NetnsType,

    /// The user namespace to join with the network namespace (default: the target process's).
    #[arg(long, value_name = "PATH")]
    pub userns_path: Option<PathBuf>,

    /// Confine burrow-slirp once set up: a new mount namespace whose root holds only /etc and
    /// /run (read-only), and no capability but CAP_NET_BIND_SERVICE.
    #[arg(long)]
    pub enable_sandbox: bool,

    /// Confine burrow-slirp's system calls to those it needs (a seccomp filter), with no new
    /// privileges.
    #[arg(long)]
    pub enable_seccomp: bool,

    /// Print the version block (slirp4netns's format, read by tools) and exit.
    #[arg(short = 'v', long, exclusive = true)]
    pub version: bool,

    /// The namespace: a PID (--netns-type=pid), a path (--netns-type=path), or a tap device's
    /// descriptor (--netns-type=tapfd).
    #[arg(value_name = "PID|PATH|FD", required = true)]
    pub target: Option<String>,

    /// The tap device to create in it.
    #[arg(value_name = "TAPNAME", default_value = "tap0")]
    pub tapname: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetnsType {
    Pid,
    Path,
    Tapfd,
}

/// A value slirp4netns refuses, worded as slirp4netns words it (tools and scripts grep for it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("invalid CIDR: {0}")]
    Cidr(String),
    #[error("prefix length needs to be 1-25")]
    Prefix,
    #[error("CIDR needs to be a network address like 10.0.2.0/24, not like {0}")]
    NotNetwork(String),
    #[error("\"{0}\" is an invalid MAC address: use six hex bytes separated by ':', like 0e:d4:18:d9:38:fb")]
    Mac(String),
    #[error("--macaddress cannot be specified when --configure or -c is not specified")]
    MacWithoutConfigure,
    #[error(
        "{flag} has to be a valid {family} address or the name of an interface with one: {value:?}"
    )]
    Outbound {
        flag: &'static str,
        family: &'static str,
        value: String,
    },
    #[error("--target-type must be \"netns\" (burrow-slirp does not implement slirp4netns's experimental \"bess\")")]
    TargetType,
}

/// Parses `--cidr` with slirp4netns's rules: `A.B.C.D/N`, N in 1-25, host bits clear.
pub fn parse_cidr(s: &str) -> Result<Cidr, OptionError> {
    let bad = || OptionError::Cidr(s.to_string());
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let prefix_ok =
        !prefix.is_empty() && prefix.len() <= 2 && prefix.bytes().all(|b| b.is_ascii_digit());
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    if !prefix_ok {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if !(1..=25).contains(&prefix) {
        return Err(OptionError::Prefix);
    }
    let mask = u32::MAX << (32 - prefix);
    if u32::from(ip) & mask != u32::from(ip) {
        return Err(OptionError::NotNetwork(s.to_string()));
    }
    Ok(Cidr {
        network: ip,
        prefix,
    })
}

/// Parses a MAC address `xx:xx:xx:xx:xx:xx` (one or two hex digits a byte, as slirp4netns).
pub fn parse_mac(s: &str) -> Result<[u8; 6], OptionError> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts.next().ok_or_else(|| OptionError::Mac(s.into()))?;
        if p.is_empty() || p.len() > 2 {
            return Err(OptionError::Mac(s.into()));
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| OptionError::Mac(s.into()))?;
    }
    if parts.next().is_some() {
        return Err(OptionError::Mac(s.into()));
    }
    Ok(mac)
}

/// The host address `--outbound-addr`/`--outbound-addr6` name: a literal address of the family,
/// or the first address of that family on the interface of that name (`ifaces` lists the host's
/// (interface, address) pairs).
pub fn outbound_address(
    flag: &'static str,
    value: &str,
    v6: bool,
    ifaces: &[(String, IpAddr)],
) -> Result<IpAddr, OptionError> {
    let literal = if v6 {
        value.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        value.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    };
    literal
        .or_else(|| {
            ifaces
                .iter()
                .find(|(name, a)| name == value && a.is_ipv6() == v6)
                .map(|(_, a)| *a)
        })
        .ok_or_else(|| OptionError::Outbound {
            flag,
            family: if v6 { "IPv6" } else { "IPv4" },
            value: value.to_string(),
        })
}

/// The host's interface addresses, for [`outbound_address`].
pub fn host_interfaces() -> Vec<(String, IpAddr)> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let sa = a.address?;
            let ip = if let Some(v4) = sa.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(sa.as_sockaddr_in6()?.ip())
            };
            Some((a.interface_name, ip))
        })
        .collect()
}

/// The `-v` block, in slirp4netns's (runc-like, machine-read) format; the lines after the first
/// name what stands in for slirp4netns's parts.
pub fn version_block() -> String {
    let ours = env!("CARGO_PKG_VERSION");
    format!(
        "slirp4netns version {SLIRP4NETNS_VERSION} (burrow-slirp {ours})\n\
         commit: burrow-slirp-{ours}\n\
         libslirp: burrow-netstack {ours}\n\
         SLIRP_CONFIG_VERSION_MAX: {SLIRP_CONFIG_VERSION_MAX}\n"
    )
}

impl Args {
    /// The target as given (clap makes it required unless -v is given).
    fn target(&self) -> &str {
        self.target.as_deref().unwrap_or_default()
    }

    /// Checks the values slirp4netns checks before it starts, with its wording.
    pub fn check(&self) -> Result<(), OptionError> {
        if self.target_type != "netns" {
            return Err(OptionError::TargetType);
        }
        if self.macaddress.is_some() && !self.configure {
            return Err(OptionError::MacWithoutConfigure);
        }
        Ok(())
    }

    /// The namespace files to join: (network namespace, user namespace if any).
    pub fn namespaces(&self) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
        let target = self.target();
        match self.netns_type {
            NetnsType::Pid => {
                let pid: u32 = target.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    anyhow::anyhow!(
                        "PID must be a positive integer, not {target:?} (or pass --netns-type=path with a namespace file)"
                    )
                })?;
                let userns = self
                    .userns_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/user")));
                Ok((PathBuf::from(format!("/proc/{pid}/ns/net")), Some(userns)))
            }
            NetnsType::Path => Ok((PathBuf::from(target), self.userns_path.clone())),
            NetnsType::Tapfd => anyhow::bail!("--netns-type=tapfd names no namespace"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slirp4netns_command_lines_parse() {
        let a = Args::try_parse_from([
            "burrow-slirp",
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "-r",
            "3",
            "-e",
            "4",
            "--api-socket",
            "/tmp/s.sock",
            "1234",
            "tap0",
        ])
        .unwrap();
        assert!(a.configure && a.disable_host_loopback);
        assert_eq!((a.mtu, a.ready_fd, a.exit_fd), (65520, Some(3), Some(4)));
        let (net, user) = a.namespaces().unwrap();
        assert_eq!(net, PathBuf::from("/proc/1234/ns/net"));
        assert_eq!(user, Some(PathBuf::from("/proc/1234/ns/user")));

        let a = Args::try_parse_from([
            "burrow-slirp",
            "--netns-type=path",
            "--userns-path=/run/u",
            "/run/n",
            "eth9",
        ])
        .unwrap();
        assert_eq!(a.tapname, "eth9");
        assert_eq!(
            a.namespaces().unwrap(),
            (PathBuf::from("/run/n"), Some(PathBuf::from("/run/u")))
        );
        assert!(Args::try_parse_from(["burrow-slirp", "x"])
            .unwrap()
            .namespaces()
            .is_err());
    }

    #[test]
    fn cidr_errors_are_worded_as_slirp4netns_words_them() {
        for bad in [
            "24",
            "foo",
            "10.0.2.0",
            "10.0.2.0/x",
            "10.0.2.0/123",
            "1.2.3/8",
        ] {
            assert_eq!(parse_cidr(bad), Err(OptionError::Cidr(bad.into())), "{bad}");
            assert!(parse_cidr(bad)
                .unwrap_err()
                .to_string()
                .starts_with("invalid CIDR: "));
        }
        assert_eq!(parse_cidr("10.0.2.100/26"), Err(OptionError::Prefix));
        assert_eq!(parse_cidr("10.0.0.0/0"), Err(OptionError::Prefix));
        assert_eq!(
            parse_cidr("10.0.2.100/24").unwrap_err().to_string(),
            "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24"
        );
        let c = parse_cidr("10.0.135.128/25").unwrap();
        assert_eq!(
            (c.child_ip(), c.gateway()),
            (
                "10.0.135.228".parse().unwrap(),
                "10.0.135.130".parse().unwrap()
            )
        );
    }

    #[test]
    fn mac_addresses_parse_as_slirp4netns_parses_them() {
        assert_eq!(
            parse_mac("0e:d4:18:d9:38:fb"),
            Ok([0x0e, 0xd4, 0x18, 0xd9, 0x38, 0xfb])
        );
        assert_eq!(
            parse_mac("e:4:18:d9:38:FB"),
            Ok([0x0e, 0x04, 0x18, 0xd9, 0x38, 0xfb])
        );
        for bad in [
            "",
            "0e:d4:18:d9:38",
            "0e:d4:18:d9:38:fb:00",
            "0e:d4:18:d9:38:zz",
            "0e:d4:18:d9:38:100",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
        let a = Args::try_parse_from([
            "burrow-slirp",
            "--macaddress",
            "0e:d4:18:d9:38:fb",
            "1",
            "tap0",
        ])
        .unwrap();
        assert_eq!(a.check(), Err(OptionError::MacWithoutConfigure));
        let a = Args::try_parse_from(["burrow-slirp", "--target-type=bess", "1", "tap0"]).unwrap();
        assert_eq!(a.check(), Err(OptionError::TargetType));
    }

    #[test]
    fn outbound_addresses_are_literal_or_an_interfaces_first() {
        let ifaces = vec![
            ("lo".to_string(), "127.0.0.1".parse().unwrap()),
            ("eth0".to_string(), "fe80::1".parse().unwrap()),
            ("eth0".to_string(), "192.0.2.7".parse().unwrap()),
        ];
        let f = "--outbound-addr";
        assert_eq!(
            outbound_address(f, "198.51.100.1", false, &ifaces),
            Ok("198.51.100.1".parse().unwrap())
        );
        assert_eq!(
            outbound_address(f, "eth0", false, &ifaces),
            Ok("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            outbound_address(f, "eth0", true, &ifaces),
            Ok("fe80::1".parse().unwrap())
        );
        assert!(outbound_address(f, "::1", false, &ifaces).is_err());
        assert!(outbound_address(f, "eth9", false, &ifaces).is_err());
    }

    #[test]
    fn dash_v_needs_no_target_and_prints_the_config_version() {
        let a = Args::try_parse_from(["burrow-slirp", "-v"]).unwrap();
        assert!(a.version);
        assert!(Args::try_parse_from(["burrow-slirp"]).is_err());
        let v = version_block();
        assert!(v.starts_with("slirp4netns version 1.2.0 "), "{v}");
        assert!(v.lines().any(|l| l == "SLIRP_CONFIG_VERSION_MAX: 4"), "{v}");
    }
}
