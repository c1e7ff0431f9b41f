//! `burrow setup supervise` in the foreground: runs the launcher (with containerd inside), the
//! bypass service and the Docker API, restarts each when it exits (with backoff), and stops them on a signal. Its
//! stderr is the service log: the lines it writes there are the supervised service's log.

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::layout::Layout;
use super::supervise::{open_log, running_pid, RESTART_LINE};
use super::{programs, spawn};

/// Pause before the first restart of a service that exited; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// One supervised program.
struct Svc {
    name: &'static str,
    argv: Vec<String>,
    child: Option<std::process::Child>,
    started: Instant,
    delay: Duration,
    /// When it exited: start it again at this time.
    restart_at: Option<Instant>,
}

impl Svc {
    fn new(name: &'static str, argv: Vec<String>) -> Svc {
        Svc {
            name,
            argv,
            child: None,
            started: Instant::now(),
            delay: FIRST_DELAY,
            restart_at: Some(Instant::now()),
        }
    }

    fn start(&mut self, log_path: &Path) -> anyhow::Result<()> {
        let log = open_log(log_path)?;
        let mut cmd = Command::new(&self.argv[0]);
        let child = spawn::with_clear_signal_mask(&mut cmd)
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", self.argv[0]))?;
        eprintln!(
            "burrow supervise: started {} (pid {})",
            self.name,
            child.id()
        );
        self.child = Some(child);
        self.started = Instant::now();
        self.restart_at = None;
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = signal::killpg(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
            let _ = c.wait();
        }
    }

    /// Notes an exit and schedules the restart, with backoff while it keeps failing.
    fn reap(&mut self) {
        let Some(c) = self.child.as_mut() else { return };
        if let Ok(Some(status)) = c.try_wait() {
            self.child = None;
            if self.started.elapsed() > HEALTHY_RUN {
                self.delay = FIRST_DELAY;
            }
            eprintln!(
                "{RESTART_LINE} ({}: {status}); restarting in {}s",
                self.name,
                self.delay.as_secs()
            );
            self.restart_at = Some(Instant::now() + self.delay);
            self.delay = (self.delay * 2).min(MAX_DELAY);
        }
    }
}

/// Supervises the launcher (and the bypass service at `bypass`, and the Docker API with
/// `docker_api`) until a signal stops it; the pid file names this process meanwhile. Refuses
/// when another supervisor of the user runs.
pub fn run(
    layout: &Layout,
    launcher: &Path,
    runtime: &str,
    bypass: Option<&Path>,
    docker_api: bool,
) -> anyhow::Result<()> {
    if let Some(pid) = running_pid(layout) {
        bail!(
            "another supervisor already runs (pid {pid}, {}); stop it with `burrow setup uninstall` or `kill {pid}`",
            layout.supervise_pid.display()
        );
    }
    let _pid_file = write_pid_file(&layout.supervise_pid)?;
    let sfd = block_signals()?;
    let me = programs::burrow_exe()?;
    let mut svcs = vec![Svc::new(
        "the launcher",
        layout.service_argv(launcher, &me, runtime),
    )];
    if let Some(b) = bypass {
        svcs.push(Svc::new("burrow-bypass", layout.bypass_argv(b)));
    }
    if docker_api {
        svcs.push(Svc::new("the Docker API", layout.docker_api_argv(&me)));
    }
    loop {
        start_due(&mut svcs, &layout.log);
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, next_timeout(&svcs)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGCHLD);
            if sig == Signal::SIGCHLD {
                continue;
            }
            eprintln!("burrow supervise: {sig}: stopping");
            for s in svcs.iter_mut() {
                s.stop();
            }
            return Ok(());
        }
        for s in svcs.iter_mut() {
            s.reap();
        }
    }
}

/// Writes this process's pid to `path`; the file goes when the guard drops.
fn write_pid_file(path: &Path) -> anyhow::Result<RemoveOnDrop> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(RemoveOnDrop(path.to_path_buf()))
}

/// Blocks the signals the supervisor handles and returns the signalfd they arrive on (std gives
/// children an empty mask, and [`spawn`] clears it for them).
fn block_signals() -> anyhow::Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        set.add(s);
    }
    signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(SignalFd::with_flags(
        &set,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Starts every service whose restart time has come; one that cannot start is retried later.
fn start_due(svcs: &mut [Svc], log: &Path) {
    let now = Instant::now();
    for s in svcs.iter_mut() {
        if s.restart_at.is_some_and(|t| t <= now) {
            if let Err(e) = s.start(log) {
                eprintln!(
                    "burrow supervise: {e:#}; retrying in {}s",
                    s.delay.as_secs()
                );
                s.restart_at = Some(now + s.delay);
                s.delay = (s.delay * 2).min(MAX_DELAY);
            }
        }
    }
}

/// How long to wait for a signal: until the next restart is due (at most a minute), else forever.
fn next_timeout(svcs: &[Svc]) -> PollTimeout {
    match svcs.iter().filter_map(|s| s.restart_at).min() {
        Some(t) => {
            let ms = t
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(60_000);
            PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::ZERO)
        }
        None => PollTimeout::NONE,
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
