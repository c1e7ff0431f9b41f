//! Images: references, registries, containerd's content store and snapshotter, archives.

pub mod archive;
pub mod auth;
pub mod catalog;
pub mod format;
pub mod hosts;
pub mod local;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod save;
pub mod store;
pub mod time;

use crate::connection::{self, ConnectError, Endpoint};

/// A store on the endpoint's containerd, namespace and snapshotter.
pub async fn open_store(ep: &Endpoint) -> Result<store::Store, ConnectError> {
    let channel = connection::channel(ep).await?;
    Ok(store::Store::new(channel, &ep.namespace, &ep.snapshotter))
}
