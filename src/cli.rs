//! Top-level argument parsing, global flags and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::connection::{Globals, RawGlobals, UserEnv};

/// burrow: rootless-first containers with a Docker/nerdctl-compatible CLI on containerd.
#[derive(Debug, Parser)]
#[command(name = "burrow", version, propagate_version = true)]
pub struct Cli {
    /// Print debug logs.
    #[arg(long, global = true, env = "BURROW_DEBUG")]
    pub debug: bool,

    /// containerd socket to use (default: the user's rootless containerd, else the system one).
    #[arg(long, global = true, env = "CONTAINERD_ADDRESS", value_name = "SOCKET")]
    pub address: Option<PathBuf>,

    /// containerd namespace [default: default].
    #[arg(short = 'n', long, global = true, env = "CONTAINERD_NAMESPACE")]
    pub namespace: Option<String>,

    /// Directory for burrow's own state [default: ~/.local/share/nerdctl rootless, /var/lib/nerdctl rootful].
    #[arg(long, global = true, env = "BURROW_DATA_ROOT", value_name = "DIR")]
    pub data_root: Option<PathBuf>,

    /// Snapshotter for images and containers [default: overlayfs].
    #[arg(long, global = true, env = "CONTAINERD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,

    /// Cgroup manager: systemd, cgroupfs or none [default: decided from the host and mode].
    #[arg(long, global = true, env = "BURROW_CGROUP_MANAGER")]
    pub cgroup_manager: Option<String>,

    /// burrow.toml to read [default: ~/.config/burrow/burrow.toml, /etc/burrow/burrow.toml as root].
    #[arg(long, global = true, env = "BURROW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the client and server versions.
    Version(commands::version::Args),
    /// Show how burrow reaches containerd and how that containerd is set up.
    Info(commands::info::Args),
    /// Set up, inspect and remove the per-user rootless containerd.
    #[command(subcommand)]
    Setup(commands::setup::Command),
    /// Load images from an OCI archive or a docker-archive (file or stdin).
    Load(commands::load::Args),
    /// Pull an image from a registry.
    Pull(commands::pull::Args),
    /// Log in to a registry (credentials go to ~/.docker/config.json).
    Login(commands::login::LoginArgs),
    /// Log out from a registry.
    Logout(commands::login::LogoutArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(commands::completion::Args),
    /// Write man pages for every command into DIR.
    #[command(hide = true)]
    Man(commands::completion::ManArgs),
}

/// Parses the command line, runs the command and maps errors to Docker's exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let raw = RawGlobals {
        config: cli.config,
        address: cli.address,
        namespace: cli.namespace,
        data_root: cli.data_root,
        debug: cli.debug,
        snapshotter: cli.snapshotter,
        cgroup_manager: cli.cgroup_manager,
    };
    let result = Globals::load(raw, &UserEnv::current())
        .map_err(anyhow::Error::from)
        .and_then(|g| {
            init_logging(g.debug);
            dispatch(cli.command, &g)
        });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("burrow: {err:#}");
            // Docker and nerdctl exit 125 when the CLI or the daemon failed.
            ExitCode::from(125)
        }
    }
}

fn dispatch(command: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match command {
        Command::Version(args) => commands::version::run(args, g),
        Command::Info(args) => commands::info::run(args, g),
        Command::Setup(cmd) => commands::setup::run(cmd, g),
        Command::Load(args) => commands::load::run(args, g),
        Command::Pull(args) => commands::pull::run(args, g),
        Command::Login(args) => commands::login::login(args),
        Command::Logout(args) => commands::login::logout(args),
        Command::Completion(args) => commands::completion::run(args),
        Command::Man(args) => commands::completion::run_man(args),
    }
}

fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
