//! The kernel's seccomp user-notification interface and pidfds: the only unsafe code of the service.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// One trapped system call, as the kernel reports it.
#[derive(Debug, Clone, Copy)]
pub struct Notif {
    /// Cookie naming this call in later ioctls.
    pub id: u64,
    /// The calling thread (in the service's pid namespace).
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
}

/// Waits for the next trapped call on a listener fd.
pub fn recv(listener: BorrowedFd<'_>) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain data; all-zero is the state the kernel requires on input.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is a seccomp listener (or the call fails with an errno); `n` is a valid,
    // writable seccomp_notif of the size the ioctl number encodes.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut n as *mut libc::seccomp_notif,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        args: n.data.args,
    })
}

/// How a trapped call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Let the kernel run the call as if it had not been trapped.
    Continue,
    /// Return this value from the call.
    Value(i64),
    /// Fail the call with this errno.
    Errno(i32),
}

/// Answers a trapped call. ENOENT means the call is gone (the caller died or was interrupted).
pub fn respond(listener: BorrowedFd<'_>, id: u64, reply: Reply) -> io::Result<()> {
    let (val, error, flags) = match reply {
        Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        Reply::Value(v) => (v, 0, 0),
        Reply::Errno(e) => (0, -e, 0),
    };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    // SAFETY: `resp` is a valid seccomp_notif_resp the ioctl only reads.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// True while the trapped call is still waiting for its answer (the caller is alive and the
/// pid still names it): check after reading the caller's memory and before acting on it.
pub fn id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the ioctl reads one u64 from the pointer.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    };
    r == 0
}

/// Puts `src` in the caller's fd table at `target` (replacing what was there), atomically with
/// respect to the trapped call; `cloexec` sets FD_CLOEXEC on it.
pub fn add_fd_at(
    listener: BorrowedFd<'_>,
    id: u64,
    src: BorrowedFd<'_>,
    target: RawFd,
    cloexec: bool,
) -> io::Result<()> {
    let mut a = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
        srcfd: src.as_raw_fd() as u32,
        newfd: target as u32,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: `a` is a valid seccomp_notif_addfd the ioctl only reads; both fds are open.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            &mut a as *mut libc::seccomp_notif_addfd,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for a process.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A duplicate of another process's fd (same open file description), through its pidfd.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes a pidfd, a target fd number and flags (0) and returns a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `SO_NETNS_COOKIE` (Linux 5.14): a socket's network namespace as a number unique for the
/// boot; not in every libc crate yet.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the network namespace a socket lives in.
pub fn netns_cookie(sock: BorrowedFd<'_>) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` (8) bytes to `v` and the length to `len`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            &mut v as *mut u64 as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// A socket's protocol (`SO_PROTOCOL`): IPPROTO_UDP for a UDP socket, IPPROTO_ICMP for a ping one.
pub fn protocol(sock: BorrowedFd<'_>) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` (4) bytes to `v` and the length to `len`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// Takes ownership of an fd the kernel passed to this process (SCM_RIGHTS).
pub fn own_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller got `fd` from the kernel just now (recvmsg's SCM_RIGHTS); nothing
    // else in the process knows it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
