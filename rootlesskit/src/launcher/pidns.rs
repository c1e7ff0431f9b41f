//! `--pidns`: the intermediate process that relays signals to the namespace's PID 1, and the
//! PID-1 reaper that runs the command, reaps orphans and exits with the command's status.

use std::process::Command;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::exec::exec;
use super::sys::fork_single_threaded;

/// The signals a launcher passes on to what it runs.
pub const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// The forwarded signals, plus SIGCHLD when `with_chld`.
pub fn signal_set(with_chld: bool) -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    if with_chld {
        s.add(Signal::SIGCHLD);
    }
    s
}

/// The exit code a shell would report for a wait status.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Waits for `pid` while passing every forwarded signal to it; returns its exit code. Other
/// children that exit meanwhile are reaped when `reap_all` (the PID-1 reaper's job).
fn relay(pid: Pid, reap_all: bool) -> i32 {
    let set = signal_set(true);
    loop {
        // Collect what already exited before sleeping in sigwait.
        loop {
            let target = if reap_all { Pid::from_raw(-1) } else { pid };
            match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) => {
                    if st.pid() == Some(pid) {
                        if let Some(code) = exit_code(st) {
                            return code;
                        }
                    }
                }
                Err(nix::errno::Errno::ECHILD) => return 1,
                Err(_) => break,
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
            Err(_) => {}
        }
    }
}

/// Runs `cmd` in the new PID namespace (created by the child's unshare): forks its PID 1, which
/// mounts /proc and execs the command (or, with `reaper`, forks it and reaps). Returns the exit
/// code for the intermediate process; never returns in PID 1.
pub fn run(cmd: Command, reaper: bool, listen_fds: bool) -> anyhow::Result<i32> {
    let set = signal_set(true);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    match fork_single_threaded()? {
        ForkResult::Parent { child } => Ok(relay(child, false)),
        ForkResult::Child => {
            // PID 1 of the new namespace.
            if let Err(e) = super::mounts::mount_proc() {
                eprintln!("burrow-rootlesskit: error: {e:#}");
                std::process::exit(1);
            }
            if !reaper {
                std::process::exit(exec(cmd, listen_fds));
            }
            match fork_single_threaded() {
                Ok(ForkResult::Child) => std::process::exit(exec(cmd, listen_fds)),
                Ok(ForkResult::Parent { child }) => std::process::exit(relay(child, true)),
                Err(e) => {
                    eprintln!("burrow-rootlesskit: error: the reaper cannot fork the command: {e}");
                    std::process::exit(1)
                }
            }
        }
    }
}
