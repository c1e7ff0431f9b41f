//! One container's trapped calls: the dispatch, and connects to the outside getting a host
//! socket in place of theirs.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockname, getsockopt, setsockopt, socket, sockopt, AddressFamily, GetSockOpt,
    SetSockOpt, SockFlag, SockType, SockaddrLike, SockaddrStorage,
};

use crate::caller::Caller;
use crate::netinfo::Addrs;
use crate::notify::{self, Notif, Reply};
use crate::policy::{parse_sockaddr, Decision, Policy};
use crate::relay::Relays;

/// Counters shared by every container's handler (reported in the service's log).
#[derive(Debug, Default)]
pub struct Stats {
    pub trapped: AtomicU64,
    pub bypassed: AtomicU64,
    /// Blocking connects waiting for completion on their own thread.
    pub waiting: AtomicUsize,
}

/// At most this many blocking connects wait at once; more go the normal way.
const MAX_WAITING: usize = 256;
/// How long a blocking connect may take before it fails with ETIMEDOUT (the kernel's is ~2 min).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(130);

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

/// Serves one container's listener until every process of the container has exited.
pub fn serve(c: Container) {
    serve_calls(&c);
    c.relays.stop();
}

fn serve_calls(c: &Container) {
    loop {
        let mut fds = [PollFd::new(c.listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!("poll on a seccomp listener: {e}");
                return;
            }
        }
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if !revents.contains(PollFlags::POLLIN) {
            // POLLHUP: no process uses the filter any more.
            return;
        }
        let n = match notify::recv(c.listener.as_fd()) {
            Ok(n) => n,
            // The caller went away between poll and recv.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                tracing::warn!("receiving a trapped call: {e}");
                return;
            }
        };
        c.stats.trapped.fetch_add(1, Ordering::Relaxed);
        let handled = match i64::from(n.nr) {
            libc::SYS_connect => try_bypass(c, &n),
            libc::SYS_bind => crate::bind::try_bind(c, &n),
            libc::SYS_getsockname => crate::names::try_name(c, &n, false),
            libc::SYS_getpeername => crate::names::try_name(c, &n, true),
            _ => Ok(Some(Reply::Continue)),
        };
        // Anything that went wrong leaves the call to the kernel, unchanged.
        let reply = handled.unwrap_or_else(|e| {
            tracing::debug!(pid = n.pid, nr = n.nr, "call left unchanged: {e}");
            Some(Reply::Continue)
        });
        if let Some(r) = reply {
            // ENOENT: the call is gone; nothing to answer.
            let _ = notify::respond(c.listener.as_fd(), n.id, r);
        }
    }
}

/// Handles a connect; None when the call is gone or a waiting thread answers it later.
fn try_bypass(c: &Container, n: &Notif) -> std::io::Result<Option<Reply>> {
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

/// The options a program sets on a UDP socket before connecting that matter on the host one.
fn copy_udp_options(from: &OwnedFd, to: &OwnedFd) {
    copy_opt(from, to, sockopt::Broadcast);
    copy_opt(from, to, sockopt::ReuseAddr);
    copy_opt(from, to, sockopt::Ipv6V6Only);
    // Buffer sizes as set (the kernel reports twice the value asked for; asking for half of it
    // gives the same size, within the user's limits).
    if let Ok(v) = getsockopt(from, sockopt::RcvBuf) {
        let _ = setsockopt(to, sockopt::RcvBuf, &(v / 2));
    }
    if let Ok(v) = getsockopt(from, sockopt::SndBuf) {
        let _ = setsockopt(to, sockopt::SndBuf, &(v / 2));
    }
}

/// The port of an inet socket address; None for other families.
pub(crate) fn port_of(a: &SockaddrStorage) -> Option<u16> {
    a.as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| a.as_sockaddr_in6().map(|a| a.port()))
}

/// A socket address as std's type; None for other families.
pub(crate) fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}

pub(crate) fn is_nonblocking(fd: &OwnedFd) -> std::io::Result<bool> {
    Ok(
        OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io)?)
            .contains(OFlag::O_NONBLOCK),
    )
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

/// The socket options a program sets before connect that matter on the host socket.
pub(crate) fn copy_options(from: &OwnedFd, to: &OwnedFd) {
    copy_opt(from, to, sockopt::TcpNoDelay);
    copy_opt(from, to, sockopt::KeepAlive);
    copy_opt(from, to, sockopt::ReuseAddr);
    copy_opt(from, to, sockopt::ReusePort);
    copy_opt(from, to, sockopt::Linger);
    copy_opt(from, to, sockopt::Ipv6V6Only);
    copy_opt(from, to, sockopt::TcpKeepIdle);
    copy_opt(from, to, sockopt::TcpKeepInterval);
    copy_opt(from, to, sockopt::TcpKeepCount);
}

/// Sets one option of `to` as `from` has it (an option `from` cannot report is left alone).
fn copy_opt<O>(from: &OwnedFd, to: &OwnedFd, opt: O)
where
    O: GetSockOpt + SetSockOpt<Val = <O as GetSockOpt>::Val> + Copy,
{
    if let Ok(v) = getsockopt(from, opt) {
        let _ = setsockopt(to, opt, &v);
    }
}

pub(crate) fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}
