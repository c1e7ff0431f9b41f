//! `burrow diff`: prints a container's changes against its image as Docker does (`A /path`,
//! `C /path`, `D /path`); finding them is `burrow::containers::diff`'s.

use std::process::ExitCode;

use super::Ctx;
use burrow::connection::Globals;

#[derive(Debug, clap::Args)]
pub struct Args {
    pub container: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for c in burrow::containers::diff::diff(&ctx, &args.container).await? {
            println!("{} {}", c.kind, c.path);
        }
        Ok(ExitCode::SUCCESS)
    })
}
