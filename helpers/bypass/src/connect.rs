//! Connects to the outside: the container's socket is replaced by a host socket connected to
//! the destination (TCP, blocking or not, and connected UDP).

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockname, getsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
    SockaddrLike, SockaddrStorage,
};

use crate::caller::Caller;
use crate::container::{Container, Stats};
use crate::notify::{self, Notif, Reply};
use crate::policy::{parse_sockaddr, Decision};
use crate::sock::{copy_options, copy_udp_options, io, is_nonblocking, port_of, to_std};

/// At most this many blocking connects wait at once; more go the normal way.
const MAX_WAITING: usize = 256;
/// How long a blocking connect may take before it fails with ETIMEDOUT (the kernel's is ~2 min).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(130);

/// Handles a connect; None when the call is gone or a waiting thread answers it later.
pub fn try_connect(c: &Container, n: &Notif) -> std::io::Result<Option<Reply>> {
    let (listener, policy, stats) = (&c.listener, &c.policy, &c.stats);
    let lfd = listener.as_fd();
    let target_fd = n.args[0] as RawFd;
    let caller = Caller::open(n)?;
    let addr = caller.read(n.args[1], (n.args[2] as usize).min(128))?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    let Some(dest) = parse_sockaddr(&addr) else {
        return Ok(Some(Reply::Continue));
    };
    let Decision::Bypass(to) = policy.decide(dest) else {
        return Ok(Some(keep_on_own_network(c, &caller, target_fd)));
    };
    let theirs = caller.fd(target_fd)?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    // Only unbound TCP and UDP sockets of the right family: anything else goes the normal way.
    let ty = getsockopt(&theirs, sockopt::SockType).map_err(io)?;
    let udp = match ty {
        SockType::Stream => false,
        SockType::Datagram if notify::protocol(theirs.as_fd())? == libc::IPPROTO_UDP => true,
        _ => return Ok(Some(Reply::Continue)),
    };
    let local: SockaddrStorage = getsockname(theirs.as_raw_fd()).map_err(io)?;
    let family = match local.family() {
        Some(AddressFamily::Inet) if to.is_ipv4() => AddressFamily::Inet,
        Some(AddressFamily::Inet6) if to.is_ipv6() => AddressFamily::Inet6,
        _ => return Ok(Some(Reply::Continue)),
    };
    // A TCP socket bound to a port wants that source port; a UDP one is often bound to the
    // wildcard and port 0 (an ephemeral port) before connect, and a host socket does as well.
    let bound_port = port_of(&local).is_some_and(|p| p != 0);
    let bound_ip = to_std(&local).is_some_and(|a| !a.ip().is_unspecified());
    if (!udp && bound_port) || bound_ip {
        return Ok(Some(Reply::Continue));
    }
    // From here on a host socket may end up in the container (set early: a false alarm only
    // costs the checks the flag saves).
    c.any_bypassed.store(true, Ordering::Relaxed);
    if udp {
        return bypass_udp(c, n, &caller, theirs, family, dest, to);
    }
    let host = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io)?;
    copy_options(&theirs, &host);
    let nonblocking = is_nonblocking(&theirs)?;
    let cloexec = caller.cloexec(target_fd);
    drop(theirs);
    let addr = SockaddrStorage::from(to);
    let started = match connect(host.as_raw_fd(), &addr) {
        Ok(()) => Ok(true),
        Err(Errno::EINPROGRESS) => Ok(false),
        Err(e) => Err(e),
    };
    let connected = match started {
        Ok(c) => c,
        // Refused at once (nothing listens, unreachable): the container's socket stays its own.
        Err(e) => return Ok(Some(Reply::Errno(e as i32))),
    };
    if nonblocking {
        notify::add_fd_at(lfd, n.id, host.as_fd(), target_fd, cloexec)?;
        stats.bypassed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid = n.pid, %dest, %to, "bypassed (non-blocking)");
        return Ok(Some(if connected {
            Reply::Value(0)
        } else {
            Reply::Errno(libc::EINPROGRESS)
        }));
    }
    if stats.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
        stats.waiting.fetch_sub(1, Ordering::AcqRel);
        return Ok(Some(Reply::Continue));
    }
    let (listener, stats, n) = (Arc::clone(listener), Arc::clone(stats), *n);
    std::thread::Builder::new()
        .name("bypass-connect".into())
        .spawn(move || {
            finish_blocking(
                &listener, &n, host, target_fd, cloexec, connected, dest, to, &stats,
            );
            stats.waiting.fetch_sub(1, Ordering::AcqRel);
        })?;
    Ok(None)
}

