//! `save`: images from containerd's content store into one tar that is both an OCI archive
//! (oci-layout, index.json, blobs/) and a docker-archive (manifest.json), so `docker load`,
//! `ctr import` and `burrow load` all read it.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::catalog::{self, CatalogError};
use super::local::LocalError;
use super::manifest::{self, Descriptor, Index, Kind, Manifest, Platform};
use super::reference::Reference;
use super::store::{from_pb, Store, StoreError};

/// Why an image could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error("cannot write the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("image {name}: {digest} is not in containerd's content store (pull the image again, with --all-platforms for every platform)")]
    Missing { name: String, digest: String },
    #[error("write the archive")]
    Flush(#[source] std::io::Error),
    #[error("image {name} runs from the shared image store ({file}) and has no layers here to save: pull it (`burrow pull {name}`) and save that")]
    FromStore { name: String, file: String },
    #[error("cannot create {path}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, SaveError>;

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> Writer<W> {
    fn file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut h, path, data)?;
        Ok(())
    }

    /// Streams a (large) blob into the archive in pieces, checking its digest.
    async fn stream_blob(&mut self, store: &Store, name: &str, desc: &Descriptor) -> Result<()> {
        if !self.written.insert(desc.digest.clone()) {
            return Ok(());
        }
        let missing = |e: StoreError| {
            if e.is_not_found() {
                SaveError::Missing {
                    name: name.to_owned(),
                    digest: desc.digest.clone(),
                }
            } else {
                e.into()
            }
        };
        let mut h = tar::Header::new_ustar();
        h.set_path(blob_path(&desc.digest))?;
        h.set_size(desc.size.max(0) as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let out = self.tar.get_mut();
        out.write_all(h.as_bytes())?;
        let mut hasher = manifest::Hasher::default();
        let mut offset = 0i64;
        while offset < desc.size {
            let n = (4i64 << 20).min(desc.size - offset);
            let data = store
                .read_range(&desc.digest, offset, n)
                .await
                .map_err(missing)?;
            if data.is_empty() {
                break;
            }
            hasher.update(&data);
            self.tar.get_mut().write_all(&data)?;
            offset += data.len() as i64;
        }
        let got = hasher.finish();
        if offset != desc.size || got != desc.digest {
            return Err(StoreError::DigestMismatch {
                what: format!("{name} in the content store"),
                expected: desc.digest.clone(),
                got,
            }
            .into());
        }
        let pad = (512 - (desc.size as usize % 512)) % 512;
        self.tar.get_mut().write_all(&vec![0u8; pad])?;
        Ok(())
    }

    async fn blob(&mut self, store: &Store, name: &str, desc: &Descriptor) -> Result<Vec<u8>> {
        let data = store.read_verified(desc).await.map_err(|e| {
            if e.is_not_found() {
                SaveError::Missing {
                    name: name.to_owned(),
                    digest: desc.digest.clone(),
                }
            } else {
                e.into()
            }
        })?;
        if self.written.insert(desc.digest.clone()) {
            self.file(&blob_path(&desc.digest), &data)?;
        }
        Ok(data)
    }
}

/// [`save`] through a buffer, flushed at the end.
pub async fn save_buffered<W: Write>(
    store: &Store,
    images: &[String],
    platform: &Platform,
    out: W,
) -> Result<()> {
    let mut out = std::io::BufWriter::new(out);
    save(store, images, platform, &mut out).await?;
    out.flush().map_err(SaveError::Flush)
}

/// An archive file written next to its target and renamed over it when complete, so a failure
/// leaves no half archive.
#[derive(Debug)]
pub struct PartialFile {
    tmp: PathBuf,
    path: PathBuf,
}

impl PartialFile {
    /// Creates the file beside `path` that is written first.
    pub fn create(path: &Path) -> Result<(PartialFile, std::fs::File)> {
        let tmp = path.with_extension(format!("partial{}", std::process::id()));
        let file = std::fs::File::create(&tmp).map_err(|source| SaveError::Create {
            path: tmp.clone(),
            source,
        })?;
        let partial = PartialFile {
            tmp,
            path: path.to_path_buf(),
        };
        Ok((partial, file))
    }

    /// Puts the complete file in place.
    pub fn commit(self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|source| SaveError::Rename {
            path: self.path.clone(),
            source,
        })
    }

    /// Removes the file written so far.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes `images` (names or IDs) to `out`.
