//! Published ports bound on the host: a container's bind of a `-p` container port gets a host
//! socket bound to the host port, taken over from the launcher's port driver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;

use burrow_rootlesskit::api::client::Client;
use burrow_rootlesskit::port::{PortSpec, Proto};
use nix::sys::socket::{
    bind, getsockname, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
    SockaddrLike, SockaddrStorage,
};

use crate::caller::Caller;
use crate::container::Container;
use crate::notify::{self, Notif, Reply};
use crate::policy::{covers, parse_sockaddr, Family, Published};
use crate::sock::{copy_options, io, is_nonblocking, port_of};

/// Handles a bind; None when the call is gone.
pub fn try_bind(c: &Container, n: &Notif) -> std::io::Result<Option<Reply>> {
    let lfd = c.listener.as_fd();
    let target_fd = n.args[0] as RawFd;
    let caller = Caller::open(n)?;
    let raw = caller.read(n.args[1], (n.args[2] as usize).min(128))?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    let Some(addr) = parse_sockaddr(&raw) else {
        return Ok(Some(Reply::Continue));
    };
    if !c.policy.publishes(addr.port()) {
        return Ok(Some(Reply::Continue));
    }
    let theirs = caller.fd(target_fd)?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    if getsockopt(&theirs, sockopt::SockType).map_err(io)? != SockType::Stream {
        return Ok(Some(Reply::Continue));
    }
    let local: SockaddrStorage = getsockname(theirs.as_raw_fd()).map_err(io)?;
    let (af, family) = match local.family() {
        Some(AddressFamily::Inet) => (AddressFamily::Inet, Family::V4),
        Some(AddressFamily::Inet6) => (
            AddressFamily::Inet6,
            Family::V6 {
                v6only: getsockopt(&theirs, sockopt::Ipv6V6Only).map_err(io)?,
            },
        ),
        _ => return Ok(Some(Reply::Continue)),
    };
    // Already bound: the kernel's EINVAL is the answer.
    if port_of(&local).is_some_and(|p| p != 0) {
        return Ok(Some(Reply::Continue));
    }
    let Some((published, host_addr)) = c
        .policy
        .bind_target(addr, family, |ip| c.addrs(caller.tid).contains(ip))
    else {
        return Ok(Some(Reply::Continue));
    };
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if is_nonblocking(&theirs)? {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    let host = socket(af, SockType::Stream, flags, None).map_err(io)?;
    copy_options(&theirs, &host);
    let v6only = matches!(family, Family::V6 { v6only: true });
    let cloexec = caller.cloexec(target_fd);
    // The container's own socket keeps the container's address for its networks' sake: bound
    // here (the kernel's answer if that fails), it becomes the bridge-side relay below.
    let bridge_side = !c.relays.has(addr);
    if bridge_side {
        if let Err(e) = bind(theirs.as_raw_fd(), &SockaddrStorage::from(addr)) {
            return Ok(Some(Reply::Errno(e as i32)));
        }
    }
    // From here on a failure leaves the container's socket bound as it asked: the normal path,
    // served by the launcher's port driver.
    let fallback = if bridge_side {
        Reply::Value(0)
    } else {
        Reply::Continue
    };
    let taken = c
        .policy
        .launcher_api()
        .map(|api| take_over(api, &published, host_addr, v6only))
        .unwrap_or_default();
    if let Err(e) = bind_host(&host, host_addr, !taken.is_empty()) {
        drop(host);
        give_back(c.policy.launcher_api(), &taken);
        tracing::info!(%addr, %host_addr, taken = taken.len(), "published port not bound on the host ({e}): it stays with the launcher");
        return Ok(Some(fallback));
    }
    c.any_bypassed.store(true, Ordering::Relaxed);
    let installed = notify::id_valid(lfd, n.id)
        && notify::add_fd_at(lfd, n.id, host.as_fd(), target_fd, cloexec).is_ok();
    drop(host);
    if !installed {
        give_back(c.policy.launcher_api(), &taken);
        return Ok(Some(fallback));
    }
    if bridge_side {
        if let Err(e) = c
            .relays
            .start(addr, theirs, relay_target(host_addr, v6only))
        {
            tracing::warn!(%addr, "the container's own address will not answer on this port: {e}");
        }
    }
    c.stats.bypassed.fetch_add(1, Ordering::Relaxed);
    tracing::info!(pid = n.pid, %addr, %host_addr, taken = taken.len(), "published port bound on the host");
    Ok(Some(Reply::Value(0)))
}

/// Binds the host socket; right after the launcher's listener was removed, an address in use is
/// retried a few times (the port's last connections may still be closing).
fn bind_host(host: &OwnedFd, addr: SocketAddr, just_freed: bool) -> nix::Result<()> {
    let tries = if just_freed { 5 } else { 1 };
    let mut last = Ok(());
    for i in 0..tries {
        last = bind(host.as_raw_fd(), &SockaddrStorage::from(addr));
        match last {
            Err(nix::errno::Errno::EADDRINUSE) if i + 1 < tries => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => break,
        }
    }
    last
}

/// Where the bridge side reaches the host socket: its address, loopback for a wildcard.
fn relay_target(host: SocketAddr, v6only: bool) -> SocketAddr {
    let ip: IpAddr = match host.ip() {
        IpAddr::V6(v6) if v6.is_unspecified() && v6only => Ipv6Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    };
    SocketAddr::new(ip, host.port())
}

/// Removes the launcher's listeners the host socket replaces; returns their specs to give back
/// if the host bind fails.
fn take_over(api: &Path, p: &Published, host: SocketAddr, v6only: bool) -> Vec<PortSpec> {
    let client = Client::new(api);
    let ports = match client.list_ports() {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("listing the launcher's ports: {e}");
            return Vec::new();
        }
    };
    let mut taken = Vec::new();
    for st in ports {
        let s = &st.spec;
        let tcp = matches!(s.proto, Proto::Tcp | Proto::Tcp4 | Proto::Tcp6);
        if tcp
            && s.parent_port == p.host_port
            && s.child_port == p.container_port
            && covers(host, v6only, s.parent_ip)
        {
            match client.remove_port(st.id) {
                Ok(()) => taken.push(st.spec),
                Err(e) => tracing::warn!(id = st.id, "taking a port from the launcher: {e}"),
            }
        }
    }
    taken
}

/// Publishes again, through the launcher, the ports [`take_over`] removed.
fn give_back(api: Option<&Path>, taken: &[PortSpec]) {
    let Some(api) = api else { return };
    let client = Client::new(api);
    for spec in taken {
        if let Err(e) = client.add_port(spec) {
            tracing::warn!("giving a port back to the launcher: {e}");
        }
    }
}
