//! Top-level argument parsing, global flags and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// burrow: rootless-first containers with a Docker/nerdctl-compatible CLI on containerd.
#[derive(Debug, Parser)]
#[command(name = "burrow", version, propagate_version = true)]
pub struct Cli {
    /// Print debug logs.
    #[arg(long, global = true, env = "BURROW_DEBUG")]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the burrow version.
    Version(commands::version::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
}

/// Parses the command line, runs the command and maps errors to Docker's exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.debug);
    let result = match cli.command {
        Command::Version(args) => commands::version::run(args),
        Command::Completion(args) => commands::completion::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("burrow: {err:#}");
            // Docker and nerdctl exit 125 when the CLI or the daemon failed.
            ExitCode::from(125)
        }
    }
}

fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
