//! Containers' listeners kept across a restart of the service: each one is handed to systemd's
//! fd store (sd_notify FDSTORE=1) with its metadata in a private file, and taken back from
//! LISTEN_FDS when the service starts again. Without systemd (no NOTIFY_SOCKET) nothing is kept.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// Where listeners are kept: systemd's notify socket and a directory for their metadata.
#[derive(Debug, Clone)]
pub struct FdStore {
    notify: Option<UnixAddr>,
    dir: PathBuf,
}

/// A listener taken back from the store.
#[derive(Debug)]
pub struct Kept {
    pub name: String,
    pub fd: OwnedFd,
    pub metadata: String,
}

impl FdStore {
    /// The store of a service whose socket is `socket` (metadata files go next to it, in
    /// `bypass.d/`), from the environment systemd gives it.
    pub fn from_env(socket: &Path) -> FdStore {
        let notify = std::env::var("NOTIFY_SOCKET").ok().and_then(|s| {
            if let Some(name) = s.strip_prefix('@') {
                UnixAddr::new_abstract(name.as_bytes()).ok()
            } else {
                UnixAddr::new(s.as_str()).ok()
            }
        });
        let dir = socket
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("bypass.d");
        FdStore { notify, dir }
    }

    pub fn enabled(&self) -> bool {
        self.notify.is_some()
    }

    /// Hands a listener to the store under `name` (unique while the container runs).
    pub fn keep(&self, name: &str, fd: BorrowedFd<'_>, metadata: &str) {
        let Some(addr) = &self.notify else { return };
        let written = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join(name), metadata));
        if let Err(e) = written {
            tracing::warn!(name, "keeping a container's metadata: {e}");
            return;
        }
        let msg = format!("FDSTORE=1\nFDNAME={name}\n");
        if let Err(e) = notify(addr, &msg, Some(fd.as_raw_fd())) {
            tracing::warn!(name, "handing a listener to systemd's fd store: {e}");
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }

    /// Drops a listener from the store (its container is gone).
    pub fn forget(&self, name: &str) {
        let Some(addr) = &self.notify else { return };
        let _ = notify(addr, &format!("FDSTOREREMOVE=1\nFDNAME={name}\n"), None);
        let _ = std::fs::remove_file(self.dir.join(name));
    }

    /// The listeners systemd passed back at start (LISTEN_FDS, LISTEN_FDNAMES), with their
    /// metadata; stale metadata files are removed.
    pub fn recover(&self) -> Vec<Kept> {
        let mut out = Vec::new();
        let for_us = std::env::var("LISTEN_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            == Some(std::process::id());
        let count: RawFd = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
            .unwrap_or_default()
            .split(':')
            .map(str::to_owned)
            .collect();
        if for_us {
            for i in 0..count {
                let raw = 3 + i;
                let fd = crate::notify::own_fd(raw);
                let _ = nix::fcntl::fcntl(
                    &fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
                let Some(name) = names.get(i as usize).filter(|n| valid_name(n)) else {
                    continue;
                };
                match std::fs::read_to_string(self.dir.join(name)) {
                    Ok(metadata) => out.push(Kept {
                        name: name.clone(),
                        fd,
                        metadata,
                    }),
                    Err(e) => tracing::warn!(name, "a kept listener without metadata: {e}"),
                }
            }
        }
        // Metadata of listeners that did not come back (their containers ended meanwhile).
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if !out.iter().any(|k| k.name == n) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        out
    }
}

/// A store name for a container's listener: its id's start and the process it was made for.
pub fn name_for(container: &str, pid: i64) -> String {
    let id: String = container
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("bp-{id}-{pid}")
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 255 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Sends one sd_notify datagram, with an fd when given.
fn notify(addr: &UnixAddr, msg: &str, fd: Option<RawFd>) -> std::io::Result<()> {
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(std::io::Error::from)?;
    let iov = [IoSlice::new(msg.as_bytes())];
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsgs: Vec<ControlMessage<'_>> = if fds.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&fds)]
    };
    sendmsg(
        sock.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::empty(),
        Some(addr),
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_systemd_accepts() {
        let n = name_for("6ed61c4ea3397166913b7d5d21a1f69c", 27061);
        assert_eq!(n, "bp-6ed61c4ea3397166-27061");
        assert!(valid_name(&n));
        assert!(!valid_name("a:b"));
        assert!(!valid_name("../x"));
        assert!(!valid_name(""));
    }

    #[test]
    fn without_systemd_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FdStore {
            notify: None,
            dir: dir.path().join("bypass.d"),
        };
        let f = std::fs::File::open("/dev/null").unwrap();
        store.keep("bp-x-1", std::os::fd::AsFd::as_fd(&f), "{}");
        assert!(!dir.path().join("bypass.d").exists());
    }
}
