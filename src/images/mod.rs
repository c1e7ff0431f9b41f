//! Images: references, registries, containerd's content store and snapshotter, archives, and
//! the image a container runs.

pub mod archive;
pub mod auth;
pub mod catalog;
pub mod compression;
pub mod endpoints;
pub mod hosts;
pub mod https;
pub mod import;
pub mod list;
pub mod local;
pub mod login;
pub mod manifest;
pub mod manifestlist;
pub mod owners;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod runnable;
pub mod save;
pub mod search;
pub mod store;
pub mod tag;
pub mod time;
pub mod userdb;

use crate::client::{self, Client};
use crate::connection::Endpoint;

/// A store on the endpoint's containerd, namespace and snapshotter, over a new connection.
pub async fn open_store(ep: &Endpoint) -> Result<store::Store, client::Error> {
    Ok(store::Store::for_endpoint(Client::connect(ep).await?, ep))
}

/// What a pull into a single-id rootless setup says once: the files of other owners become the
/// user's (see [`owners`]).
pub const SQUASHED_OWNERS_NOTE: &str = "note: your user has no subordinate ids, so every file of \
the image is unpacked as yours (uid 0 in containers); see `burrow setup check` to add a range";
