//! `burrow compose down`: flags to the engine's [`DownOptions`].

use std::process::ExitCode;

use burrow::compose::engine::down::{self as engine, DownOptions, RemoveImages};
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::Ctx;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Also remove the project's named volumes (and containers' anonymous ones).
    #[arg(short, long)]
    pub volumes: bool,
    /// Also remove images: "local" (those without a custom tag) or "all".
    #[arg(long, value_name = "TYPE")]
    pub rmi: Option<String>,
    /// Also remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Seconds the containers get to stop.
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
}

pub fn run(args: Args, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let images = match args.rmi.as_deref() {
        None => None,
        Some("local") => Some(RemoveImages::Local),
        Some("all") => Some(RemoveImages::All),
        Some(o) => anyhow::bail!("invalid --rmi {o:?}: use local or all"),
    };
    let opts = DownOptions {
        volumes: args.volumes,
        images,
        remove_orphans: args.remove_orphans,
        timeout: args.timeout,
    };
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        engine::down(&ctx, project, &opts, &super::report).await?;
        Ok(ExitCode::SUCCESS)
    })
}
