//! Entering the launcher's namespaces (setns), which is per thread and so done before any runtime starts.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use super::{ConnectError, Endpoint};

/// Which of the launcher child's namespaces to join (user and mount always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    pub net: bool,
}

/// Joins the launcher child's user and mount namespaces, and its network namespace when asked.
///
/// Must run while the process has a single thread (setns into a user namespace refuses otherwise),
/// so before [`super::runtime`] or any `std::thread::spawn`.
pub fn enter(ep: &Endpoint, join: Join) -> Result<(), ConnectError> {
    let Some(launcher) = &ep.launcher else {
        return Err(ConnectError::NotRootless);
    };
    let pid = launcher.child_pid;
    // Open every namespace file first: after joining the user namespace, /proc of the host
    // may no longer be ours to open.
    let mut files = vec![(open_ns(pid, "user")?, CloneFlags::CLONE_NEWUSER, "user")];
    if join.net {
        files.push((open_ns(pid, "net")?, CloneFlags::CLONE_NEWNET, "net"));
    }
    files.push((open_ns(pid, "mnt")?, CloneFlags::CLONE_NEWNS, "mnt"));
    for (file, flag, name) in files {
        setns(&file, flag).map_err(|errno| ConnectError::Setns {
            path: ns_path(pid, name),
            errno,
        })?;
    }
    Ok(())
}

fn ns_path(pid: i32, name: &str) -> PathBuf {
    Path::new("/proc")
        .join(pid.to_string())
        .join("ns")
        .join(name)
}

fn open_ns(pid: i32, name: &str) -> Result<File, ConnectError> {
    let path = ns_path(pid, name);
    File::open(&path).map_err(|source| ConnectError::OpenNs { path, source })
}
