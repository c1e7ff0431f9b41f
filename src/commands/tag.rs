//! `burrow tag SOURCE TARGET`: another name for an image (a new record, same target).

use std::process::ExitCode;

use crate::commands::images::with_store;
use burrow::connection::Globals;
use burrow::images::reference::Reference;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An image name or ID.
    pub source: String,
    /// The new name.
    pub target: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let target = Reference::parse(&args.target)?;
    with_store(g, async |store| {
        burrow::images::tag::tag(store, &args.source, &target).await
    })?;
    Ok(ExitCode::SUCCESS)
}
