//! Running the command in the launcher's place: exec with the launcher's signal mask cleared,
//! failing with the exit code a shell would give.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

/// Replaces this process with `cmd`; returns an exit code only when exec fails (127: not found,
/// 126: not executable), as a shell would.
pub fn exec(mut cmd: Command, listen_fds: bool) -> i32 {
    if listen_fds {
        cmd.env("LISTEN_PID", std::process::id().to_string());
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let err = cmd.exec();
    let prog = cmd.get_program().to_string_lossy().into_owned();
    eprintln!("burrow-rootlesskit: error: cannot run {prog}: {err}");
    match err.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    }
}
