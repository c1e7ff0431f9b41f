//! The running service, whichever way it is managed: readiness, stopping, and the processes it leaves.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::layout::{Layout, MARKER};
use super::{supervise, systemd};

/// How the installed service is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// A unit of the user's systemd manager.
    Systemd,
    /// `burrow setup supervise` in the background.
    Supervised,
}

/// What is installed: burrow's unit file, or a supervisor pid file.
pub fn installed(l: &Layout) -> Option<Manager> {
    if std::fs::read_to_string(&l.unit).is_ok_and(|t| t.contains(MARKER)) {
        return Some(Manager::Systemd);
    }
    if l.supervise_pid.exists() || l.supervise_marker.exists() {
        return Some(Manager::Supervised);
    }
    None
}

/// True when an earlier install set up the bypass service (later installs keep it).
pub fn bypass_installed(l: &Layout) -> bool {
    let unit = std::fs::read_to_string(&l.bypass_unit).is_ok_and(|t| t.contains(MARKER));
    let supervised = std::fs::read_to_string(&l.supervise_marker)
        .is_ok_and(|t| t.lines().any(|x| x.starts_with("bypass = ")));
    unit || supervised
}

/// True when an earlier install set up the Docker API (later installs keep it).
pub fn docker_api_installed(l: &Layout) -> bool {
    std::fs::read_to_string(&l.docker_socket_unit).is_ok_and(|t| t.contains(MARKER))
        || supervise::installed_docker_api(l)
}

/// The launcher's child pid from the state dir, when a launcher is running there (see
/// [`launcher_child`]).
pub fn child_pid(l: &Layout) -> Option<i32> {
    launcher_child(l).map(|(pid, _)| pid)
}

/// The launcher's child pid and its user namespace, when a launcher is running there: one holds
/// the state dir's lock and the pid lives in a user namespace other than ours. A `child_pid`
/// left by a launcher that was killed names a pid the kernel may since have given to any
/// process, and [`stop`] kills everything in the namespace returned here: never our own, which
/// would be every process of the user outside the launcher.
fn launcher_child(l: &Layout) -> Option<(i32, std::path::PathBuf)> {
    let pid: i32 = std::fs::read_to_string(l.state_dir.join("child_pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !lock_held(&l.state_dir.join("lock")) {
        return None;
    }
    let ns = userns_of(pid)?;
    (Some(&ns) != userns_of(std::process::id() as i32).as_ref()).then_some((pid, ns))
}

/// Whether some process holds a lock on `path`, read from /proc/locks (taking the lock to see
/// would race a launcher starting at that moment).
fn lock_held(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return false;
    };
    // Lines are like "1: FLOCK  ADVISORY  WRITE 4242 00:1a:5678 0 EOF" (a waiter's has "->").
    let want = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(meta.dev()),
        nix::sys::stat::minor(meta.dev()),
        meta.ino()
    );
    locks
        .lines()
        .any(|line| line.split_whitespace().any(|field| field == want))
}

/// containerd's server version when it answers on the socket.
pub fn server_version(socket: &Path) -> Result<String, String> {
    if let Some(why) = crate::connection::probe_socket(socket) {
        return Err(why);
    }
    let rt = crate::connection::runtime();
    rt.block_on(async {
        let ch = containerd_client::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let mut c = containerd_client::services::v1::version_client::VersionClient::new(ch);
        let v = tokio::time::timeout(Duration::from_secs(5), c.version(()))
            .await
            .map_err(|_| "no answer within 5s".to_owned())?
            .map_err(|e| e.message().to_owned())?;
        Ok(v.into_inner().version)
    })
}

/// Waits until the launcher is ready and containerd answers; on timeout, fails with the log's tail.
pub fn wait_ready(
    l: &Layout,
    timeout: Duration,
    alive: &dyn Fn() -> bool,
    restarts: &dyn Fn() -> u32,
) -> anyhow::Result<String> {
    let start = Instant::now();
    let first = restarts();
    let restarts_since_start = || restarts().saturating_sub(first);
    let mut last = String::from("not started");
    while start.elapsed() < timeout {
        if child_pid(l).is_some() {
            match server_version(&l.socket) {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        } else {
            last = format!(
                "{} not written yet",
                l.state_dir.join("child_pid").display()
            );
        }
        if !alive() && start.elapsed() > Duration::from_secs(3) {
            last = format!("the service is not running ({last})");
            break;
        }
        if restarts_since_start() > 2 {
            last = format!("the service keeps failing and restarting ({last})");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "containerd did not answer on {} ({last}); the service log {} ends with:\n{}\nsee `burrow setup status` and `burrow setup logs`",
        l.socket.display(),
        l.log.display(),
        log_tail(&l.log, 15)
    )
}

/// The last `n` lines of the log, indented.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let tail: Vec<String> = lines[start..].iter().map(|l| format!("    {l}")).collect();
    if tail.is_empty() {
        "    (empty)".into()
    } else {
        tail.join("\n")
    }
}

/// The user namespace inode of a process.
pub(crate) fn userns_of(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
}

/// Processes of this user living in the given user namespace (containerd, shims, containers)
/// or in one nested in it (`--userns=keep-id` containers).
pub(crate) fn processes_in(userns: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let ino = super::nsparent::inode(userns);
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| match ino {
            Some(ns) => super::nsparent::lives_under(*p, ns),
            None => userns_of(*p).as_deref() == Some(userns),
        })
        .collect()
}

/// Stops the service however it is managed, then kills anything left in its user namespace.
pub fn stop(l: &Layout, manager: Option<Manager>) -> anyhow::Result<()> {
    let userns = launcher_child(l).map(|(_, ns)| ns);
    match manager {
        Some(Manager::Systemd) if systemd::user_manager_reachable().is_ok() => {
            systemd::run(&["stop", systemd::UNIT])?;
        }
        Some(Manager::Supervised) => supervise::stop(l)?,
        _ => {}
    }
    if let Some(ns) = userns {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_in(&ns);
            if left.is_empty() {
                break;
            }
            let sig = if Instant::now() < deadline - Duration::from_secs(5) {
                Signal::SIGTERM
            } else {
                Signal::SIGKILL
            };
            for p in &left {
                let _ = kill(Pid::from_raw(*p), sig);
            }
            if Instant::now() > deadline {
                bail!(
                    "processes {left:?} of the rootless containerd did not exit; kill them with `kill -9 {}`",
                    left.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{Flock, FlockArg};

    fn layout_in(dir: &Path) -> Layout {
        let mut l = Layout::new(&super::super::layout::example_env(), None).unwrap();
        l.state_dir = dir.to_path_buf();
        l
    }

    #[test]
    fn a_child_pid_left_by_a_dead_launcher_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let l = layout_in(dir.path());
        // A pid that exists (ours) in a state dir no launcher holds: stale.
        std::fs::write(dir.path().join("child_pid"), std::process::id().to_string()).unwrap();
        std::fs::write(dir.path().join("lock"), "").unwrap();
        assert_eq!(child_pid(&l), None);
        // Locked, as by a running launcher, but the pid is in our own user namespace: still not
        // a launcher's child, and never a namespace to empty.
        let f = std::fs::File::open(dir.path().join("lock")).unwrap();
        let _held = Flock::lock(f, FlockArg::LockExclusiveNonblock).unwrap();
        assert!(lock_held(&dir.path().join("lock")));
        assert_eq!(child_pid(&l), None);
    }

    #[test]
    fn an_unlocked_file_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("lock");
        std::fs::write(&lock, "").unwrap();
        assert!(!lock_held(&lock));
        assert!(!lock_held(&dir.path().join("missing")));
    }
}
