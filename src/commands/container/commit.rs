//! `burrow commit`: a container's changes as a new image; the work is
//! `burrow::containers::commit`'s.

use std::process::ExitCode;

use anyhow::bail;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::commit::{commit, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image (not supported yet).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    if !args.change.is_empty() {
        bail!("commit: --change is not supported yet");
    }
    let opts = Options {
        message: args.message.clone(),
        author: args.author.clone(),
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let made = commit(&ctx, &args.container, args.name.as_deref(), &opts).await?;
        println!("{}", made.id);
        Ok(ExitCode::SUCCESS)
    })
}
