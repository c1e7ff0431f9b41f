//! Tagging: another name for an image already here (`burrow tag`, the Docker API's tag).

use std::collections::HashMap;

use super::catalog::{self, CatalogError};
use super::manifest::Platform;
use super::reference::Reference;
use super::store::{from_pb, Store};

/// Gives the image `source` (a name or ID) the name `target`.
pub async fn tag(store: &Store, source: &str, target: &Reference) -> anyhow::Result<()> {
    let found = catalog::find(store, source, &Platform::host()).await?;
    let img = store.image(&found[0].name).await?;
    let desc = img
        .as_ref()
        .and_then(|i| i.target.as_ref().map(from_pb))
        .ok_or_else(|| CatalogError::NotFound(source.to_string()))?;
    // A name for an image from the shared store is one too (it has no layers here, and its
    // file's mount serves it).
    use crate::containers::shared::{MOUNT_LABEL, STORE_LABEL};
    let labels: HashMap<String, String> = img
        .as_ref()
        .map(|i| {
            i.labels
                .iter()
                .filter(|(k, _)| [STORE_LABEL, MOUNT_LABEL].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    store.put_image(&target.to_string(), &desc, labels).await?;
    Ok(())
}
