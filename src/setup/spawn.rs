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
