//! One container's trapped calls: the loop that receives them and dispatches each to its
//! handler (connect, bind, getsockname/getpeername), answering the kernel.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::container::Container;
use crate::notify::{self, Reply};
use crate::{bind, connect, names};

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
            libc::SYS_connect => connect::try_connect(c, &n),
            libc::SYS_bind => bind::try_bind(c, &n),
            libc::SYS_getsockname => names::try_name(c, &n, false),
            libc::SYS_getpeername => names::try_name(c, &n, true),
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
