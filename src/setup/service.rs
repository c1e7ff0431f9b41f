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

/// The launcher's child pid from the state dir, when that process exists.
pub fn child_pid(l: &Layout) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(l.state_dir.join("child_pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
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
fn userns_of(pid: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
}

/// Processes of this user living in the given user namespace (containerd, shims, containers).
fn processes_in(userns: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| userns_of(*p).as_deref() == Some(userns))
        .collect()
}

/// Stops the service however it is managed, then kills anything left in its user namespace.
pub fn stop(l: &Layout, manager: Option<Manager>) -> anyhow::Result<()> {
    let userns = child_pid(l).and_then(userns_of);
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
