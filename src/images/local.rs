//! Images as they sit in containerd: resolving a record to its platform manifest and config,
//! garbage-collection labels that tie blobs and snapshots to the record, and unpacking layers
//! into the snapshotter through the diff service.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::Image;

use super::manifest::{self, Config, Descriptor, Index, Kind, Manifest, Platform};
use super::store::{from_pb, Store, StoreError};

/// Why an image in the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {name}: content {digest} is missing from containerd's store (the pull or load did not finish: pull or load it again)")]
    Missing { name: String, digest: String },
    #[error("image {name}: {digest} is not valid JSON ({err})")]
    BadJson {
        name: String,
        digest: String,
        err: serde_json::Error,
    },
    #[error("image {name} has no manifest for {platform} (it has: {available}); pass --platform to pick another")]
    NoPlatform {
        name: String,
        platform: String,
        available: String,
    },
    #[error("image {name}: {digest} has unsupported media type {media_type:?}")]
    UnknownKind {
        name: String,
        digest: String,
        media_type: String,
    },
    #[error("image {name}: layer {index} unpacked to {got}, but the config says {expected} (the layer is corrupt)")]
    DiffIdMismatch {
        name: String,
        index: usize,
        expected: String,
        got: String,
    },
    #[error(
        "image {name}: the manifest has {layers} layers but the config lists {diff_ids} diff ids"
    )]
    LayerCount {
        name: String,
        layers: usize,
        diff_ids: usize,
    },
}

/// An image resolved to one platform.
#[derive(Debug, Clone)]
pub struct LocalImage {
    pub name: String,
    /// What the record points at (an index or a manifest).
    pub target: Descriptor,
    pub manifest_desc: Descriptor,
    pub manifest: Manifest,
    pub config_desc: Descriptor,
    pub config: Config,
    /// The config exactly as stored (for inspect).
    pub config_raw: serde_json::Value,
    /// Record creation time (seconds since the epoch).
    pub record_created: Option<i64>,
}

impl LocalImage {
    /// The image id Docker shows: the config digest.
    pub fn id(&self) -> &str {
        &self.config_desc.digest
    }

    /// Sum of the (compressed) blob sizes: manifest, config and layers.
    pub fn content_size(&self) -> i64 {
        self.manifest_desc.size
            + self.config_desc.size
            + self.manifest.layers.iter().map(|l| l.size).sum::<i64>()
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    name: &str,
    digest: &str,
    data: &[u8],
) -> Result<T, LocalError> {
    serde_json::from_slice(data).map_err(|err| LocalError::BadJson {
        name: name.to_owned(),
        digest: digest.to_owned(),
        err,
    })
}

async fn read(store: &Store, name: &str, digest: &str) -> Result<Vec<u8>, LocalError> {
    store.read(digest).await.map_err(|e| {
        if e.is_not_found() {
            LocalError::Missing {
                name: name.to_owned(),
                digest: digest.to_owned(),
            }
        } else {
            e.into()
        }
    })
}

/// Picks the manifest for `platform` from an index's entries.
pub fn pick<'a>(
    name: &str,
    index: &'a Index,
    platform: &Platform,
) -> Result<&'a Descriptor, LocalError> {
    index
        .manifests
        .iter()
        .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
        .or_else(|| {
            // An index without platforms (e.g. one image per entry) is taken as this host's.
            (index.manifests.len() == 1 && index.manifests[0].platform.is_none())
                .then(|| &index.manifests[0])
        })
        .ok_or_else(|| LocalError::NoPlatform {
            name: name.to_owned(),
            platform: platform.display(),
            available: available(index),
        })
}

fn available(index: &Index) -> String {
    let v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|m| m.platform.as_ref().map(Platform::display))
        .collect();
    if v.is_empty() {
        "no platforms listed".into()
    } else {
        v.join(", ")
    }
}

