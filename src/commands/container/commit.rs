//! `burrow commit`: a container's changes as a new image; the work is
//! `burrow::containers::commit`'s.

use std::process::ExitCode;

use anyhow::Context;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::commit::{commit, Options};
use burrow::dockerfile::parse_changes;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub opts: CommitFlags,
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

// The flags of `commit` (and `compose commit`); a plain comment (clap reads doc comments).
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct CommitFlags {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply a Dockerfile instruction to the image's config (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause the container while committing (--pause=false commits it running).
    #[arg(short, long, default_value_t = true)]
    pub pause: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = Options {
        message: args.opts.message.clone(),
        author: args.opts.author.clone(),
        pause: args.opts.pause,
        changes: parse_changes(&args.opts.change).context("commit --change")?,
        config: None,
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let made = commit(&ctx, &args.container, args.name.as_deref(), &opts).await?;
        if made.unpausable {
            eprintln!(
                "WARNING: {} was committed running: containers here cannot be paused (no freezer cgroup, as rootless on cgroup v1); --pause=false says so and silences this",
                args.container
            );
        }
        println!("{}", made.image.id);
        Ok(ExitCode::SUCCESS)
    })
}
