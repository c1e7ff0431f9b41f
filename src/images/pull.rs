//! Pulling an image: resolve the reference on the registry, pick the platform(s) from an index,
//! fetch blobs in parallel straight into containerd's content store under a lease (resuming
//! partial writes with ranged requests; containerd verifies every digest on commit), write
//! manifests with GC labels, unpack, and point the image record at the result.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::local::{self, LocalError};
use super::manifest::{self, Config, Descriptor, Index, Kind, Manifest, Platform};
use super::progress::Progress;
use super::reference::Reference;
use super::registry::{Registry, RegistryError};
use super::store::{Store, StoreError};

/// Blobs fetched at once.
const PARALLEL: usize = 3;
/// Bytes gathered before a content write message.
const WRITE_CHUNK: usize = 1 << 20;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("{what}: {digest} from {host} is not valid JSON: {err}")]
    BadJson {
        what: String,
        host: String,
        digest: String,
        err: serde_json::Error,
    },
    #[error("{what}: {digest} from {host} is neither an image index nor a manifest (media type {media_type:?})")]
    UnknownKind {
        what: String,
        host: String,
        digest: String,
        media_type: String,
    },
    #[error("{what}: the registry sent more than the {size} bytes of {digest}")]
    TooLong {
        what: String,
        digest: String,
        size: i64,
    },
    #[error("a download task failed: {0}")]
    Task(String),
    #[error("{what} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    WrongPlatform {
        what: String,
        wanted: String,
        actual: String,
    },
}

type Result<T> = std::result::Result<T, PullError>;

/// What to pull besides the reference.
#[derive(Debug, Clone)]
pub struct PullOptions {
    pub platform: Platform,
    /// The platform was asked for (`--platform`): an image made for one other platform only is
    /// refused, as Docker refuses it (without it, such an image is pulled as it is).
    pub strict_platform: bool,
    pub all_platforms: bool,
    /// Unpack into the snapshotter (the platform's manifest only).
    pub unpack: bool,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The record's name.
    pub name: String,
    /// The digest of what the name points at (index or manifest).
    pub digest: String,
    /// Blobs actually downloaded (0: everything was already here).
    pub downloaded: usize,
    /// The name now points at something it did not before (it was absent, or another
    /// digest): Docker's "Downloaded newer image" rather than "Image is up to date".
    pub updated: bool,
}

fn parse<T: serde::de::DeserializeOwned>(
    what: &str,
    host: &str,
    digest: &str,
    data: &[u8],
) -> Result<T> {
    serde_json::from_slice(data).map_err(|err| PullError::BadJson {
        what: what.to_owned(),
        host: host.to_owned(),
        digest: digest.to_owned(),
        err,
    })
}

/// A manifest and its config: descriptor, bytes, parsed manifest, config bytes, parsed config.
type Fetched = (Descriptor, Vec<u8>, Manifest, Vec<u8>, Config);

/// Pulls `reference` into `store`.
pub async fn pull(
    store: &Store,
    reg: Arc<Registry>,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<Progress>,
) -> Result<Pulled> {
    let what = reference.familiar();
    let repo = reference.path.clone();
    let (top, top_data) = reg.manifest(&repo, reference.object(), &what).await?;
    // Said once the registry has the image, as Docker says it (a Docker API client is answered
    // with an error status when nothing was said before the pull failed).
    progress.line(&format!(
        "{}: Pulling from {}",
        reference
            .tag
            .as_deref()
            .or(reference.digest.as_deref())
            .unwrap_or("latest"),
        reference.familiar_repository()
    ));
    let leased = store.with_lease("pull").await?;
    // Dropped before the end (a Docker API client went away): undo the partial pull.
    let mut unfinished = Unfinished(Some(leased.clone()));
    let result = pull_tree(
        &leased, &reg, &repo, &what, &top, &top_data, opts, &progress,
    )
    .await;
    let result = match result {
        Ok(downloaded) => {
            let name = reference.to_string();
            let mut target = top.clone();
            target.platform = None;
            // A record that ran from the shared store now has its layers, but its snapshot may
            // still be the store file's mount (unpacking skips a snapshot that is there): keep
            // where that is, so that removing the image unmounts it.
            let mount = crate::containers::shared::MOUNT_LABEL;
            let (labels, before): (HashMap<String, String>, Option<String>) =
                match leased.image(&name).await {
                    Ok(Some(old)) => (
                        old.labels
                            .get(mount)
                            .map(|t| HashMap::from([(mount.to_string(), t.clone())]))
                            .unwrap_or_default(),
                        old.target.map(|t| t.digest),
                    ),
                    _ => (HashMap::new(), None),
                };
            let updated = before.as_deref() != Some(top.digest.as_str());
            leased
                .put_image(&name, &target, labels)
                .await
                .map(|_| Pulled {
                    name,
                    digest: top.digest.clone(),
                    downloaded,
                    updated,
                })
                .map_err(PullError::from)
        }
        Err(e) => Err(e),
    };
    unfinished.0 = None;
    if let Err(err) = leased.release().await {
        tracing::warn!(%err, "could not release the pull lease (it expires in a day)");
    }
    result
}

