//! `run`'s ahead-of-time attach (`burrow internal net-prepare`): a network namespace made and
//! attached to the container's CNI networks while `run` is still creating the container, so
//! the plugins' work (the bridge and firewall plugins' iptables calls) overlaps the snapshot,
//! shim and runtime start-up instead of following them inside the `createRuntime` hook.
//!
//! The protocol, in the helper:
//! 1. take the container's network lock (the hook waits on it, so the task never starts
//!    before the attach ends);
//! 2. make a network namespace and bind-mount it at `STATE_DIR/netns`, then say `ready PATH`
//!    on stdout (`run` puts the path in the container's spec);
//! 3. attach (CNI ADD, /etc/hosts, ports) with the state marked `prepared` for that namespace,
//!    then let go of the lock; the task's `createRuntime` hook claims the attachment when its
//!    namespace is that one, reports the helper's error when the attach failed (a published
//!    port already taken, ...), and attaches normally otherwise;
//! 4. wait for stdin to close (`run` closes it once the task holds the namespace, or when it
//!    gives up), then unmount the path: from then on the container's processes keep it.

use crate::selfexec::Helper;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::hook::{self, HookState, NsId};

/// The file the namespace is bind-mounted at.
pub const NETNS_FILE: &str = "netns";

/// The helper's main: steps 1 to 4. Errors before `ready` are printed on stdout as
/// `error: ...` (run then lets the hook attach as usual); later ones are left to the hook.
pub fn main(state_dir: &Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let path = state_dir.join(NETNS_FILE);
    let (lock, id) = match hook::lock(state_dir)
        .map_err(anyhow::Error::from)
        .and_then(|l| make_netns(&path).map(|id| (l, id)))
    {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(out, "error: {e:#}");
            return Ok(());
        }
    };
    // The state exists before `ready`, so a failed `run` knows to tear down.
    let begun = HookState {
        prepared: Some(id),
        ..HookState::default()
    };
    if let Err(e) = hook::write_state(state_dir, &begun) {
        let _ = umount2(&path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&path);
        let _ = writeln!(out, "error: {e}");
        return Ok(());
    }
    writeln!(out, "ready {}", path.display())?;
    out.flush()?;
    drop(out);
    // Nobody reads our output any more.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let attached = hook::attach_at(state_dir, &path.to_string_lossy(), Some(id));
    if let Err(e) = &attached {
        // For the task's createRuntime hook to report (it runs once we let go of the lock).
        let _ = std::fs::write(state_dir.join(hook::AHEAD_ERROR_FILE), e.to_string());
    }
    drop(lock);
    // Wait for `run` to be done with the path (EOF, or its death).
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin
        .lock()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        line.clear();
    }
    let _ = umount2(&path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&path);
    attached.map(|_| ()).map_err(Into::into)
}

/// A new network namespace bind-mounted at `path`; this process stays in its own.
fn make_netns(path: &Path) -> anyhow::Result<NsId> {
    let own = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| anyhow::anyhow!("opening our network namespace: {e}"))?;
    std::fs::File::create(path).map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("making a network namespace: {e}"))?;
    // Its loopback up, as runc brings up that of a namespace it makes itself (the container's
    // 127.0.0.1); a socket opened now is one of the new namespace.
    let lo = burrow_rootlesskit::launcher::netconf::loopback_up();
    let mounted = mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
    // Back to the runtime's namespace: the plugins run there (the bridge lives there).
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("returning to our network namespace: {e}"))?;
    if let Err(e) = mounted {
        let _ = std::fs::remove_file(path);
        anyhow::bail!(
            "bind-mounting a network namespace at {}: {e}",
            path.display()
        );
    }
    if let Err(e) = lo {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(path);
        anyhow::bail!("bringing up the loopback of a new network namespace: {e:#}");
    }
    NsId::of(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

/// `run`'s side: the helper's handle once it said `ready`.
#[derive(Debug)]
pub struct Prepared {
    child: std::process::Child,
    /// The namespace's path, for the spec.
    pub path: PathBuf,
}

impl Prepared {
    /// Starts the helper ([`Helper::NetPrepare`]).
    pub fn spawn(state_dir: &Path, launcher_pid: Option<i32>) -> std::io::Result<Starting> {
        let mut cmd = Helper::NetPrepare {
            state_dir: state_dir.to_path_buf(),
            launcher_pid,
        }
        .command()?;
        let child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        Ok(Starting { child })
    }

    /// The task holds the namespace now (or `run` gave up): the helper unmounts it.
    pub fn done(&mut self) {
        drop(self.child.stdin.take());
    }

    /// [`Self::done`], and with `wait` returns once the helper has unmounted and exited (so
    /// the state dir can go).
    pub fn release(mut self, wait: bool) {
        self.done();
        if wait {
            let _ = self.child.wait();
        }
    }
}

/// A helper that has not said `ready` yet.
#[derive(Debug)]
pub struct Starting {
    child: std::process::Child,
}

impl Starting {
    /// Waits for `ready PATH` (blocking: the helper says it within milliseconds of starting).
    pub fn ready(mut self) -> Result<Prepared, String> {
        let Some(stdout) = self.child.stdout.take() else {
            return Err("no pipe to the helper".into());
        };
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        match (read, line.trim_end().strip_prefix("ready ")) {
            (Ok(_), Some(path)) => Ok(Prepared {
                path: PathBuf::from(path),
                child: self.child,
            }),
            (read, _) => {
                drop(self.child.stdin.take());
                let _ = self.child.wait();
                Err(match read {
                    Err(e) => e.to_string(),
                    Ok(_) if line.is_empty() => "the helper exited".into(),
                    Ok(_) => line.trim_end().to_string(),
                })
            }
        }
    }
}
