//! `burrow setup supervise`: the service where there is no systemd; runs launcher + containerd and restarts them when they die.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::layout::{self, Layout, NetDriver};
use burrow::connection::{Globals, UserEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start the supervisor in the background unless it already runs, and return.
    #[arg(long)]
    pub background: bool,
    /// The RootlessKit-compatible launcher [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// The OCI runtime: runc or crun [default: runc when installed, else crun].
    #[arg(long, value_parser = ["runc", "crun"])]
    pub runtime: Option<String>,
    /// Also run and restart the socket-bypass service (burrow-bypass at this path).
    #[arg(long, value_name = "PATH")]
    pub bypass: Option<PathBuf>,
    /// The namespace's network [default: what `setup install --net` chose, else builtin].
    #[arg(long, value_enum)]
    pub net: Option<NetDriver>,
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

/// runc when installed, else crun.
pub fn default_runtime() -> String {
    if layout::which("runc").is_none() && layout::which("crun").is_some() {
        "crun".into()
    } else {
        "runc".into()
    }
}

/// Pause before the first restart of a service that exited; doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let mut layout = Layout::new(
        &UserEnv::current(),
        super::install::requested_data_root(g, &UserEnv::current()).as_deref(),
    )?;
    layout.net = args
        .net
        .or_else(|| installed_net(&layout))
        .unwrap_or_default();
    layout.host_loopback = installed_host_loopback(&layout);
    let runtime = args.runtime.unwrap_or_else(default_runtime);
    if args.background {
        match start_background(
            &layout,
            args.launcher.as_deref(),
            &runtime,
            args.bypass.as_deref(),
        )? {
            Some(pid) => println!(
                "started the supervised rootless containerd (pid {pid}; logs: {})",
                layout.log.display()
            ),
            None => println!("the supervised rootless containerd already runs"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let launcher = layout::find_launcher(args.launcher.as_deref())?;
    supervise(&layout, &launcher, &runtime, args.bypass.as_deref())
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
) -> anyhow::Result<Option<u32>> {
    if running_pid(layout).is_some() {
        return Ok(None);
    }
    let launcher = layout::find_launcher(launcher)?;
    let log = open_log(&layout.log)?;
    let me = layout::burrow_exe()?;
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
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group, stdin null and output in the log: the supervisor outlives the
    // terminal and the shell that started it.
    cmd.process_group(0);
    let child = cmd
        .spawn()
        .context("cannot start `burrow setup supervise`")?;
    let pid = child.id();
    // Wait for the pid file so a following stop or status sees it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && running_pid(layout).is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Some(pid))
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

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the log {}", path.display()))
}

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
        let child = super::spawn::with_clear_signal_mask(&mut cmd)
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

fn supervise(
    layout: &Layout,
    launcher: &Path,
    runtime: &str,
    bypass: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if let Some(pid) = running_pid(layout) {
        bail!(
            "another supervisor already runs (pid {pid}, {}); stop it with `burrow setup uninstall` or `kill {pid}`",
            layout.supervise_pid.display()
        );
    }
    if let Some(dir) = layout.supervise_pid.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    std::fs::write(&layout.supervise_pid, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", layout.supervise_pid.display()))?;
    let _pid_file = RemoveOnDrop(layout.supervise_pid.clone());

    // Signals arrive on a signalfd (blocked otherwise); std gives children an empty mask.
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
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let me = layout::burrow_exe()?;
    let mut svcs = vec![Svc::new(
        "the launcher",
        layout.service_argv(launcher, &me, runtime),
    )];
    if let Some(b) = bypass {
        svcs.push(Svc::new("burrow-bypass", layout.bypass_argv(b)));
    }
    loop {
        let now = Instant::now();
        for s in svcs.iter_mut() {
            if s.restart_at.is_some_and(|t| t <= now) {
                if let Err(e) = s.start(&layout.log) {
                    eprintln!(
                        "burrow supervise: {e:#}; retrying in {}s",
                        s.delay.as_secs()
                    );
                    s.restart_at = Some(now + s.delay);
                    s.delay = (s.delay * 2).min(MAX_DELAY);
                }
            }
        }
        let timeout = match svcs.iter().filter_map(|s| s.restart_at).min() {
            Some(t) => {
                let ms = t
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(60_000);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
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
            return Ok(ExitCode::SUCCESS);
        }
        for s in svcs.iter_mut() {
            s.reap();
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How many times the supervisor has restarted the launcher, as its log records.
pub fn restarts(layout: &Layout) -> u32 {
    std::fs::read_to_string(&layout.log)
        .map(|t| t.matches(RESTART_LINE).count() as u32)
        .unwrap_or(0)
}

/// The log line the supervisor writes each time the launcher exited.
const RESTART_LINE: &str = "burrow supervise: a service exited";
