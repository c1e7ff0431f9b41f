//! The parent/child handshake: one-byte messages over a pair of pipes inherited across re-exec.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

/// The environment variable that marks the re-executed child and carries its pipe ends.
pub const CHILD_ENV: &str = "_BURROW_ROOTLESSKIT_CHILD";

/// Child → parent: namespaces created, write my id maps.
pub const UNSHARED: u8 = b'U';
/// Parent → child: the id maps are written.
pub const MAPPED: u8 = b'M';
/// Child → parent: the network namespace exists (detached or its own): start the network.
pub const NETNS: u8 = b'N';
/// Parent → child: the network driver is up (the tap device exists).
pub const NET: u8 = b'T';
/// Child → parent: network configured and mounts done.
pub const READY: u8 = b'R';
/// Parent → child: ports published, API up, child_pid written: run the command.
pub const GO: u8 = b'G';

/// One end of the handshake: a reader and a writer.
pub struct Channel {
    rx: File,
    tx: File,
}

impl Channel {
    pub fn new(rx: OwnedFd, tx: OwnedFd) -> Channel {
        Channel {
            rx: File::from(rx),
            tx: File::from(tx),
        }
    }

    /// Sends one message.
    pub fn send(&mut self, msg: u8) -> std::io::Result<()> {
        self.tx.write_all(&[msg])
    }

    /// Sends a process id (with --pidns: the namespace's PID 1, as the host sees it).
    pub fn send_pid(&mut self, pid: i32) -> std::io::Result<()> {
        self.tx.write_all(&pid.to_le_bytes())
    }

    /// Reads what [`Channel::send_pid`] sent.
    pub fn expect_pid(&mut self) -> std::io::Result<i32> {
        let mut b = [0u8; 4];
        self.rx.read_exact(&mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    /// Waits for `want`; `Ok(false)` when the other side closed its end first (it failed and said
    /// why on stderr).
    pub fn expect(&mut self, want: u8) -> std::io::Result<bool> {
        let mut b = [0u8; 1];
        match self.rx.read(&mut b)? {
            0 => Ok(false),
            _ if b[0] == want => Ok(true),
            _ => Err(std::io::Error::other(format!(
                "handshake out of order: expected {:?}, got {:?}",
                want as char, b[0] as char
            ))),
        }
    }
}

/// Lets `fd` survive exec (the child's pipe ends, slirp4netns's ready and exit fds).
pub fn inheritable(fd: &OwnedFd) -> nix::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

/// Closes `fd` at exec again.
pub fn cloexec(fd: &OwnedFd) -> nix::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

/// The child's side, from the `rx,tx` pair in [`CHILD_ENV`].
pub fn child_channel(value: &str) -> Option<Channel> {
    let (rx, tx) = value.split_once(',')?;
    let rx: RawFd = rx.parse().ok()?;
    let tx: RawFd = tx.parse().ok()?;
    if rx < 3 || tx < 3 || rx == tx {
        return None;
    }
    // The fds were placed by our own parent; check they are open before taking ownership.
    for fd in [rx, tx] {
        if fcntl(unsafe_borrow(fd), FcntlArg::F_GETFD).is_err() {
            return None;
        }
    }
    let (rx, tx) = (owned(rx), owned(tx));
    let _ = cloexec(&rx);
    let _ = cloexec(&tx);
    Some(Channel::new(rx, tx))
}

/// The child's value of [`CHILD_ENV`] for these two fds.
pub fn env_value(rx: &OwnedFd, tx: &OwnedFd) -> String {
    format!("{},{}", rx.as_raw_fd(), tx.as_raw_fd())
}

fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    super::sys::borrow_raw(fd)
}

fn owned(fd: RawFd) -> OwnedFd {
    super::sys::own_raw(fd)
}
