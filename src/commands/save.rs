//! `burrow save`: images to a tar that is both an OCI archive and a docker-archive.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::commands::images::with_store;
use crate::commands::pull::platform_arg;
use burrow::connection::Globals;
use burrow::images::save;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Platform whose manifest names the images in manifest.json [default: this host's].
    #[arg(long)]
    pub platform: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let platform = platform_arg(args.platform.as_deref())?;
    match &args.output {
        Some(path) => {
            let (partial, file) = save::PartialFile::create(path)?;
            let res = with_store(g, async |store| {
                Ok(save::save_buffered(store, &args.images, &platform, file).await?)
            });
            match res {
                Ok(()) => partial.commit()?,
                Err(e) => {
                    partial.abandon();
                    return Err(e);
                }
            }
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("cowardly refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            with_store(g, async |store| {
                let stdout = std::io::stdout();
                Ok(save::save_buffered(store, &args.images, &platform, stdout.lock()).await?)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
