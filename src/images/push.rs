//! Pushing an image: blobs the registry lacks are mounted from another repository of the same
//! registry that this store knows holds them, or uploaded; then manifests by digest and the
//! top one by tag.

use std::collections::HashSet;

use hyper::body::Bytes;

use super::catalog::{self, CatalogError};
use super::local::{self, LocalError};
use super::manifest::{self, Descriptor, Index, Kind, Manifest, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::registry::{Registry, RegistryError};
use super::store::{from_pb, Store, StoreError};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0} has no tag to push: push NAME:TAG")]
    NoTag(String),
    #[error("image {name} runs from the shared image store ({file}) and has no layers here to push: pull it from its registry (`burrow pull`), tag and push that")]
    FromStore { name: String, file: String },
}

type Result<T> = std::result::Result<T, PushError>;

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: String,
    pub size: i64,
}

/// Pushes the image named `name` to the registry its name says, through the endpoints a pull
/// would use for it (certs.d hosts.toml, stored credentials; plain HTTP when `insecure`): the
/// one way `push`, `build --push` and `compose push` reach a registry.
pub async fn push_name(
    store: &Store,
    name: &str,
    platform: &Platform,
    insecure: bool,
    hosts_dirs: &[std::path::PathBuf],
    progress: &Progress,
) -> anyhow::Result<Pushed> {
    use anyhow::Context;
    let reference = Reference::parse(name)?;
    let reg =
        super::endpoints::registries_for(&reference.domain, insecure, true, hosts_dirs)?.remove(0);
    push(store, &reg, &reference, platform, progress)
        .await
        .with_context(|| format!("push {}", reference.familiar()))
}

/// The names of every tag of `repository` here (domain and path as `repository`'s, any tag,
/// no digest), sorted: what `push --all-tags` pushes.
pub async fn repository_tags(store: &Store, repository: &Reference) -> Result<Vec<String>> {
    let mut names: Vec<String> = store
        .images()
        .await?
        .into_iter()
        .filter_map(|i| Reference::parse(&i.name).ok())
        .filter(|r| {
            r.domain == repository.domain
                && r.path == repository.path
                && r.tag.is_some()
                && r.digest.is_none()
        })
        .map(|r| r.to_string())
        .collect();
    names.sort();
    Ok(names)
}

/// Pushes the image named `reference` from `store` to its registry.
pub async fn push(
    store: &Store,
    reg: &Registry,
    reference: &Reference,
    platform: &Platform,
    progress: &Progress,
) -> Result<Pushed> {
    let name = reference.to_string();
    let tag = reference
        .tag
        .clone()
        .ok_or_else(|| PushError::NoTag(reference.familiar()))?;
    let img = catalog::record(store, &name).await?;
    if let Some(file) = img.labels.get(crate::containers::shared::STORE_LABEL) {
        return Err(PushError::FromStore {
            name: reference.familiar(),
            file: file.clone(),
        });
    }
    let target = img
        .target
        .as_ref()
        .map(from_pb)
        .ok_or_else(|| CatalogError::NotFound(name.clone()))?;
    progress.line(&format!(
        "The push refers to repository [{}]",
        reference.familiar_repository()
    ));
    // Other repositories of the same registry that hold the same content, for mounts.
    let mut sources = Vec::new();
    for other in store.images().await? {
        if let Ok(r) = Reference::parse(&other.name) {
            if r.domain == reference.domain
                && r.path != reference.path
                && !sources.contains(&r.path)
            {
                sources.push(r.path);
            }
        }
    }
    let repo = &reference.path;
    let data = store.read_verified(&target).await?;
    let mut done = HashSet::new();
    let top = match manifest::kind_of(&target.media_type, &data) {
        Some(Kind::Index) => {
            let idx: Index = serde_json::from_slice(&data).map_err(|err| LocalError::BadJson {
                name: name.clone(),
                digest: target.digest.clone(),
                err,
            })?;
            let mut complete = true;
            for child in &idx.manifests {
                if store.info(&child.digest).await?.is_none() {
                    complete = false;
                }
            }
            if complete {
                for child in &idx.manifests {
                    let cdata = store.read_verified(child).await?;
                    push_manifest(
                        store, reg, repo, &sources, child, &cdata, &mut done, progress,
                    )
                    .await?;
                }
                (target.clone(), data)
            } else {
                // Only some platforms were pulled: push this platform's manifest under the tag.
                let child = local::pick(&name, &idx, platform)?.clone();
                let cdata = store.read_verified(&child).await?;
                progress.line(&format!(
                    "only {} of the image's platforms are here: pushing {} alone",
                    platform.display(),
                    child.digest
                ));
                (child, cdata)
            }
        }
        _ => (target.clone(), data),
    };
    let (top_desc, top_data) = top;
    if manifest::kind_of(&top_desc.media_type, &top_data) == Some(Kind::Manifest) {
        push_manifest(
            store, reg, repo, &sources, &top_desc, &top_data, &mut done, progress,
        )
        .await?;
    }
    reg.put_manifest(
        repo,
        &tag,
        &top_desc.media_type,
        Bytes::from(top_data.clone()),
    )
    .await?;
    Ok(Pushed {
        tag,
        digest: top_desc.digest.clone(),
        size: top_data.len() as i64,
    })
}

