//! Runs a program inside the rootless containerd's user, mount and network namespaces (`burrow
//! setup nsenter`).

use std::ffi::CString;

use anyhow::{bail, Context};
use nix::errno::Errno;

use crate::connection::{self, Globals, Mode};

/// The program could not be executed inside the namespaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecFailed {
    /// The program as asked for.
    pub program: String,
    pub errno: Errno,
}

impl ExecFailed {
    /// The exit status a shell gives: 127 when not found, 126 when not executable.
    pub fn exit_code(&self) -> u8 {
        if self.errno == Errno::ENOENT {
            127
        } else {
            126
        }
    }
}

/// Enters the rootless containerd's namespaces (keeping the working directory when it is there,
/// else /) and execs `command`, or `$SHELL` (else /bin/sh) when it is empty. Returns only when
/// the program could not be executed. Call it before any thread or async runtime starts: setns
/// is per thread.
pub fn exec(g: &Globals, command: Vec<String>) -> anyhow::Result<ExecFailed> {
    let ep = connection::resolve(g)?;
    if ep.mode != Mode::Rootless {
        bail!(
            "there is no rootless containerd to enter (burrow uses {} rootful); set one up with `burrow setup install`",
            ep.socket.display()
        );
    }
    let cwd = std::env::current_dir().ok();
    connection::enter_launcher_namespaces_with_net(&ep)?;
    if let Some(d) = cwd {
        if std::env::set_current_dir(&d).is_err() {
            let _ = std::env::set_current_dir("/");
        }
    }
    let argv: Vec<String> = if command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        command
    };
    let c: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument contains a NUL byte")?;
    let errno = nix::unistd::execvp(&c[0], &c).unwrap_err();
    Ok(ExecFailed {
        program: argv[0].clone(),
        errno,
    })
}
