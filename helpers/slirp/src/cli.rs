//! burrow-slirp's command line: slirp4netns's flags, for what burrow's stack implements.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// User-mode networking for an unprivileged network namespace, with slirp4netns's command line:
/// a tap device in the namespace served by burrow's embedded userspace stack.
#[derive(Debug, Parser)]
#[command(
    name = "burrow-slirp",
    version,
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

    /// MTU of the tap device (max 65520).
    #[arg(short = 'm', long, default_value_t = 1500)]
    pub mtu: usize,

    /// Also serve IPv6: the namespace is fd00::100/64, the gateway (the host's ::1) fd00::2, DNS
    /// fd00::3.
    #[arg(short = '6', long)]
    pub enable_ipv6: bool,

    /// Serve slirp4netns's JSON API (add_hostfwd, list_hostfwd, remove_hostfwd) on this socket.
    #[arg(short = 'a', long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,

    /// The namespace's network: it is .100, the gateway (the host) .2, DNS .3.
    #[arg(long, default_value = "10.0.2.0/24")]
    pub cidr: String,

    /// Refuse connections to the host's 127.0.0.1 through the gateway address.
    #[arg(long)]
    pub disable_host_loopback: bool,

    /// Do not answer DNS queries at .3.
    #[arg(long)]
    pub disable_dns: bool,

    /// How TARGET names the namespace: a process id, or a path to a network namespace file.
    #[arg(long, value_enum, default_value_t = NetnsType::Pid)]
    pub netns_type: NetnsType,

    /// The user namespace to join with the network namespace (default: the target process's).
    #[arg(long, value_name = "PATH")]
    pub userns_path: Option<PathBuf>,

    /// Confine burrow-slirp once set up: a new mount namespace on an empty root, no capabilities.
    #[arg(long)]
    pub enable_sandbox: bool,

    /// Confine burrow-slirp's system calls to those it needs (a seccomp filter), with no new
    /// privileges.
    #[arg(long)]
    pub enable_seccomp: bool,

    /// Print the version.
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    pub version: Option<bool>,

    /// The namespace: a PID (--netns-type=pid) or a path (--netns-type=path).
    #[arg(value_name = "PID|PATH")]
    pub target: String,

    /// The tap device to create in it.
    #[arg(value_name = "TAPNAME", default_value = "tap0")]
    pub tapname: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetnsType {
    Pid,
    Path,
}

impl Args {
    /// The namespace files to join: (network namespace, user namespace if any).
    pub fn namespaces(&self) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
        match self.netns_type {
            NetnsType::Pid => {
                let pid: u32 = self.target.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "{:?} is not a process id: pass a PID, or --netns-type=path with a namespace file",
                        self.target
                    )
                })?;
                let userns = self
                    .userns_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/ns/user")));
                Ok((PathBuf::from(format!("/proc/{pid}/ns/net")), Some(userns)))
            }
            NetnsType::Path => Ok((PathBuf::from(&self.target), self.userns_path.clone())),
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
}
