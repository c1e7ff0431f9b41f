//! The launcher's command line: RootlessKit's flag names, defaults and meanings.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::cidr::Cidr;
use crate::port::PortSpec;
use crate::subid::SubidSource;

/// Runs COMMAND in new user and mount namespaces (and optionally network, PID, cgroup, UTS and
/// IPC namespaces) as the unprivileged user's "root", the way RootlessKit does. Ids 1.. map to
/// the user's subordinate ranges from /etc/subuid and /etc/subgid through newuidmap/newgidmap.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "burrow-rootlesskit",
    version,
    about = "Run a command as a fake root in new user, mount and network namespaces (RootlessKit-compatible)",
    after_help = "Example: burrow-rootlesskit --net=slirp4netns --copy-up=/etc --port-driver=builtin \
                  -p 127.0.0.1:8080:80/tcp sh\nSee docs/rootlesskit.md for the state directory and \
                  the differences from RootlessKit."
)]
#[command(mut_args(crate::goflags::go_bool), disable_version_flag = true)]
pub struct Flags {
    /// Print the version (`-v` as RootlessKit's, `-V` too).
    #[arg(short = 'v', long, visible_short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Log what the launcher does to stderr.
    #[arg(long)]
    pub debug: bool,

    /// State directory (lock, child_pid, api.sock, netns). Default: a new private directory under
    /// $XDG_RUNTIME_DIR (or /tmp), removed on exit.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Network driver: host (share the host's network), none (only loopback), slirp4netns (a
    /// tap device served by slirp4netns), builtin (the embedded userspace stack).
    #[arg(long, value_enum, default_value_t = Net::Host)]
    pub net: Net,

    /// MTU of the namespace's interface (0: 65520 for slirp4netns and builtin, 1500 otherwise).
    #[arg(long, default_value_t = 0)]
    pub mtu: u32,

    /// IPv4 network of the namespace: the child is .100, the gateway (the host) .2, DNS .3.
    #[arg(long, default_value = "10.0.2.0/24", value_parser = network_cidr)]
    pub cidr: Cidr,

    /// Name of the namespace's interface.
    #[arg(long, default_value = "tap0")]
    pub ifname: String,

    /// Refuse connections from the namespace to the host's loopback through the gateway address.
    #[arg(long)]
    pub disable_host_loopback: bool,

    /// Also route IPv6 (fd00::100/64, gateway fd00::2 reaching the host's ::1, DNS fd00::3).
    #[arg(long)]
    pub ipv6: bool,

    /// Put the network namespace at STATE_DIR/netns instead of the child's own namespace; the
    /// command keeps the host's network and joins the detached one with nsenter when it wants.
    #[arg(long)]
    pub detach_netns: bool,

