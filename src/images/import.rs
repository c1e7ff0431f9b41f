//! `burrow import`: a filesystem tarball (plain or gzip) as a one-layer image: the layer, a config
//! and a manifest written into the content store under a lease, unpacked, and its record.

use std::collections::HashMap;
use std::io::Read;
use std::time::SystemTime;

use anyhow::Context;

use super::compression::{self, Compression};
use super::manifest::{self, Config, Descriptor, History, Manifest, Platform, RootFs};
use super::reference::Reference;
use super::store::Store;
use super::{local, time};
use crate::dockerfile::{apply_changes, Instruction};

/// What is wrong with what `import` was given (the caller's to mend, not the store's).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("invalid reference format: {0}")]
    Reference(super::reference::ReferenceError),
    #[error("cannot decompress the tarball (give a plain, gzip or zstd tar): {0}")]
    Decompress(std::io::Error),
}

/// What `import` made.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The config digest (Docker's image id).
    pub id: String,
    /// The record's name (`<none>@DIGEST` when none was given).
    pub name: String,
}

/// The tarball at an http(s) URL (`import URL`), downloaded with the proxies and CAs the
/// builder's ADD uses.
pub async fn fetch_url(url: &str) -> anyhow::Result<Vec<u8>> {
    let client = super::https::client(&[]).map_err(anyhow::Error::msg)?;
    let dir = tempfile::Builder::new()
        .prefix("burrow-import-")
        .tempdir()?;
    match crate::build::fetch::download(&client, url, dir.path(), None, None).await? {
        crate::build::fetch::Fetched::Body(got, _) => {
            std::fs::read(&got.path).with_context(|| format!("reading what {url} sent"))
        }
        crate::build::fetch::Fetched::NotModified => {
            anyhow::bail!("{url}: the server answered 304 Not Modified to a plain GET")
        }
    }
}

/// Imports the tarball `data` (plain or gzip) as an image named `name` (a reference, or none).
/// `comment` is the history entry's (Docker's: "Imported from FILE", or the -m message);
/// `changes` (`--change` instructions) make the image's config; `platform` is the one the
/// image says it is for (`--platform`; the host's when none).
pub async fn import(
    store: &Store,
    data: Vec<u8>,
    name: Option<&str>,
    comment: &str,
    changes: &[Instruction],
    platform: Option<&Platform>,
) -> anyhow::Result<Imported> {
    let image_config = match changes {
        [] => None,
        _ => {
            let mut c = serde_json::Value::Null;
            apply_changes(&mut c, changes).context("import --change")?;
            Some(c)
        }
    };
    let name = name
        .map(|n| Reference::parse(n).map(|r| r.to_string()))
        .transpose()
        .map_err(ImportError::Reference)?;
    let diff_id = match compression::detect(&data) {
        Compression::Plain => manifest::sha256(&data),
        _ => {
            let mut plain = Vec::new();
            compression::decompressed(data.as_slice())
                .and_then(|mut r| r.read_to_end(&mut plain))
                .map_err(ImportError::Decompress)?;
            manifest::sha256(&plain)
        }
    };
    let media_type = match compression::detect(&data) {
        Compression::Plain => manifest::OCI_LAYER,
        Compression::Gzip => manifest::OCI_LAYER_GZIP,
        Compression::Zstd => manifest::OCI_LAYER_ZSTD,
    };
    let layer = descriptor(media_type, &data);
    let platform = platform.cloned().unwrap_or_else(Platform::host);
    let now = time::rfc3339(SystemTime::now());
    let config = Config {
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        created: Some(now.clone()),
        config: image_config,
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(now),
            author: None,
            created_by: None,
            comment: Some(comment.to_string()),
            empty_layer: false,
        }],
        ..Default::default()
    };
    build_image(store, vec![(layer, data)], config, name).await
}

/// A descriptor of `data` with `media_type`.
pub fn descriptor(media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: manifest::sha256(data),
        size: data.len() as i64,
        platform: None,
        annotations: Default::default(),
    }
}

/// Writes new layers (with their data), `config` (listing every layer's diff id) and an OCI
/// manifest over `base_layers` + the new ones, unpacks it and records it under `name`.
pub async fn build_image(
    store: &Store,
    new_layers: Vec<(Descriptor, Vec<u8>)>,
    config: Config,
    name: Option<String>,
) -> anyhow::Result<Imported> {
    build_on(store, Vec::new(), new_layers, config, name).await
}

/// [`build_image`] on top of existing layers.
pub async fn build_on(
    store: &Store,
    base_layers: Vec<Descriptor>,
    new_layers: Vec<(Descriptor, Vec<u8>)>,
    config: Config,
    name: Option<String>,
) -> anyhow::Result<Imported> {
    let leased = store.with_lease("import").await?;
    let result = write_image(&leased, base_layers, new_layers, &config, name).await;
    if let Err(err) = leased.release().await {
        tracing::warn!(%err, "could not release the import lease (it expires in a day)");
    }
    result
}

/// [`build_on`] without a lease of its own (the caller holds one).
pub async fn write_image(
    store: &Store,
    base_layers: Vec<Descriptor>,
    new_layers: Vec<(Descriptor, Vec<u8>)>,
    config: &Config,
    name: Option<String>,
) -> anyhow::Result<Imported> {
    let mut layers = base_layers;
    for (desc, data) in new_layers {
        store.put(&desc, &data, HashMap::new()).await?;
        layers.push(desc);
    }
    let config_data = serde_json::to_vec(config)?;
    let config_desc = descriptor(manifest::OCI_CONFIG, &config_data);
    store
        .put(&config_desc, &config_data, HashMap::new())
        .await?;
    let m = Manifest {
        schema_version: 2,
        media_type: Some(manifest::OCI_MANIFEST.into()),
        config: config_desc.clone(),
        layers,
        annotations: Default::default(),
    };
    let m_data = serde_json::to_vec(&m)?;
    let m_desc = descriptor(manifest::OCI_MANIFEST, &m_data);
    store
        .put(&m_desc, &m_data, local::manifest_labels(&m))
        .await?;
    let name = name.unwrap_or_else(|| format!("<none>@{}", m_desc.digest));
    local::unpack(store, &name, &m, &config_desc, config, |_, _| {}).await?;
    store.put_image(&name, &m_desc, HashMap::new()).await?;
    Ok(Imported {
        id: config_desc.digest,
        name,
    })
}
