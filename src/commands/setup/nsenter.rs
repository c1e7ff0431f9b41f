//! `burrow setup nsenter`: runs a command inside the rootless containerd's user, mount and network namespaces.

use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::nsenter;

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
    // Single-threaded here: no runtime or thread has started yet.
    let failed = nsenter::exec(g, args.command)?;
    eprintln!(
        "burrow setup nsenter: cannot run {}: {}",
        failed.program, failed.errno
    );
    Ok(ExitCode::from(failed.exit_code()))
}
