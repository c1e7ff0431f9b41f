//! One container as the service sees it: its seccomp listener, the policy its calls are decided
//! with, its addresses and relays, and the counters every container's handler shares.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, OnceLock};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use crate::netinfo::Addrs;
use crate::notify;
use crate::policy::Policy;
use crate::relay::Relays;

/// Counters shared by every container's handler (reported in the service's log).
#[derive(Debug, Default)]
pub struct Stats {
    pub trapped: AtomicU64,
    pub bypassed: AtomicU64,
    /// Blocking connects waiting for completion on their own thread.
    pub waiting: AtomicUsize,
}

/// One container's listener and what its calls are decided with.
pub struct Container {
    pub listener: Arc<OwnedFd>,
    pub policy: Policy,
    pub stats: Arc<Stats>,
    /// The cookie of the service's own (the host's) network namespace: a socket with it in a
    /// container is a bypassed one. None on kernels without SO_NETNS_COOKIE (before 5.14).
    pub host_netns: Option<u64>,
    addrs: OnceLock<Addrs>,
    /// The bridge sides of its published ports bound on the host.
    pub relays: Relays,
    /// Set once a host socket may have been put in the container: until then none of its
    /// sockets is a bypassed one, so name calls and connects inside its networks need no look
    /// at the fd.
    pub any_bypassed: AtomicBool,
}

impl Container {
    pub fn new(listener: OwnedFd, policy: Policy, stats: Arc<Stats>) -> Container {
        Container {
            listener: Arc::new(listener),
            policy,
            stats,
            host_netns: host_netns_cookie(),
            addrs: OnceLock::new(),
            relays: Relays::default(),
            any_bypassed: AtomicBool::new(false),
        }
    }

    /// The container's own addresses, read once from the first caller's namespace.
    pub fn addrs(&self, pid: u32) -> &Addrs {
        self.addrs.get_or_init(|| Addrs::of(pid))
    }
}

/// The cookie of this process's network namespace, from a socket of its own (once).
fn host_netns_cookie() -> Option<u64> {
    static COOKIE: OnceLock<Option<u64>> = OnceLock::new();
    *COOKIE.get_or_init(|| {
        let s = socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ok()?;
        notify::netns_cookie(s.as_fd()).ok()
    })
}