/// A pull in progress; when its future is dropped before the end, the partial content and the
/// lease go ([`Store::cancel`], run on the runtime since drop cannot wait).
struct Unfinished(Option<Store>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(store) = self.0.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            // The layer transfers are aborted with the pull; let them close their writes.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            tracing::info!("a pull was abandoned: removing its partial content and lease");
            store.cancel().await;
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn pull_tree(
    store: &Store,
    reg: &Arc<Registry>,
    repo: &str,
    what: &str,
    top: &Descriptor,
    top_data: &[u8],
    opts: &PullOptions,
    progress: &Arc<Progress>,
) -> Result<usize> {
    let host = reg.host.clone();
    // The manifests to fetch, and which one is unpacked.
    let mut manifests: Vec<(Descriptor, Vec<u8>)> = Vec::new();
    let mut unpack_digest = None;
    let mut index_doc: Option<Index> = None;
    match manifest::kind_of(&top.media_type, top_data) {
        Some(Kind::Manifest) => {
            manifests.push((top.clone(), top_data.to_vec()));
            unpack_digest = Some(top.digest.clone());
        }
        Some(Kind::Index) => {
            let index: Index = parse(what, &host, &top.digest, top_data)?;
            let picked = local::pick(what, &index, &opts.platform);
            let chosen: Vec<Descriptor> = if opts.all_platforms {
                index
                    .manifests
                    .iter()
                    .filter(|m| {
                        m.platform
                            .as_ref()
                            .is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
                    })
                    .cloned()
                    .collect()
            } else {
                vec![picked?.clone()]
            };
            if let Ok(p) = local::pick(what, &index, &opts.platform) {
                unpack_digest = Some(p.digest.clone());
            }
            for d in chosen {
                let (mut desc, data) = reg.manifest(repo, &d.digest, what).await?;
                if manifest::kind_of(&desc.media_type, &data) != Some(Kind::Manifest) {
                    return Err(PullError::UnknownKind {
                        what: what.to_owned(),
                        host: host.clone(),
                        digest: d.digest.clone(),
                        media_type: desc.media_type.clone(),
                    });
                }
                desc.platform = d.platform.clone();
                manifests.push((desc, data));
            }
            index_doc = Some(index);
        }
        None => {
            return Err(PullError::UnknownKind {
                what: what.to_owned(),
                host,
                digest: top.digest.clone(),
                media_type: top.media_type.clone(),
            })
        }
    }

    // Parse manifests and configs first (small), then fetch every layer once.
    let mut parsed: Vec<Fetched> = Vec::new();
    for (desc, data) in manifests {
        let m: Manifest = parse(what, &host, &desc.digest, &data)?;
        let config_data = fetch_small(reg, repo, &m.config, what).await?;
        let config: Config = parse(what, &host, &m.config.digest, &config_data)?;
        if index_doc.is_none() && opts.strict_platform {
            check_platform(what, &opts.platform, &config)?;
        }
        parsed.push((desc, data, m, config_data, config));
    }
    let mut seen = HashSet::new();
    let layers: Vec<Descriptor> = parsed
        .iter()
        .flat_map(|p| p.2.layers.iter().cloned())
        .filter(|l| seen.insert(l.digest.clone()))
        .collect();
    let downloaded = fetch_all(store, reg, repo, what, layers, progress).await?;

    for (desc, data, m, config_data, _) in &parsed {
        store.put(&m.config, config_data, HashMap::new()).await?;
        store.put(desc, data, local::manifest_labels(m)).await?;
    }
    if let Some(index) = &index_doc {
        store.put(top, top_data, local::index_labels(index)).await?;
    }
    if opts.unpack {
        if let Some((_, _, m, _, config)) = parsed
            .iter()
            .find(|p| Some(&p.0.digest) == unpack_digest.as_ref())
        {
            local::unpack(store, what, m, &m.config, config, |_, _| {}).await?;
        }
    }
    Ok(downloaded)
}

/// A single-platform image's platform (from its config) against the one asked for.
fn check_platform(what: &str, wanted: &Platform, config: &Config) -> Result<()> {
    let actual = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone(),
    };
    if wanted.matches(&actual) {
        return Ok(());
    }
    Err(PullError::WrongPlatform {
        what: what.to_owned(),
        wanted: wanted.display(),
        actual: actual.display(),
    })
}

