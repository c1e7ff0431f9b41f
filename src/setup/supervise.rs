//! The supervised service's control (no systemd): what its install recorded, its pid, starting
//! `burrow setup supervise` in the background, stopping it, and counting its restarts.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::files::private_dir;
use super::layout::{Layout, LayoutError, NetDriver};
use super::{programs, spawn};
use crate::connection::Globals;

/// The log line the supervisor writes each time a service exited.
pub(crate) const RESTART_LINE: &str = "burrow supervise: a service exited";

/// The current user's layout as the supervisor runs it: the network `net`, else the one the
/// supervised install recorded, else builtin; the host's loopback as recorded.
pub fn supervised_layout(g: &Globals, net: Option<NetDriver>) -> Result<Layout, LayoutError> {
    let mut layout = Layout::current(g)?;
    layout.net = net.or_else(|| installed_net(&layout)).unwrap_or_default();
    layout.host_loopback = installed_host_loopback(&layout);
    layout.detach_netns = installed_detach_netns(&layout);
    Ok(layout)
}

/// Whether a supervised install detached the namespace's network (`--detach-netns`).
pub fn installed_detach_netns(layout: &Layout) -> bool {
    std::fs::read_to_string(&layout.supervise_marker)
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "detach_netns = true"))
}

/// The network driver a supervised install recorded in its marker file.
pub fn installed_net(layout: &Layout) -> Option<NetDriver> {
    let text = std::fs::read_to_string(&layout.supervise_marker).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("net = "))
        .and_then(|v| NetDriver::parse(v.trim().trim_matches('"')))
}

/// Whether a supervised install let containers reach the host's loopback.
pub fn installed_host_loopback(layout: &Layout) -> bool {
    std::fs::read_to_string(&layout.supervise_marker)
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "host_loopback = true"))
}

/// Whether a supervised install also runs the Docker API (`setup install --docker-api`).
pub fn installed_docker_api(layout: &Layout) -> bool {
    std::fs::read_to_string(&layout.supervise_marker)
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "docker_api = true"))
}

/// The pid of a running supervisor of this user, from the pid file.
pub fn running_pid(layout: &Layout) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(&layout.supervise_pid)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_ours = cmdline.split(|b| *b == 0).any(|a| a == b"supervise");
    is_ours.then_some(pid)
}

/// Spawns `burrow setup supervise` detached (own session), output to the log; no-op when one runs.
pub fn start_background(
    layout: &Layout,
    launcher: Option<&Path>,
    runtime: &str,
    bypass: Option<&Path>,
    docker_api: bool,
) -> anyhow::Result<Option<u32>> {
    if running_pid(layout).is_some() {
        return Ok(None);
    }
    let launcher = programs::find_launcher(launcher)?;
    let log = open_log(&layout.log)?;
    let me = programs::burrow_exe()?;
    let mut cmd = Command::new(me);
    if let Some(d) = &layout.cli_data_root {
        if let Some(parent) = d.parent() {
            cmd.arg("--data-root").arg(parent);
        }
    }
    cmd.args(["setup", "supervise", "--runtime", runtime, "--launcher"])
        .arg(&launcher)
        .args(["--net", layout.net.as_str()]);
    if let Some(b) = bypass {
        cmd.arg("--bypass").arg(b);
    }
    if docker_api {
        cmd.arg("--docker-api");
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // A daemon (own session, reparented), stdin null and output in the log: the supervisor
    // outlives the terminal and the shell that started it, and a Slurm step's end.
    spawn::spawn_daemon(&mut cmd).context("cannot start `burrow setup supervise`")?;
    // Wait for the pid file so a following stop or status sees it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(pid) = running_pid(layout) {
            return Ok(Some(pid as u32));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "`burrow setup supervise` did not start within 10s; its log {} ends with:\n{}",
        layout.log.display(),
        super::service::log_tail(&layout.log, 15)
    )
}

/// Stops a running supervisor (it stops the launcher and containerd) and waits for it.
pub fn stop(layout: &Layout) -> anyhow::Result<()> {
    let Some(pid) = running_pid(layout) else {
        return Ok(());
    };
    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !Path::new(&format!("/proc/{pid}")).exists() || running_pid(layout).is_none() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the supervisor (pid {pid}) did not stop within 30s; kill it with `kill -9 {pid}`")
}

/// Opens the service log for appending (0600, in a private dir).
pub(crate) fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

/// How many times the supervisor has restarted the launcher, as its log records.
pub fn restarts(layout: &Layout) -> u32 {
    std::fs::read_to_string(&layout.log)
        .map(|t| t.matches(RESTART_LINE).count() as u32)
        .unwrap_or(0)
}
