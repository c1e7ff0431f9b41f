//! Children of the supervisor start with no blocked signals (the supervisor blocks them for its signalfd).
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow};

/// Makes `cmd`'s child unblock every signal before it execs (the mask is inherited otherwise,
/// and a child with SIGTERM blocked could never be stopped).
pub fn with_clear_signal_mask(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs in the forked child before exec and only calls sigprocmask,
    // which is async-signal-safe; it allocates nothing and touches no locks.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(std::io::Error::from)
        })
    }
}

/// Makes `cmd`'s program a daemon: in a session of its own, and a grandchild of the caller (the
/// child forks once more and leaves), so it belongs to no process tree or group of the caller's.
/// A Slurm step's end kills its tasks' trees (proctrack/linuxproc, pgid); a job's containerd
/// and its watcher, started by one task, outlive that step this way (the watcher ends them with
/// the job). `spawn` then returns the short-lived middle child, to be waited for; an exec failure
/// of the program still comes back from `spawn`, as std reports it through a close-on-exec pipe
/// the grandchild holds until its exec.
pub fn as_daemon(cmd: &mut Command) -> &mut Command {
    let daemonize = || {
        nix::unistd::setsid().map_err(std::io::Error::from)?;
        // SAFETY: this runs in the forked child, which has a single thread, so fork cannot
        // leave a lock held; the grandchild goes on to exec.
        match unsafe { nix::unistd::fork() }.map_err(std::io::Error::from)? {
            nix::unistd::ForkResult::Child => Ok(()),
            // SAFETY: _exit ends the middle child at once, without running destructors or
            // atexit handlers that belong to the parent.
            nix::unistd::ForkResult::Parent { .. } => unsafe { nix::libc::_exit(0) },
        }
    };
    // SAFETY: the closure runs in the forked child before exec and calls only setsid, fork and
    // _exit, which are async-signal-safe; it allocates nothing.
    unsafe { cmd.pre_exec(daemonize) }
}

/// Spawns `cmd` as a daemon ([`as_daemon`]) and waits for the middle child.
pub fn spawn_daemon(cmd: &mut Command) -> std::io::Result<()> {
    as_daemon(cmd).spawn()?.wait()?;
    Ok(())
}
