//! `burrow save`: images to a tar that is both an OCI archive and a docker-archive.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

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
            // Written next to the target and renamed, so a failure leaves no half archive.
            let tmp = path.with_extension(format!("partial{}", std::process::id()));
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            let res = with_store(g, async |store| {
                let mut out = std::io::BufWriter::new(file);
                save::save(store, &args.images, &platform, &mut out).await?;
                use std::io::Write;
                out.flush().context("write the archive")?;
                Ok(())
            });
            match res {
                Ok(()) => std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
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
                let mut out = std::io::BufWriter::new(stdout.lock());
                save::save(store, &args.images, &platform, &mut out).await?;
                use std::io::Write;
                out.flush().context("write the archive")?;
                Ok(())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