    /// With --net=builtin: where DNS queries to the namespace's DNS address (.3) go, as IP or
    /// IP:PORT (burrow extension; default: the first IPv4 name server of the host's
    /// /etc/resolv.conf, loopback resolvers included).
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_dns_upstream)]
    pub dns_upstream: Option<std::net::SocketAddrV4>,

    /// slirp4netns executable for --net=slirp4netns.
    #[arg(long, default_value = "slirp4netns", value_name = "PATH")]
    pub slirp4netns_binary: PathBuf,

    /// Run slirp4netns with --enable-sandbox (auto: when the binary supports it).
    #[arg(long, value_enum, default_value_t = Tristate::False)]
    pub slirp4netns_sandbox: Tristate,

    /// Run slirp4netns with --enable-seccomp (auto: when the binary supports it).
    #[arg(long, value_enum, default_value_t = Tristate::False)]
    pub slirp4netns_seccomp: Tristate,

    /// Port driver publishing ports of the namespace on the host: none, builtin (splice-based,
    /// the fastest; the namespace sees connections from its own loopback), slirp (through the
    /// embedded stack of --net=builtin; the namespace sees each client's real address),
    /// slirp4netns (through slirp4netns; needs --net=slirp4netns).
    #[arg(long, value_enum, default_value_t = PortDriverKind::None)]
    pub port_driver: PortDriverKind,

    /// Publish a port: [PARENT_IP:]PARENT_PORT[:CHILD_IP]:CHILD_PORT/PROTO, e.g.
    /// 127.0.0.1:8080:80/tcp. Repeatable. Needs --port-driver.
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<PortSpec>,

    /// Mount a tmpfs over DIR whose entries link to the original ones, so DIR becomes writable
    /// inside (typically /etc, /run, /var/lib). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub copy_up: Vec<PathBuf>,

    /// How --copy-up works (only tmpfs+symlink).
    #[arg(long, value_enum, default_value_t = CopyUpMode::TmpfsSymlink)]
    pub copy_up_mode: CopyUpMode,

    /// Mount propagation of the new mount namespace.
    #[arg(long, value_enum, default_value_t = Propagation::Rprivate)]
    pub propagation: Propagation,

    /// Create a PID namespace (the command sees itself, or the reaper, as PID 1).
    #[arg(long)]
    pub pidns: bool,

    /// Create a cgroup namespace.
    #[arg(long)]
    pub cgroupns: bool,

    /// Create a UTS namespace.
    #[arg(long)]
    pub utsns: bool,

    /// Create an IPC namespace.
    #[arg(long)]
    pub ipcns: bool,

    /// With --pidns: run a reaper as PID 1 that reaps orphans and forwards signals (auto: on).
    #[arg(long, value_enum, default_value_t = Tristate::Auto)]
    pub reaper: Tristate,

    /// Where subordinate ids come from: dynamic (getsubids), static (/etc/subuid, /etc/subgid),
    /// auto (dynamic, then static).
    #[arg(long, value_enum, default_value_t = SubidSource::Auto)]
    pub subid_source: SubidSource,

    /// RootlessKit flags for network drivers and cgroup handling burrow-rootlesskit does not
    /// have: taken so that the error names them (see [`Flags::unsupported`]).
    #[arg(long, hide = true, value_name = "PATH")]
    vpnkit_binary: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    lxc_user_nic_binary: Option<String>,
    #[arg(long, hide = true, value_name = "NAME")]
    lxc_user_nic_bridge: Option<String>,
    #[arg(long, hide = true, value_name = "PATH")]
    pasta_binary: Option<String>,
    #[arg(long, hide = true, value_name = "GROUP")]
    evacuate_cgroup2: Option<String>,

    /// The command and its arguments (an unknown flag before it is an error, not the command).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Net {
    Host,
    None,
    Slirp4netns,
    Builtin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tristate {
    Auto,
    True,
    False,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PortDriverKind {
    None,
    Builtin,
    /// Through the embedded stack (--net=builtin), keeping each client's address.
    Slirp,
    Slirp4netns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CopyUpMode {
    #[value(name = "tmpfs+symlink")]
    TmpfsSymlink,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Propagation {
    Rprivate,
    Rslave,
    Rshared,
    Private,
    Slave,
    Shared,
}

impl Flags {
    /// Parses a command line as RootlessKit's Go flags read it (`--pidns=false`, `-net=host`);
    /// exits with clap's message on an error.
    pub fn parse_go_args(args: Vec<OsString>) -> Flags {
        let cmd = <Flags as clap::CommandFactory>::command();
        Flags::parse_from(crate::goflags::single_dash_longs(&cmd, args))
    }

    /// Whether the child gets a network namespace of its own (not detached).
    pub fn own_netns(&self) -> bool {
        self.net != Net::Host && !self.detach_netns
    }

    /// The effective MTU.
    pub fn mtu(&self) -> u32 {
        match (self.mtu, self.net) {
            (0, Net::Slirp4netns | Net::Builtin) => 65520,
            (0, _) => 1500,
            (m, _) => m,
        }
    }

    /// The first RootlessKit flag given that burrow-rootlesskit does not implement, with why.
    fn unsupported(&self) -> Option<String> {
        let nets = "burrow-rootlesskit's network drivers are host, none, slirp4netns and builtin";
        let given = [
            ("--vpnkit-binary", self.vpnkit_binary.is_some(), nets),
            (
                "--lxc-user-nic-binary",
                self.lxc_user_nic_binary.is_some(),
                nets,
            ),
            (
                "--lxc-user-nic-bridge",
                self.lxc_user_nic_bridge.is_some(),
                nets,
            ),
            ("--pasta-binary", self.pasta_binary.is_some(), nets),
            (
                "--evacuate-cgroup2",
                self.evacuate_cgroup2.is_some(),
                "cgroup v2 evacuation is not implemented; leave the flag out, or use RootlessKit",
            ),
        ];
        given.iter().find(|(_, set, _)| *set).map(|(flag, _, why)| {
            format!("{flag} is a RootlessKit flag burrow-rootlesskit does not support: {why}")
        })
    }

    /// Checks combinations that clap cannot; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(e) = self.unsupported() {
            return Err(e);
        }
        if self.net == Net::Host && self.port_driver != PortDriverKind::None {
            return Err("--port-driver needs a network namespace: use --net=slirp4netns (or none/builtin) with it, or drop --port-driver".into());
        }
        if !self.publish.is_empty() && self.port_driver == PortDriverKind::None {
            return Err("-p/--publish needs a port driver: add --port-driver=builtin".into());
        }
        if self.net == Net::Host && self.detach_netns {
            return Err(
                "--detach-netns needs a network namespace: use --net=slirp4netns or --net=none"
                    .into(),
            );
        }
        if self.port_driver == PortDriverKind::Slirp && self.net != Net::Builtin {
            return Err("--port-driver=slirp publishes through the embedded stack: use it with --net=builtin (or --port-driver=builtin)".into());
        }
        if self.dns_upstream.is_some() && self.net != Net::Builtin {
            return Err("--dns-upstream is for --net=builtin (slirp4netns reads the host's /etc/resolv.conf itself)".into());
        }
        if matches!(self.propagation, Propagation::Shared | Propagation::Rshared)
            && !self.copy_up.is_empty()
        {
            return Err("--propagation=shared and rshared cannot be used with --copy-up (the copied-up mounts would propagate to the host's namespace): use rslave".into());
        }
        if self.reaper == Tristate::True && !self.pidns {
            return Err("--reaper=true needs --pidns".into());
        }
        if !(1280..=65521).contains(&self.mtu()) && self.net != Net::Host {
            return Err(format!(
                "--mtu={}: choose a value between 1280 and 65521",
                self.mtu
            ));
        }
        if self.ifname.is_empty() || self.ifname.len() > 15 || self.ifname.contains('/') {
            return Err(format!(
                "--ifname={:?}: an interface name has 1 to 15 characters and no '/'",
                self.ifname
            ));
        }
        for d in &self.copy_up {
            if !d.is_absolute() || d == std::path::Path::new("/") {
                return Err(format!(
                    "--copy-up={}: give an absolute directory other than /",
                    d.display()
                ));
            }
        }
        Ok(())
    }
}

/// `--cidr` as RootlessKit takes it: a network address, not an address within one.
fn network_cidr(s: &str) -> Result<Cidr, String> {
    let c: Cidr = s
        .parse()
        .map_err(|e: crate::cidr::CidrError| e.to_string())?;
    let given = s.split_once('/').map_or(s, |(ip, _)| ip);
    if given.parse::<std::net::Ipv4Addr>().ok() != Some(c.network) {
        return Err(format!("cidr must be like {c}, not like {s}"));
    }
    Ok(c)
}

fn parse_dns_upstream(s: &str) -> Result<std::net::SocketAddrV4, String> {
    if let Ok(a) = s.parse::<std::net::SocketAddrV4>() {
        return Ok(a);
    }
    s.parse::<std::net::Ipv4Addr>()
        .map(|ip| std::net::SocketAddrV4::new(ip, 53))
        .map_err(|_| {
            format!(
                "{s:?} is not an IPv4 address or IPv4:PORT (e.g. 192.168.1.1 or 127.0.0.1:5353)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        let words = std::iter::once("burrow-rootlesskit")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        let cmd = <Flags as clap::CommandFactory>::command();
        let f = Flags::try_parse_from(crate::goflags::single_dash_longs(&cmd, words))
            .map_err(|e| e.to_string())?;
        f.validate()?;
        Ok(f)
    }

    #[test]
    fn an_unknown_flag_is_an_error_and_the_commands_flags_are_its_own() {
        let err = parse(&["--cidr=10.0.2.100/24", "true"]).unwrap_err();
        assert!(err.contains("cidr must be like 10.0.2.0/24"), "{err}");
        let err = parse(&["--bogus", "true"]).unwrap_err();
        assert!(err.contains("--bogus"), "{err}");
        let f = parse(&["--net=host", "sh", "-c", "echo --x"]).unwrap();
        assert_eq!(f.command, ["sh", "-c", "echo --x"]);
        let f = parse(&["--net=host", "--", "-weird-name", "--pidns"]).unwrap();
        assert_eq!(f.command, ["-weird-name", "--pidns"]);
    }

    #[test]
    fn nerdctl_style_command_line() {
        let f = parse(&[
            "--state-dir=/run/user/1000/containerd-rootless",
            "--net=slirp4netns",
            "--mtu=65520",
            "--slirp4netns-sandbox=auto",
            "--slirp4netns-seccomp=auto",
            "--disable-host-loopback",
            "--port-driver=builtin",
            "--copy-up=/etc",
            "--copy-up=/run",
            "--copy-up=/var/lib",
            "--propagation=rslave",
            "-p",
            "127.0.0.1:8080:80/tcp",
            "containerd",
            "--config",
            "x",
        ])
        .unwrap();
        assert_eq!(f.net, Net::Slirp4netns);
        assert_eq!(f.copy_up.len(), 3);
        assert_eq!(f.publish.len(), 1);
        assert_eq!(
            f.command,
            vec![OsString::from("containerd"), "--config".into(), "x".into()]
        );
        assert_eq!(f.mtu(), 65520);
        assert!(f.own_netns());
    }

    #[test]
    fn defaults_are_rootlesskits() {
        let f = parse(&["true"]).unwrap();
        assert_eq!(
            (f.net, f.port_driver, f.propagation),
            (Net::Host, PortDriverKind::None, Propagation::Rprivate)
        );
        assert_eq!(f.mtu(), 1500);
        assert_eq!(f.cidr.to_string(), "10.0.2.0/24");
    }

    #[test]
    fn refuses_bad_combinations() {
        assert!(parse(&["-p", "8080:80/tcp", "--net=slirp4netns", "true"])
            .unwrap_err()
            .contains("--port-driver=builtin"));
        assert!(parse(&["--port-driver=builtin", "true"]).is_err());
        assert!(parse(&["--detach-netns", "true"]).is_err());
        assert!(parse(&["--reaper=true", "true"]).is_err());
        assert!(parse(&["--net=none", "--mtu=100", "true"]).is_err());
        assert!(parse(&["--copy-up=etc", "true"]).is_err());
        assert!(parse(&["--net=bogus", "true"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn go_boolean_and_single_dash_forms() {
        let f = parse(&["--pidns=false", "--reaper=auto", "true"]).unwrap();
        assert!(!f.pidns);
        let f = parse(&["--pidns=true", "--reaper=auto", "--cgroupns", "true"]).unwrap();
        assert!(f.pidns && f.cgroupns);
        let f = parse(&[
            "-net=slirp4netns",
            "-port-driver",
            "builtin",
            "-detach-netns=1",
            "sh",
        ])
        .unwrap();
        assert_eq!(
            (f.net, f.port_driver, f.detach_netns),
            (Net::Slirp4netns, PortDriverKind::Builtin, true)
        );
        // A bare boolean never takes the next word: `true` is the command.
        let f = parse(&["--pidns", "true"]).unwrap();
        assert_eq!(f.command, vec![OsString::from("true")]);
        assert!(parse(&["--pidns=maybe", "true"]).is_err());
    }

    #[test]
    fn rootlesskit_flags_without_an_implementation_are_refused_by_name() {
        for flag in [
            "--vpnkit-binary=vpnkit",
            "--evacuate-cgroup2=evac",
            "--pasta-binary=p",
        ] {
            let err = parse(&[flag, "true"]).unwrap_err();
            let name = flag.split('=').next().unwrap();
            assert!(err.starts_with(name), "{err}");
        }
        assert!(parse(&["--net=vpnkit", "true"]).is_err());
    }
}
