//! The bridge side of a published port bound on the host: the container's original socket keeps
//! listening on the container's own address, and what it accepts (other containers' connections
//! over their network) is relayed to the host port where the container's process now listens.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Relay threads are small: they only copy.
const STACK: usize = 64 * 1024;
/// How long a relayed connection waits for the host port to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One container's bridge-side listeners, by the container address they listen on.
#[derive(Debug, Default)]
pub struct Relays {
    listeners: Mutex<Vec<(SocketAddr, Arc<TcpListener>)>>,
}

impl Relays {
    /// Whether a listener for this container address already exists (a second bind of the port,
    /// after the process closed its first listener or with SO_REUSEPORT).
    pub fn has(&self, addr: SocketAddr) -> bool {
        self.listeners
            .lock()
            .map(|l| l.iter().any(|(a, _)| *a == addr))
            .unwrap_or(false)
    }

    /// Starts relaying from `sock` (the container's socket, already bound to `addr` in the
    /// container's namespace) to `to` on the host.
    pub fn start(&self, addr: SocketAddr, sock: OwnedFd, to: SocketAddr) -> io::Result<()> {
        nix::sys::socket::listen(&sock, nix::sys::socket::Backlog::new(128).expect("valid"))
            .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        let l = Arc::new(TcpListener::from(sock));
        l.set_nonblocking(false)?;
        let accepting = Arc::clone(&l);
        std::thread::Builder::new()
            .name("bypass-relay".into())
            .stack_size(STACK)
            .spawn(move || accept_loop(&accepting, to))?;
        if let Ok(mut all) = self.listeners.lock() {
            all.push((addr, l));
        }
        Ok(())
    }

    /// Stops every listener (the container is gone): their accept loops end.
    pub fn stop(&self) {
        if let Ok(mut all) = self.listeners.lock() {
            for (_, l) in all.drain(..) {
                // Shutting a listening socket down wakes its blocked accept.
                let _ = nix::sys::socket::shutdown(l.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            }
        }
    }
}

fn accept_loop(l: &TcpListener, to: SocketAddr) {
    loop {
        match l.accept() {
            Ok((conn, _)) => {
                let spawned = std::thread::Builder::new()
                    .name("bypass-relay".into())
                    .stack_size(STACK)
                    .spawn(move || relay(conn, to));
                if let Err(e) = spawned {
                    tracing::warn!("cannot start a relay thread: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
            // EMFILE and the like: wait a little rather than spin.
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            // Shut down (the container is gone) or closed.
            Err(_) => return,
        }
    }
}

/// Copies both ways between a bridge-side connection and the host port, carrying half-closes.
fn relay(inner: TcpStream, to: SocketAddr) {
    let outer = match TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) {
        Ok(o) => o,
        Err(e) => {
            tracing::debug!(%to, "relaying a bridge connection: {e}");
            return;
        }
    };
    let _ = outer.set_nodelay(true);
    let _ = inner.set_nodelay(true);
    let (Ok(inner2), Ok(outer2)) = (inner.try_clone(), outer.try_clone()) else {
        return;
    };
    let back = std::thread::Builder::new()
        .name("bypass-relay".into())
        .stack_size(STACK)
        .spawn(move || pipe(outer2, inner2));
    pipe(inner, outer);
    if let Ok(h) = back {
        let _ = h.join();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}
