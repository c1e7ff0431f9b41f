//! The TCP data path: bytes move socket → pipe → socket with splice(2), never through a userspace
//! buffer, in both directions, with a half-close carried across as shutdown(SHUT_WR).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::fcntl::{splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// How much one splice call moves at most.
const CHUNK: usize = 1 << 20;
/// Pipe size we ask for; the kernel may cap it (pipe-user-pages-soft), which is fine.
const PIPE_SIZE: libc::c_int = 1 << 20;

/// The pipe's size at first (the kernel's default); short exchanges never need more.
const PIPE_START: usize = 1 << 16;

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?)
}

/// Moves everything `src` sends to `dst` until `src` half-closes, then half-closes `dst`.
async fn pump(src: &TcpStream, dst: &TcpStream) -> io::Result<()> {
    let (pr, pw) = pipe()?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut grown = false;
    // The first read is tried at once: a new connection's first bytes are usually there
    // already, and a socket the runtime has only just registered is not known to be readable
    // until its next turn. After that, reads wait for readiness as usual.
    let mut eager = true;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
        let read = || splice(src.as_fd(), None, &pw, None, CHUNK, flags).map_err(io::Error::from);
        let first = if std::mem::take(&mut eager) {
            read()
        } else {
            Err(io::ErrorKind::WouldBlock.into())
        };
        let n = match first {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                src.readable().await?;
                match src.try_io(Interest::READABLE, read) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            // Half-close carried over; ENOTCONN when the peer already went away is not an error.
            let _ = shutdown_write(dst);
            return Ok(());
        }
        if !grown && n >= PIPE_START {
            // A bulk transfer: a bigger pipe means fewer wakeups per megabyte (best effort; the
            // default still works). Sized only now, so short connections skip the allocation.
            grown = true;
            let _ = nix::fcntl::fcntl(&pw, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
        }
        // Written at once when the socket takes it (it nearly always has room), else when the
        // runtime reports room.
        let mut left = n;
        match splice(&pr, None, dst.as_fd(), None, left, flags) {
            Ok(m) => left -= m,
            Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
        }
        while left > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(&pr, None, dst.as_fd(), None, left, flags).map_err(io::Error::from)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn shutdown_write(s: &TcpStream) -> io::Result<()> {
    nix::sys::socket::shutdown(s.as_raw_fd(), nix::sys::socket::Shutdown::Write)
        .map_err(io::Error::from)
}

/// Relays between two connected sockets until both directions are done or one fails.
pub async fn relay(a: TcpStream, b: TcpStream) {
    let ab = pump(&a, &b);
    let ba = pump(&b, &a);
    tokio::pin!(ab, ba);
    let (mut ab_done, mut ba_done) = (false, false);
    while !(ab_done && ba_done) {
        tokio::select! {
            r = &mut ab, if !ab_done => { ab_done = true; if r.is_err() { break; } }
            r = &mut ba, if !ba_done => { ba_done = true; if r.is_err() { break; } }
        }
    }
    // Both streams are dropped (closed) on return.
}
