//! `burrow setup supervise`: the service where there is no systemd; runs launcher + containerd and restarts them when they die.

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::{programs, supervise, supervisor};

use super::NetArg;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Start the supervisor in the background unless it already runs, and return.
    #[arg(long)]
    pub background: bool,
    /// The RootlessKit-compatible launcher [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// The OCI runtime: runc or crun [default: runc when installed, else crun].
    #[arg(long, value_parser = ["runc", "crun"])]
    pub runtime: Option<String>,
    /// Also run and restart the socket-bypass service (burrow-bypass at this path).
    #[arg(long, value_name = "PATH")]
    pub bypass: Option<PathBuf>,
    /// Also run and restart the Docker API on $XDG_RUNTIME_DIR/burrow/docker.sock [default: what
    /// `setup install --docker-api` chose].
    #[arg(long)]
    pub docker_api: bool,
    /// The namespace's network [default: what `setup install --net` chose, else builtin].
    #[arg(long, value_enum)]
    pub net: Option<NetArg>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let layout = supervise::supervised_layout(g, args.net.map(Into::into))?;
    let runtime = args.runtime.unwrap_or_else(programs::default_runtime);
    let docker_api = args.docker_api || supervise::installed_docker_api(&layout);
    if args.background {
        let started = supervise::start_background(
            &layout,
            args.launcher.as_deref(),
            &runtime,
            args.bypass.as_deref(),
            docker_api,
        )?;
        match started {
            Some(pid) => println!(
                "started the supervised rootless containerd (pid {pid}; logs: {})",
                layout.log.display()
            ),
            None => println!("the supervised rootless containerd already runs"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let launcher = programs::find_launcher(args.launcher.as_deref())?;
    supervisor::run(
        &layout,
        &launcher,
        &runtime,
        args.bypass.as_deref(),
        docker_api,
    )?;
    Ok(ExitCode::SUCCESS)
}