/// A connect that stays on the container's own networks: unchanged, unless the socket is
/// already a host one (a bypassed UDP socket connected again): from the host, that destination
/// is not the container's network, so the call fails as unreachable instead of sending the
/// container's datagrams out of the host.
fn keep_on_own_network(c: &Container, caller: &Caller, fd: RawFd) -> Reply {
    let Some(host) = c.host_netns else {
        return Reply::Continue;
    };
    if !c.any_bypassed.load(Ordering::Relaxed) {
        return Reply::Continue;
    }
    match caller.fd(fd) {
        Ok(sock) if notify::netns_cookie(sock.as_fd()).ok() == Some(host) => {
            Reply::Errno(libc::ENETUNREACH)
        }
        _ => Reply::Continue,
    }
}

/// A connected UDP socket: a host UDP socket connected to the destination takes its place, so
/// its send and recv run natively (a UDP connect completes at once, blocking or not).
fn bypass_udp(
    c: &Container,
    n: &Notif,
    caller: &Caller,
    theirs: OwnedFd,
    family: AddressFamily,
    dest: SocketAddr,
    to: SocketAddr,
) -> std::io::Result<Option<Reply>> {
    let target_fd = n.args[0] as RawFd;
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if is_nonblocking(&theirs)? {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    let host = socket(family, SockType::Datagram, flags, None).map_err(io)?;
    copy_udp_options(&theirs, &host);
    let cloexec = caller.cloexec(target_fd);
    drop(theirs);
    if let Err(e) = connect(host.as_raw_fd(), &SockaddrStorage::from(to)) {
        // Unreachable from the host: the container's own path may still reach it.
        tracing::debug!(%dest, "udp connect not bypassed: {e}");
        return Ok(Some(Reply::Continue));
    }
    let lfd = c.listener.as_fd();
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    notify::add_fd_at(lfd, n.id, host.as_fd(), target_fd, cloexec)?;
    c.stats.bypassed.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(pid = n.pid, %dest, %to, "bypassed (udp)");
    Ok(Some(Reply::Value(0)))
}

/// Waits for a blocking caller's connect to complete, then hands it the connected host socket.
#[allow(clippy::too_many_arguments)]
fn finish_blocking(
    listener: &OwnedFd,
    n: &Notif,
    host: OwnedFd,
    target_fd: RawFd,
    cloexec: bool,
    connected: bool,
    dest: SocketAddr,
    to: SocketAddr,
    stats: &Stats,
) {
    let lfd = listener.as_fd();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut done = connected;
    while !done {
        if !notify::id_valid(lfd, n.id) {
            // The caller was interrupted or died: it will retry or is gone.
            return;
        }
        if Instant::now() > deadline {
            let _ = notify::respond(lfd, n.id, Reply::Errno(libc::ETIMEDOUT));
            return;
        }
        let mut fds = [PollFd::new(host.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(500u16)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => done = true,
            Err(e) => {
                let _ = notify::respond(lfd, n.id, Reply::Errno(e as i32));
                return;
            }
        }
    }
    match getsockopt(&host, sockopt::SocketError) {
        Ok(0) => {}
        Ok(err) => {
            let _ = notify::respond(lfd, n.id, Reply::Errno(err));
            return;
        }
        Err(e) => {
            let _ = notify::respond(lfd, n.id, Reply::Errno(e as i32));
            return;
        }
    }
    // The caller's socket was blocking: so is the one it gets.
    if let Ok(fl) = fcntl(&host, FcntlArg::F_GETFL) {
        let fl = OFlag::from_bits_truncate(fl) - OFlag::O_NONBLOCK;
        let _ = fcntl(&host, FcntlArg::F_SETFL(fl));
    }
    match notify::add_fd_at(lfd, n.id, host.as_fd(), target_fd, cloexec) {
        Ok(()) => {
            stats.bypassed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(pid = n.pid, %dest, %to, "bypassed (blocking)");
            let _ = notify::respond(lfd, n.id, Reply::Value(0));
        }
        Err(e) => {
            tracing::debug!(pid = n.pid, "could not install the host socket: {e}");
            let _ = notify::respond(lfd, n.id, Reply::Errno(libc::ECONNABORTED));
        }
    }
}
