//! Tagging: another name for an image already here (`burrow tag`, the Docker API's tag).

use std::collections::HashMap;

use super::catalog::{self, CatalogError};
use super::manifest::Platform;
use super::reference::Reference;
use super::store::{from_pb, Store};

/// Gives the image `source` (a name or ID) the name `target`.
pub async fn tag(store: &Store, source: &str, target: &Reference) -> anyhow::Result<()> {
    let found = catalog::find(store, source, &Platform::host()).await?;
    let desc = match store.image(&found[0].name).await? {
        Some(img) => img.target.as_ref().map(from_pb),
        None => None,
    }
    .ok_or_else(|| CatalogError::NotFound(source.to_string()))?;
    store
        .put_image(&target.to_string(), &desc, HashMap::new())
        .await?;
    Ok(())
}