/// A small blob (config) into memory, checked against its digest.
async fn fetch_small(reg: &Registry, repo: &str, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    let (mut body, _) = reg.blob(repo, &desc.digest, 0, what).await?;
    let mut data = Vec::with_capacity(desc.size.max(0) as usize);
    while let Some(chunk) = reg.next_chunk(&mut body, what).await? {
        data.extend_from_slice(&chunk);
        if data.len() as i64 > desc.size {
            return Err(PullError::TooLong {
                what: what.to_owned(),
                digest: desc.digest.clone(),
                size: desc.size,
            });
        }
    }
    let got = manifest::sha256(&data);
    if got != desc.digest {
        return Err(RegistryError::Digest {
            host: reg.host.clone(),
            what: what.to_owned(),
            expected: desc.digest.clone(),
            got,
        }
        .into());
    }
    Ok(data)
}

/// Fetches layers, PARALLEL at a time; returns how many were downloaded.
async fn fetch_all(
    store: &Store,
    reg: &Arc<Registry>,
    repo: &str,
    what: &str,
    layers: Vec<Descriptor>,
    progress: &Arc<Progress>,
) -> Result<usize> {
    let mut set = JoinSet::new();
    let mut pending = layers.into_iter();
    let mut downloaded = 0;
    let mut first_err = None;
    loop {
        while set.len() < PARALLEL && first_err.is_none() {
            let Some(desc) = pending.next() else { break };
            let (store, reg, repo, what, progress) = (
                store.clone(),
                reg.clone(),
                repo.to_owned(),
                what.to_owned(),
                progress.clone(),
            );
            set.spawn(
                async move { fetch_blob(&store, &reg, &repo, &what, &desc, &progress).await },
            );
        }
        let Some(res) = set.join_next().await else {
            break;
        };
        match res {
            Ok(Ok(true)) => downloaded += 1,
            Ok(Ok(false)) => {}
            // The other transfers finish (their data stays for a resume); the first error wins.
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(PullError::Task(e.to_string()));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(downloaded),
    }
}

/// Streams one blob into the content store; false when the store already had it.
async fn fetch_blob(
    store: &Store,
    reg: &Registry,
    repo: &str,
    what: &str,
    desc: &Descriptor,
    progress: &Progress,
) -> Result<bool> {
    let ingest_ref = manifest::ingest_ref(desc);
    let Some(mut w) = store.ingest(&ingest_ref, desc).await? else {
        progress.done(&desc.digest, "Already exists");
        return Ok(false);
    };
    let mut written = w.offset.max(0);
    if written < desc.size {
        let (mut body, from_offset) = reg.blob(repo, &desc.digest, written, what).await?;
        if !from_offset {
            // The registry ignored the range: start over (a write at 0 truncates).
            w.offset = 0;
            written = 0;
        }
        progress.start(&desc.digest, desc.size.max(0) as u64, written as u64);
        let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
        loop {
            let chunk = match reg.next_chunk(&mut body, what).await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived so the next run resumes after it.
                    if !buf.is_empty() {
                        let _ = w.write(std::mem::take(&mut buf)).await;
                    }
                    progress.done(&desc.digest, "Download interrupted");
                    return Err(e.into());
                }
            };
            written += chunk.len() as i64;
            if written > desc.size {
                store.abort(&ingest_ref).await;
                return Err(PullError::TooLong {
                    what: what.to_owned(),
                    digest: desc.digest.clone(),
                    size: desc.size,
                });
            }
            progress.advance(&desc.digest, chunk.len() as u64);
            buf.extend_from_slice(&chunk);
            if buf.len() >= WRITE_CHUNK {
                w.write(std::mem::take(&mut buf)).await?;
            }
        }
        if !buf.is_empty() {
            w.write(buf).await?;
        }
    }
    match w.commit(HashMap::new()).await {
        Ok(()) => {
            progress.done(&desc.digest, "Pull complete");
            Ok(true)
        }
        Err(e) => {
            // A bad blob must not be resumed from: drop it so the next pull starts clean.
            store.abort(&ingest_ref).await;
            progress.done(&desc.digest, "Verification failed");
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_platform_image_for_another_platform_is_refused_by_name() {
        let config: Config =
            serde_json::from_str(r#"{"architecture":"amd64","os":"linux"}"#).unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        let err = check_platform("img", &arm, &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("wanted linux/arm64") && err.contains("actual: linux/amd64"),
            "{err}"
        );
        let amd = Platform::parse("linux/amd64").unwrap();
        assert!(check_platform("img", &amd, &config).is_ok());
    }
}
