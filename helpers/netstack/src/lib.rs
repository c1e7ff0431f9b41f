//! burrow-netstack: a userspace network stack (smoltcp) serving a network namespace's tap device.
//!
//! The namespace sees a gateway at `.2` of [`StackConfig::cidr`] (which reaches the host's
//! loopback unless [`StackConfig::disable_host_loopback`]) and a DNS server at `.3`; the stack
//! answers ARP and ICMP echo for both, and DHCP (leases from `.15`, as libslirp). Every TCP connection the namespace opens to the outside is
//! terminated in smoltcp and relayed to a host TCP socket opened by this process, with half-close
//! (FIN) and reset carried over. UDP flows and ICMP echo go through connected host datagram
//! sockets (ping sockets for ICMP), DNS to `.3` (UDP and TCP) to the host's resolver; with
//! [`StackConfig::disable_dns`] packets to `.3` are dropped. Connections to the gateway under
//! [`StackConfig::disable_host_loopback`] get an ICMP "network unreachable". With
//! [`StackConfig::ipv6`] the same holds for IPv6 on fd00::/64.
//!
//! Use from a launcher:
//! ```no_run
//! # fn demo(netns: std::os::fd::BorrowedFd<'_>) -> Result<(), burrow_netstack::NetstackError> {
//! let cfg = burrow_netstack::StackConfig::default();
//! // Opens /dev/net/tun with TUNSETIFF(IFF_TAP|IFF_NO_PI) on a dedicated thread that setns()
//! // into `netns` (the caller must hold CAP_NET_ADMIN in its user namespace), then sets the MTU.
//! // The interface still has to be given 10.0.2.100/24, brought up and routed via 10.0.2.2.
//! let tap = burrow_netstack::open_tap_in_netns(netns, "tap0", cfg.mtu)?;
//! let stack = burrow_netstack::spawn_stack(tap, cfg)?;
//! // ... later
//! stack.shutdown();
//! # Ok(()) }
//! ```

mod datagram;
mod device;
mod dhcp;
pub mod mmsg;
mod stack;
mod sys;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::os::fd::{BorrowedFd, OwnedFd};

pub use stack::{ForwardProto, StackHandle};

/// Errors of the stack and of tap setup.
#[derive(Debug, thiserror::Error)]
pub enum NetstackError {
    /// A configuration value is unusable.
    #[error("netstack configuration: {0}")]
    Config(String),
    /// Opening or configuring the tap device failed.
    #[error("tap device: {0}")]
    Tap(String),
    /// The stack's thread or its descriptors could not be set up.
    #[error("netstack: {0}")]
    Io(String),
}

/// What the stack serves. The namespace is expected at `.100` (slirp4netns's convention); the
/// stack answers as `.2` (gateway) and `.3` (DNS).
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The namespace's IPv4 network and prefix length (default 10.0.2.0/24).
    pub cidr: (Ipv4Addr, u8),
    /// The tap's MTU (68..=65521, slirp4netns's maximum; default 65520).
    pub mtu: usize,
    /// When true, connections to the gateway are refused instead of reaching 127.0.0.1.
    pub disable_host_loopback: bool,
    /// Where DNS queries to `.3` go; None: the first IPv4 name server of the host's
    /// /etc/resolv.conf (read when the stack starts).
    pub dns_upstream: Option<SocketAddrV4>,
    /// When true, DNS queries to `.3` go unanswered (slirp4netns's --disable-dns).
    pub disable_dns: bool,
    /// Also serve IPv6 on fd00::/64 (gateway fd00::2 reaching the host's ::1, DNS fd00::3, the
    /// namespace at fd00::100), as slirp4netns does with --enable-ipv6.
    pub ipv6: bool,
    /// The host address outbound IPv4 sockets are bound to (slirp4netns's --outbound-addr);
    /// None: the kernel chooses.
    pub outbound_addr: Option<Ipv4Addr>,
    /// The host address outbound IPv6 sockets are bound to (--outbound-addr6).
    pub outbound_addr6: Option<Ipv6Addr>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            cidr: (Ipv4Addr::new(10, 0, 2, 0), 24),
            mtu: 65520,
            disable_host_loopback: false,
            dns_upstream: None,
            disable_dns: false,
            ipv6: false,
            outbound_addr: None,
            outbound_addr6: None,
        }
    }
}

impl StackConfig {
    fn network(&self) -> u32 {
        let mask = u32::MAX << (32 - u32::from(self.cidr.1));
        u32::from(self.cidr.0) & mask
    }

    /// The gateway address (`.2`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + 2)
    }

    /// The DNS address (`.3`).
    pub fn dns(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + 3)
    }

    /// The IPv6 gateway (fd00::2).
    pub fn gateway6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)
    }

    /// The IPv6 DNS address (fd00::3).
    pub fn dns6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3)
    }

    /// The namespace's IPv6 address (fd00::100).
    pub fn guest6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100)
    }

    /// The namespace's own address (`.100`).
    pub fn guest(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network() + 100)
    }

    fn validate(&self) -> Result<(), NetstackError> {
        if !(68..=65521).contains(&self.mtu) {
            return Err(NetstackError::Config(format!(
                "MTU {} is outside 68..=65521",
                self.mtu
            )));
        }
        if !(1..=25).contains(&self.cidr.1) {
            return Err(NetstackError::Config(format!(
                "prefix length /{} is outside 1..=25",
                self.cidr.1
            )));
        }
        Ok(())
    }
}

/// The first IPv4 name server of a resolv.conf's text, port 53.
pub fn resolver_from(conf: &str) -> Option<SocketAddrV4> {
    datagram::resolver_from(conf)
}

/// Opens tap device `name` (IFF_TAP|IFF_NO_PI) in the calling thread's network namespace and sets
/// its MTU (the caller holds CAP_NET_ADMIN there, as a launcher's child stage does).
pub fn open_tap(name: &str, mtu: usize) -> Result<OwnedFd, NetstackError> {
    sys::open_tap_here(name, mtu)
}

/// Opens tap device `name` inside the network namespace `netns` (a /proc/PID/ns/net or bind-mounted
/// nsfs descriptor), sets its MTU, and returns the tap's descriptor. The setns happens on a
/// short-lived dedicated thread, never on the caller's.
pub fn open_tap_in_netns(
    netns: BorrowedFd<'_>,
    name: &str,
    mtu: usize,
) -> Result<OwnedFd, NetstackError> {
    sys::open_tap_in_netns(netns, name, mtu)
}

/// Starts the stack on its own thread, serving frames read from and written to `tap` (a tap
/// device, or any descriptor that carries one Ethernet frame per read/write, such as a
/// SOCK_SEQPACKET socket). The descriptor is switched to non-blocking mode.
pub fn spawn_stack(tap: OwnedFd, cfg: StackConfig) -> Result<StackHandle, NetstackError> {
    cfg.validate()?;
    stack::spawn(tap, cfg)
}
