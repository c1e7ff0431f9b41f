//! `burrow tag SOURCE TARGET`: another name for an image (a new record, same target).

use std::collections::HashMap;
use std::process::ExitCode;

use crate::commands::images::with_store;
use burrow::connection::Globals;
use burrow::images::{catalog, manifest::Platform, reference::Reference, store::from_pb};

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
        let found = catalog::find(store, &args.source, &Platform::host()).await?;
        let desc = match store.image(&found[0].name).await? {
            Some(img) => img.target.as_ref().map(from_pb),
            None => None,
        }
        .ok_or_else(|| catalog::CatalogError::NotFound(args.source.clone()))?;
        store
            .put_image(&target.to_string(), &desc, HashMap::new())
            .await?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