/// Bytes per upload request (and in memory at once).
const UPLOAD_CHUNK: i64 = 8 << 20;

/// Uploads a blob from the content store in pieces, checking its digest on the way.
async fn upload(
    store: &Store,
    reg: &Registry,
    repo: &str,
    desc: &Descriptor,
    progress: &Progress,
) -> Result<()> {
    let mut location = reg.upload_start(repo, &desc.digest).await?;
    progress.start(&desc.digest, desc.size.max(0) as u64, 0);
    let mut hasher = manifest::Hasher::default();
    let mut offset = 0i64;
    while offset < desc.size {
        let n = UPLOAD_CHUNK.min(desc.size - offset);
        let data = store.read_range(&desc.digest, offset, n).await?;
        if data.is_empty() {
            break;
        }
        hasher.update(&data);
        let len = data.len();
        location = reg
            .upload_chunk(&location, &desc.digest, offset as u64, Bytes::from(data))
            .await?;
        progress.advance(&desc.digest, len as u64);
        offset += len as i64;
    }
    let got = hasher.finish();
    if got != desc.digest || offset != desc.size {
        return Err(StoreError::DigestMismatch {
            what: format!("{repo} upload (content store)"),
            expected: desc.digest.clone(),
            got,
        }
        .into());
    }
    reg.upload_finish(&location, &desc.digest).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn push_manifest(
    store: &Store,
    reg: &Registry,
    repo: &str,
    sources: &[String],
    desc: &Descriptor,
    data: &[u8],
    done: &mut HashSet<String>,
    progress: &Progress,
) -> Result<()> {
    let m: Manifest = serde_json::from_slice(data).map_err(|err| LocalError::BadJson {
        name: repo.to_owned(),
        digest: desc.digest.clone(),
        err,
    })?;
    let mut blobs = m.layers.clone();
    blobs.push(m.config.clone());
    for b in &blobs {
        if !done.insert(b.digest.clone()) {
            continue;
        }
        if reg.has_blob(repo, &b.digest).await? {
            progress.done(&b.digest, "Layer already exists");
            continue;
        }
        let mut mounted = None;
        for from in sources {
            if reg.mount_blob(repo, &b.digest, from).await? {
                mounted = Some(from.clone());
                break;
            }
        }
        if let Some(from) = mounted {
            progress.done(&b.digest, &format!("Mounted from {from}"));
            continue;
        }
        upload(store, reg, repo, b, progress).await?;
        progress.done(&b.digest, "Pushed");
    }
    reg.put_manifest(
        repo,
        &desc.digest,
        &desc.media_type,
        Bytes::from(data.to_vec()),
    )
    .await?;
    Ok(())
}
