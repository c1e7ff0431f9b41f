//! `burrow setup nsenter`: runs a command inside the rootless containerd's user, mount and network namespaces.

use std::ffi::CString;
use std::process::ExitCode;

use anyhow::{bail, Context};

use burrow::connection::{self, Globals, Mode};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example: burrow setup nsenter -- ip addr   (the namespace's tap0 and bridges)"
)]
pub struct Args {
    /// The command and its arguments [default: $SHELL, else /bin/sh].
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let ep = connection::resolve(g)?;
    if ep.mode != Mode::Rootless {
        bail!(
            "there is no rootless containerd to enter (burrow uses {} rootful); set one up with `burrow setup install`",
            ep.socket.display()
        );
    }
    let cwd = std::env::current_dir().ok();
    // Single-threaded here: no runtime or thread has started yet.
    connection::enter_launcher_namespaces_with_net(&ep)?;
    if let Some(d) = cwd {
        if std::env::set_current_dir(&d).is_err() {
            let _ = std::env::set_current_dir("/");
        }
    }
    let argv: Vec<String> = if args.command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        args.command
    };
    let c: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument contains a NUL byte")?;
    let err = nix::unistd::execvp(&c[0], &c).unwrap_err();
    eprintln!("burrow setup nsenter: cannot run {}: {err}", argv[0]);
    // As a shell does: 127 when not found, 126 when not executable.
    Ok(ExitCode::from(if err == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    }))
}
