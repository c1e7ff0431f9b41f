//! `burrow completion SHELL` and the hidden `burrow man DIR`: generated from the clap definition.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `cmd` (the whole command line's definition).
pub fn run(args: Args, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, &mut cmd, "burrow", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write burrow.1, burrow-setup.1, ... into (created when missing).
    pub dir: PathBuf,
}

/// Writes the man pages of `cmd` (the whole command line's definition).
pub fn run_man(args: ManArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    clap_mangen::generate_to(cmd, &args.dir)
        .with_context(|| format!("cannot write man pages into {}", args.dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
