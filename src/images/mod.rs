//! Images: references, registries, containerd's content store and snapshotter, archives.

pub mod archive;
pub mod auth;
pub mod catalog;
pub mod endpoints;
pub mod format;
pub mod hosts;
pub mod local;
pub mod manifest;
pub mod owners;
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
    let mut store = store::Store::new(channel, &ep.namespace, &ep.snapshotter);
    store.squashed_owners = ep.launcher.as_ref().is_some_and(|l| l.single_id());
    Ok(store)
}

/// What a pull into a single-id rootless setup says once: the files of other owners become the
/// user's (see [`owners`]).
pub const SQUASHED_OWNERS_NOTE: &str = "note: your user has no subordinate ids, so every file of \
the image is unpacked as yours (uid 0 in containers); see `burrow setup check` to add a range";
