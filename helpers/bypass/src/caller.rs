//! The process behind a trapped call: its memory, its fds and their flags.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use crate::notify::{self, Notif};

/// The caller of one trapped call. Whatever is read through it must be confirmed with
/// `notify::id_valid` before it is acted on: the caller may have died and its pid been reused.
#[derive(Debug)]
pub struct Caller {
    /// The calling thread.
    pub tid: u32,
    /// Its process (thread group), for pidfds and fd flags: read from /proc when first needed.
    tgid: std::cell::OnceCell<u32>,
    mem: File,
}

impl Caller {
    pub fn open(n: &Notif) -> io::Result<Caller> {
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("/proc/{}/mem", n.pid))?;
        Ok(Caller {
            tid: n.pid,
            tgid: std::cell::OnceCell::new(),
            mem,
        })
    }

    /// The caller's process.
    pub fn tgid(&self) -> io::Result<u32> {
        if let Some(t) = self.tgid.get() {
            return Ok(*t);
        }
        let t = tgid_of(self.tid)?;
        Ok(*self.tgid.get_or_init(|| t))
    }

    /// `len` bytes of the caller's memory at `addr`.
    pub fn read(&self, addr: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.mem.read_exact_at(&mut buf, addr)?;
        Ok(buf)
    }

    /// Writes into the caller's memory (an output argument of its call).
    pub fn write(&self, addr: u64, bytes: &[u8]) -> io::Result<()> {
        self.mem.write_all_at(bytes, addr)
    }

    /// A duplicate of the caller's fd (the same open file description).
    pub fn fd(&self, fd: RawFd) -> io::Result<OwnedFd> {
        let pidfd = notify::pidfd_open(self.tgid()?)?;
        notify::pidfd_getfd(pidfd.as_fd(), fd)
    }

    /// Whether the caller's fd has FD_CLOEXEC (`flags:` in fdinfo, octal).
    pub fn cloexec(&self, fd: RawFd) -> bool {
        let Ok(tgid) = self.tgid() else { return false };
        std::fs::read_to_string(format!("/proc/{tgid}/fdinfo/{fd}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("flags:"))
                    .and_then(|v| i64::from_str_radix(v.trim(), 8).ok())
            })
            .is_some_and(|f| f & i64::from(libc::O_CLOEXEC) != 0)
    }
}

/// The thread group (process) of a thread id.
fn tgid_of(tid: u32) -> io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Tgid in /proc/PID/status"))
}