/// Resolves a record in the store to its manifest and config for `platform`.
pub async fn resolve(
    store: &Store,
    image: &Image,
    platform: &Platform,
) -> Result<LocalImage, LocalError> {
    let name = image.name.clone();
    let target = image
        .target
        .as_ref()
        .map(from_pb)
        .ok_or_else(|| LocalError::Missing {
            name: name.clone(),
            digest: "(no target)".into(),
        })?;
    let mut desc = target.clone();
    // Nested indexes are followed a few levels deep.
    for _ in 0..4 {
        let data = read(store, &name, &desc.digest).await?;
        match manifest::kind_of(&desc.media_type, &data) {
            Some(Kind::Index) => {
                let index: Index = parse(&name, &desc.digest, &data)?;
                desc = pick(&name, &index, platform)?.clone();
            }
            Some(Kind::Manifest) => {
                let m: Manifest = parse(&name, &desc.digest, &data)?;
                let raw = read(store, &name, &m.config.digest).await?;
                let config: Config = parse(&name, &m.config.digest, &raw)?;
                let config_raw = parse(&name, &m.config.digest, &raw)?;
                return Ok(LocalImage {
                    name,
                    target,
                    manifest_desc: desc,
                    config_desc: m.config.clone(),
                    manifest: m,
                    config,
                    config_raw,
                    record_created: image.created_at.as_ref().map(|t| t.seconds),
                });
            }
            None => {
                return Err(LocalError::UnknownKind {
                    name,
                    digest: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                })
            }
        }
    }
    Err(LocalError::UnknownKind {
        name,
        digest: desc.digest,
        media_type: "index nested too deep".into(),
    })
}

/// Labels for a manifest blob: its config and layers are kept while it is.
pub fn manifest_labels(m: &Manifest) -> HashMap<String, String> {
    let mut l = HashMap::new();
    l.insert(
        "containerd.io/gc.ref.content.config".to_owned(),
        m.config.digest.clone(),
    );
    for (i, layer) in m.layers.iter().enumerate() {
        l.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    l
}

/// Labels for an index blob: its manifests are kept while it is.
pub fn index_labels(index: &Index) -> HashMap<String, String> {
    index
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                format!("containerd.io/gc.ref.content.m.{i}"),
                m.digest.clone(),
            )
        })
        .collect()
}

/// Unpacks the image's layers into the store's snapshotter (skipping what is already there),
/// and labels the config so the snapshots live as long as the image. Returns the top chain id.
pub async fn unpack(
    store: &Store,
    name: &str,
    manifest: &Manifest,
    config_desc: &Descriptor,
    config: &Config,
    mut on_layer: impl FnMut(usize, bool),
) -> Result<String, LocalError> {
    let diff_ids = &config.rootfs.diff_ids;
    let layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| manifest::is_layer(&l.media_type))
        .collect();
    if layers.len() != diff_ids.len() {
        return Err(LocalError::LayerCount {
            name: name.to_owned(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chains = manifest::chain_ids(diff_ids);
    for (i, layer) in layers.iter().enumerate() {
        let chain = &chains[i];
        if store.snapshot_exists(chain).await? {
            on_layer(i, false);
            continue;
        }
        let parent = if i == 0 { "" } else { chains[i - 1].as_str() };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let key = format!("extract-{nanos}-{} {chain}", std::process::id());
        let mounts = store.prepare(&key, parent).await?;
        let applied = match store.apply(layer, mounts).await {
            Ok(d) => d,
            Err(e) => {
                let _ = store.remove_snapshot(&key).await;
                return Err(e.into());
            }
        };
        // The content store verified the blob's digest; owners squashed on the way in change
        // the unpacked digest, so only an unsquashed unpack is held to the config's.
        if applied != diff_ids[i] && !store.squashed_owners {
            let _ = store.remove_snapshot(&key).await;
            return Err(LocalError::DiffIdMismatch {
                name: name.to_owned(),
                index: i,
                expected: diff_ids[i].clone(),
                got: applied,
            });
        }
        if let Err(e) = store.commit_snapshot(chain, &key).await {
            let _ = store.remove_snapshot(&key).await;
            // Someone else unpacked the same layer meanwhile: theirs is as good as ours.
            if e.code() != Some(tonic::Code::AlreadyExists) {
                return Err(e.into());
            }
        }
        let mut labels = HashMap::new();
        labels.insert("containerd.io/uncompressed".to_owned(), diff_ids[i].clone());
        store.set_labels(&layer.digest, labels).await?;
        on_layer(i, true);
    }
    let top = chains.last().cloned().unwrap_or_default();
    if !top.is_empty() {
        let mut labels = HashMap::new();
        labels.insert(
            format!("containerd.io/gc.ref.snapshot.{}", store.snapshotter),
            top.clone(),
        );
        store.set_labels(&config_desc.digest, labels).await?;
    }
    Ok(top)
}