pub async fn save<W: Write>(
    store: &Store,
    images: &[String],
    platform: &Platform,
    out: W,
) -> Result<()> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        written: HashSet::new(),
    };
    let mut index = Vec::new();
    let mut docker: Vec<serde_json::Value> = Vec::new();
    for arg in images {
        let found = catalog::find(store, arg, platform).await?;
        for l in found {
            let names = [l.name.clone()];
            write_image(store, &mut w, &l, &l.name, &names, &mut index, &mut docker).await?;
        }
    }
    finish(w, index, docker)
}

/// Writes the image recorded as `record` to `out` as [`save`] does, named `names` in the archive
/// instead of its record's name (none: an unnamed image) — what `build -o` exports.
pub async fn export<W: Write>(
    store: &Store,
    record: &str,
    names: &[String],
    platform: &Platform,
    out: W,
) -> Result<()> {
    let mut out = std::io::BufWriter::new(out);
    let mut w = Writer {
        tar: tar::Builder::new(&mut out),
        written: HashSet::new(),
    };
    let (mut index, mut docker) = (Vec::new(), Vec::new());
    for l in catalog::find(store, record, platform).await? {
        write_image(store, &mut w, &l, record, names, &mut index, &mut docker).await?;
    }
    finish(w, index, docker)?;
    out.flush().map_err(SaveError::Flush)
}

/// One image's blobs, its index entries (one per name, or one unnamed) and its docker-archive
/// entry.
async fn write_image<W: Write>(
    store: &Store,
    w: &mut Writer<W>,
    l: &super::local::LocalImage,
    record: &str,
    names: &[String],
    index: &mut Vec<Descriptor>,
    docker: &mut Vec<serde_json::Value>,
) -> Result<()> {
    let img = catalog::record(store, record).await?;
    if let Some(file) = img.labels.get(crate::containers::shared::STORE_LABEL) {
        return Err(SaveError::FromStore {
            name: record.to_owned(),
            file: file.clone(),
        });
    }
    let target = img
        .target
        .as_ref()
        .map(from_pb)
        .ok_or_else(|| SaveError::Missing {
            name: record.to_owned(),
            digest: "(no target)".into(),
        })?;
    write_tree(store, w, record, &target, 0).await?;
    let mut tags = Vec::new();
    for name in names {
        let mut desc = target.clone();
        let mut ann = BTreeMap::new();
        ann.insert("io.containerd.image.name".to_owned(), name.clone());
        if let Ok(r) = Reference::parse(name) {
            if let Some(t) = &r.tag {
                ann.insert("org.opencontainers.image.ref.name".to_owned(), t.clone());
                tags.push(r.familiar());
            }
        }
        desc.annotations = ann;
        index.push(desc);
    }
    if names.is_empty() {
        index.push(target.clone());
    }
    docker.push(json!({
        "Config": blob_path(&l.config_desc.digest),
        "RepoTags": tags,
        "Layers": l.manifest.layers.iter().map(|d| blob_path(&d.digest)).collect::<Vec<_>>(),
    }));
    Ok(())
}

/// The archive's index.json, oci-layout and manifest.json, and its end.
fn finish<W: Write>(
    mut w: Writer<W>,
    index: Vec<Descriptor>,
    docker: Vec<serde_json::Value>,
) -> Result<()> {
    let index = Index {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.into()),
        manifests: index,
        annotations: Default::default(),
    };
    w.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    w.file(
        "index.json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    )?;
    w.file(
        "manifest.json",
        &serde_json::to_vec(&docker).unwrap_or_default(),
    )?;
    w.tar.finish()?;
    Ok(())
}

/// Writes a target and everything under it that the store holds (index children it lacks are
/// other platforms never pulled; they are left out, as `ctr export` does).
async fn write_tree<W: Write>(
    store: &Store,
    w: &mut Writer<W>,
    name: &str,
    desc: &Descriptor,
    depth: usize,
) -> Result<()> {
    let data = w.blob(store, name, desc).await?;
    match manifest::kind_of(&desc.media_type, &data) {
        Some(Kind::Index) if depth < 4 => {
            let idx: Index = serde_json::from_slice(&data).map_err(|err| LocalError::BadJson {
                name: name.to_owned(),
                digest: desc.digest.clone(),
                err,
            })?;
            for child in &idx.manifests {
                if store.info(&child.digest).await?.is_some() {
                    Box::pin(write_tree(store, w, name, child, depth + 1)).await?;
                }
            }
        }
        Some(Kind::Manifest) => {
            let m: Manifest = serde_json::from_slice(&data).map_err(|err| LocalError::BadJson {
                name: name.to_owned(),
                digest: desc.digest.clone(),
                err,
            })?;
            w.blob(store, name, &m.config).await?;
            for layer in &m.layers {
                w.stream_blob(store, name, layer).await?;
            }
        }
        _ => {}
    }
    Ok(())
}
