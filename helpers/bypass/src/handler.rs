//! One container's trapped calls: connects to the outside get a host socket in place of theirs.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, getsockname, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag,
    SockType, SockaddrLike, SockaddrStorage,
};

use crate::notify::{self, Notif, Reply};
use crate::policy::{parse_sockaddr, Decision, Policy};

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

/// Serves one container's listener until every process of the container has exited.
pub fn serve(listener: OwnedFd, policy: Policy, stats: Arc<Stats>) {
    let listener = Arc::new(listener);
    loop {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
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
        let n = match notify::recv(listener.as_fd()) {
            Ok(n) => n,
            // The caller went away between poll and recv.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => {
                tracing::warn!("receiving a trapped call: {e}");
                return;
            }
        };
        stats.trapped.fetch_add(1, Ordering::Relaxed);
        let reply = if i64::from(n.nr) == libc::SYS_connect {
            on_connect(&listener, &n, &policy, &stats)
        } else {
            Some(Reply::Continue)
        };
        if let Some(r) = reply {
            // ENOENT: the call is gone; nothing to answer.
            let _ = notify::respond(listener.as_fd(), n.id, r);
        }
    }
}

/// Handles a connect; None when a waiting thread answers it later.
fn on_connect(
    listener: &Arc<OwnedFd>,
    n: &Notif,
    policy: &Policy,
    stats: &Arc<Stats>,
) -> Option<Reply> {
    match try_bypass(listener, n, policy, stats) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(pid = n.pid, "connect not bypassed: {e}");
            Some(Reply::Continue)
        }
    }
}

fn try_bypass(
    listener: &Arc<OwnedFd>,
    n: &Notif,
    policy: &Policy,
    stats: &Arc<Stats>,
) -> std::io::Result<Option<Reply>> {
    let lfd = listener.as_fd();
    let target_fd = n.args[0] as RawFd;
    let len = (n.args[2] as usize).min(128);
    let mut addr = vec![0u8; len];
    let mem = std::fs::File::open(format!("/proc/{}/mem", n.pid))?;
    mem.read_exact_at(&mut addr, n.args[1])?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    let Some(dest) = parse_sockaddr(&addr) else {
        return Ok(Some(Reply::Continue));
    };
    let Decision::Bypass(to) = policy.decide(dest) else {
        return Ok(Some(Reply::Continue));
    };
    let tgid = tgid_of(n.pid)?;
    let pidfd = notify::pidfd_open(tgid)?;
    let theirs = notify::pidfd_getfd(pidfd.as_fd(), target_fd)?;
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    // Only unbound TCP sockets of the right family: anything else goes the normal way.
    if getsockopt(&theirs, sockopt::SockType).map_err(io)? != SockType::Stream {
        return Ok(Some(Reply::Continue));
    }
    let local: SockaddrStorage = getsockname(theirs.as_raw_fd()).map_err(io)?;
    let family = match local.family() {
        Some(AddressFamily::Inet) if to.is_ipv4() => AddressFamily::Inet,
        Some(AddressFamily::Inet6) if to.is_ipv6() => AddressFamily::Inet6,
        _ => return Ok(Some(Reply::Continue)),
    };
    let bound = local
        .as_sockaddr_in()
        .map(|a| a.port() != 0)
        .or_else(|| local.as_sockaddr_in6().map(|a| a.port() != 0))
        .unwrap_or(false);
    if bound {
        return Ok(Some(Reply::Continue));
    }
    let host = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(io)?;
    copy_options(&theirs, &host);
    let nonblocking = OFlag::from_bits_truncate(fcntl(&theirs, FcntlArg::F_GETFL).map_err(io)?)
        .contains(OFlag::O_NONBLOCK);
    let cloexec = fd_cloexec(tgid, target_fd);
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
fn copy_options(from: &OwnedFd, to: &OwnedFd) {
    if let Ok(v) = getsockopt(from, sockopt::TcpNoDelay) {
        let _ = setsockopt(to, sockopt::TcpNoDelay, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::KeepAlive) {
        let _ = setsockopt(to, sockopt::KeepAlive, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::ReuseAddr) {
        let _ = setsockopt(to, sockopt::ReuseAddr, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::Linger) {
        let _ = setsockopt(to, sockopt::Linger, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::Ipv6V6Only) {
        let _ = setsockopt(to, sockopt::Ipv6V6Only, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::TcpKeepIdle) {
        let _ = setsockopt(to, sockopt::TcpKeepIdle, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::TcpKeepInterval) {
        let _ = setsockopt(to, sockopt::TcpKeepInterval, &v);
    }
    if let Ok(v) = getsockopt(from, sockopt::TcpKeepCount) {
        let _ = setsockopt(to, sockopt::TcpKeepCount, &v);
    }
}

/// The thread group (process) of a thread id.
fn tgid_of(tid: u32) -> std::io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no Tgid in /proc/PID/status"))
}

/// Whether the caller's fd has FD_CLOEXEC (`flags:` in fdinfo, octal).
fn fd_cloexec(pid: u32, fd: RawFd) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| i64::from_str_radix(v.trim(), 8).ok())
        })
        .is_some_and(|f| f & i64::from(libc::O_CLOEXEC) != 0)
}

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}
