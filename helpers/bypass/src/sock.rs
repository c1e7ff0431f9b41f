//! Socket helpers the call handlers share: inet addresses as std's types, the non-blocking
//! flag, and the options copied from a container's socket to the host one taking its place.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{getsockopt, setsockopt, sockopt, GetSockOpt, SetSockOpt, SockaddrStorage};

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

/// The options a program sets on a UDP socket before connecting that matter on the host one.
pub(crate) fn copy_udp_options(from: &OwnedFd, to: &OwnedFd) {
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

/// Sets one option of `to` as `from` has it (an option `from` cannot report is left alone).
fn copy_opt<O>(from: &OwnedFd, to: &OwnedFd, opt: O)
where
    O: GetSockOpt + SetSockOpt<Val = <O as GetSockOpt>::Val> + Copy,
{
    if let Ok(v) = getsockopt(from, opt) {
        let _ = setsockopt(to, opt, &v);
    }
}

/// An errno as an I/O error.
pub(crate) fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}
