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
/// children that exit meanwhile are reaped when `reap_all` (the PID-1 reaper's job). With
/// `shielded` (`pid` is a PID namespace's init running the command), a terminating signal it
/// does not catch is sent as SIGKILL.
fn relay(pid: Pid, reap_all: bool, shielded: bool) -> i32 {
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
                let sig = if shielded && terminates(sig) && !catches(pid, sig) {
                    Signal::SIGKILL
                } else {
                    sig
                };
                let _ = kill(pid, sig);
            }
            Err(_) => {}
        }
    }
}

/// The new PID namespace's PID 1, forked and waiting for [`Pid1::go`].
pub struct Pid1 {
    pid: Pid,
    gate: std::fs::File,
}

impl Pid1 {
    /// Its pid as this (the intermediate) process sees it: the host's view.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Lets it run the command; relays signals to it until it exits and returns the exit code
    /// for the intermediate process. Without a reaper the command is PID 1 itself, which the
    /// kernel shields from signals it does not handle: a terminating signal it would not catch
    /// becomes SIGKILL, so the command still ends as it would outside a PID namespace.
    pub fn go(mut self, reaper: bool) -> i32 {
        use std::io::Write;
        let _ = self.gate.write_all(b"g");
        drop(self.gate);
        relay(self.pid, false, !reaper)
    }

    /// Ends it without running the command (the launcher failed before GO).
    pub fn abandon(self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

/// Whether `sig`'s default action ends a process.
fn terminates(sig: Signal) -> bool {
    matches!(
        sig,
        Signal::SIGINT
            | Signal::SIGTERM
            | Signal::SIGHUP
            | Signal::SIGQUIT
            | Signal::SIGUSR1
            | Signal::SIGUSR2
    )
}

/// Whether `pid` has a handler for `sig` (its SigCgt mask in /proc).
fn catches(pid: Pid, sig: Signal) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig as i32 - 1)) != 0)
}

/// Forks PID 1 of the new PID namespace (created by the child's unshare). It waits for
/// [`Pid1::go`], then mounts /proc and execs the command (or, with `reaper`, forks it and
/// reaps); it never returns.
pub fn start(cmd: Command, reaper: bool, listen_fds: bool) -> anyhow::Result<Pid1> {
    let set = signal_set(true);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    let (rx, tx) = nix::unistd::pipe()?;
    match fork_single_threaded()? {
        ForkResult::Parent { child } => {
            drop(rx);
            Ok(Pid1 {
                pid: child,
                gate: std::fs::File::from(tx),
            })
        }
        ForkResult::Child => {
            // PID 1 of the new namespace: run once the launcher says GO (the gate closes
            // without a byte when the intermediate process dies first).
            drop(tx);
            let mut go = [0u8; 1];
            let mut rx = std::fs::File::from(rx);
            if !matches!(std::io::Read::read(&mut rx, &mut go), Ok(1)) {
                std::process::exit(1);
            }
            drop(rx);
            if let Err(e) = super::mounts::mount_proc() {
                eprintln!("burrow-rootlesskit: error: {e:#}");
                std::process::exit(1);
            }
            if !reaper {
                std::process::exit(exec(cmd, listen_fds));
            }
            match fork_single_threaded() {
                Ok(ForkResult::Child) => std::process::exit(exec(cmd, listen_fds)),
                Ok(ForkResult::Parent { child }) => std::process::exit(relay(child, true, false)),
                Err(e) => {
                    eprintln!("burrow-rootlesskit: error: the reaper cannot fork the command: {e}");
                    std::process::exit(1)
                }
            }
        }
    }
}
