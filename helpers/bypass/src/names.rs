//! getsockname/getpeername on bypassed sockets: the container is told its own view (its address
//! and container port, the gateway for the host's loopback), not the host's.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};

use crate::caller::Caller;
use crate::container::Container;
use crate::notify::{self, Notif, Reply};
use crate::policy::encode_sockaddr;
use crate::sock::to_std;

/// Handles a getsockname (`peer` false) or getpeername; None when the call is gone.
pub fn try_name(c: &Container, n: &Notif, peer: bool) -> std::io::Result<Option<Reply>> {
    let Some(host_netns) = c.host_netns else {
        return Ok(Some(Reply::Continue));
    };
    // No host socket in this container yet: nothing to translate, no fd to look at.
    if !c.any_bypassed.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(Some(Reply::Continue));
    }
    let lfd = c.listener.as_fd();
    let caller = Caller::open(n)?;
    // A bad fd or a non-socket: the kernel gives the error.
    let sock = caller.fd(n.args[0] as RawFd)?;
    if notify::netns_cookie(sock.as_fd())? != host_netns {
        // The container's own socket: its names are already the container's.
        return Ok(Some(Reply::Continue));
    }
    let real = if peer {
        getpeername::<SockaddrStorage>(sock.as_raw_fd())
    } else {
        getsockname::<SockaddrStorage>(sock.as_raw_fd())
    };
    let real = match real {
        Ok(r) => r,
        Err(Errno::ENOTCONN) => return Ok(Some(Reply::Errno(libc::ENOTCONN))),
        Err(_) => return Ok(Some(Reply::Continue)),
    };
    let Some(real) = to_std(&real) else {
        return Ok(Some(Reply::Continue));
    };
    let view = if peer {
        c.policy.peer_view(real)
    } else {
        let v4 = match real.ip() {
            std::net::IpAddr::V4(_) => true,
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
        };
        let mine = c.addrs(caller.tid).primary(v4);
        c.policy.local_view(real, mine)
    };
    let bytes = encode_sockaddr(view);
    let len_raw = caller.read(n.args[2], 4)?;
    let len = i32::from_ne_bytes([len_raw[0], len_raw[1], len_raw[2], len_raw[3]]);
    if len < 0 {
        return Ok(Some(Reply::Errno(libc::EINVAL)));
    }
    if !notify::id_valid(lfd, n.id) {
        return Ok(None);
    }
    // As the kernel does: as much as fits, and the full length in *addrlen.
    let fits = (len as usize).min(bytes.len());
    caller.write(n.args[1], &bytes[..fits])?;
    caller.write(n.args[2], &(bytes.len() as u32).to_ne_bytes())?;
    Ok(Some(Reply::Value(0)))
}
