//! Entering the launcher's namespaces (setns), which is per thread and so done before any runtime
//! starts, and finding the launcher's network namespace: the child's own, or the one a
//! `--detach-netns` launcher (RootlessKit v2, burrow-rootlesskit) keeps at `STATE_DIR/netns`.

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
    enter_pid(launcher.child_pid, join)
}

/// [`enter`] for the launcher child `pid` (the helpers burrow re-executes itself as get the pid).
pub fn enter_pid(pid: i32, join: Join) -> Result<(), ConnectError> {
    // Open every namespace file first: after joining the user namespace, /proc of the host
    // may no longer be ours to open.
    let mut files = vec![(
        open(ns_path(pid, "user"))?,
        CloneFlags::CLONE_NEWUSER,
        ns_path(pid, "user"),
    )];
    if join.net {
        let net = network_ns(pid);
        files.push((open(net.clone())?, CloneFlags::CLONE_NEWNET, net));
    }
    files.push((
        open(ns_path(pid, "mnt"))?,
        CloneFlags::CLONE_NEWNS,
        ns_path(pid, "mnt"),
    ));
    for (file, flag, path) in files {
        setns(&file, flag).map_err(|errno| ConnectError::Setns { path, errno })?;
    }
    Ok(())
}

/// Joins the network namespace at `path` (a `--detach-netns` launcher's, as seen from inside
/// its mount namespace) for the calling thread.
pub fn enter_net(path: &Path) -> Result<(), ConnectError> {
    let file = open(path.to_path_buf())?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|errno| ConnectError::Setns {
        path: path.to_path_buf(),
        errno,
    })
}

/// `NSFS_MAGIC` from linux/magic.h: the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The launcher's network namespace as seen from outside its mount namespace: the detached one
/// when there is one, else the child's own.
pub fn network_ns(pid: i32) -> PathBuf {
    match detached_netns(pid) {
        Some(inside) => in_child_root(pid, &inside),
        None => ns_path(pid, "net"),
    }
}

/// The path of a `--detach-netns` launcher's network namespace inside its mount namespace
/// (`$ROOTLESSKIT_STATE_DIR/netns`, a bind mount there only), or None when the launcher child
/// `pid` keeps the network namespace it runs in.
pub fn detached_netns(pid: i32) -> Option<PathBuf> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let state_dir = environ
        .split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"ROOTLESSKIT_STATE_DIR="))?;
    let inside = Path::new(std::str::from_utf8(state_dir).ok()?).join("netns");
    let fs = nix::sys::statfs::statfs(&in_child_root(pid, &inside)).ok()?;
    (fs.filesystem_type().0 as i64 == NSFS_MAGIC).then_some(inside)
}

/// `path` (absolute, inside the launcher child's mount namespace) reached from outside it.
fn in_child_root(pid: i32, path: &Path) -> PathBuf {
    Path::new("/proc")
        .join(pid.to_string())
        .join("root")
        .join(path.strip_prefix("/").unwrap_or(path))
}

fn ns_path(pid: i32, name: &str) -> PathBuf {
    Path::new("/proc")
        .join(pid.to_string())
        .join("ns")
        .join(name)
}

fn open(path: PathBuf) -> Result<File, ConnectError> {
    File::open(&path).map_err(|source| ConnectError::OpenNs { path, source })
}
