//! `burrow export`: a container's filesystem as a tar, to stdout or a file; the archiving is
//! `burrow::containers::copy::transfer::ContainerFs::export`'s.

use std::process::ExitCode;

use anyhow::{bail, Context};
use std::io::IsTerminal;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::copy::transfer::ContainerFs;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<String>,
    pub container: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let fs = ContainerFs::open(&ctx, &args.container).await?;
        fs.exportable()?;
        match &args.output {
            Some(path) => {
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("cannot create {path}"))?,
                );
                fs.export(&mut f)?;
            }
            None => fs.export(&mut std::io::stdout().lock())?,
        }
        Ok(ExitCode::SUCCESS)
    })
}
