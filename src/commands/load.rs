//! `burrow load`: images from an OCI archive or a docker-archive (file or stdin) into containerd.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::commands::images::with_store;
use crate::commands::pull::platform_arg;
use burrow::connection::Globals;
use burrow::images::{archive, reference};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Read from this tar archive (plain or gzip) instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to unpack from a multi-platform archive [default: this host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Import the blobs of every platform the archive holds.
    #[arg(long)]
    pub all_platforms: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = archive::LoadOptions {
        platform: platform_arg(args.platform.as_deref())?,
        all_platforms: args.all_platforms,
    };
    let loaded = with_store(g, async |store| {
        archive::load(store, args.input.as_deref(), &opts)
            .await
            .context("load")
    })?;
    if !args.quiet {
        for l in loaded {
            if l.names.is_empty() {
                println!("Loaded image ID: {}", l.id);
            }
            for n in l.names {
                println!("Loaded image: {}", reference::familiar(&n));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
