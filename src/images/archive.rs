//! Image archives on disk: reading a tar (plain or gzip, from a file or stdin) by entry, and
//! `load` of OCI archives (a tarred OCI layout) and docker-archives (`docker save`'s manifest.json)
//! into containerd: blobs streamed into the content store under a lease, image records, unpack.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::compression::{self, Compression};
use super::local::{self, LocalError};
use super::manifest::{self, Config, Descriptor, Index, Kind, Manifest, Platform};
use super::reference::{Reference, ReferenceError};
use super::store::{Store, StoreError};

const CHUNK: usize = 1 << 20;

/// Why an archive could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0} is not an image archive: it has neither index.json (OCI archive) nor manifest.json (docker-archive)")]
    NotAnArchive(PathBuf),
    #[error("{path}: the archive has no entry {entry} (the archive is truncated or incomplete)")]
    MissingEntry { path: PathBuf, entry: String },
    #[error("{path}: {entry} is not valid JSON: {err}")]
    BadJson {
        path: PathBuf,
        entry: String,
        err: serde_json::Error,
    },
    #[error("{path}: {entry} has digest {got}, not the {expected} its descriptor says (the archive is corrupt)")]
    Digest {
        path: PathBuf,
        entry: String,
        expected: String,
        got: String,
    },
    #[error("{path}: the image name {name:?} in the archive is not a valid reference: {err}")]
    BadName {
        path: PathBuf,
        name: String,
        err: ReferenceError,
    },
    #[error(
        "{path}: {digest} is neither an image index nor a manifest (media type {media_type:?})"
    )]
    UnknownKind {
        path: PathBuf,
        digest: String,
        media_type: String,
    },
    #[error("{path}: the archive holds no images")]
    Empty { path: PathBuf },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] LocalError),
}

type Result<T> = std::result::Result<T, ArchiveError>;

/// A tar archive indexed by entry name, readable in any order.
pub struct TarIndex {
    file: File,
    /// Shown in errors: the path given, or "stdin".
    pub path: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

fn clean(name: &str) -> String {
    let n = name.trim_start_matches("./").trim_start_matches('/');
    n.trim_end_matches('/').to_owned()
}

/// An anonymous file in the temp dir (unlinked at once; gone when closed).
fn anonymous_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    for i in 0..100 {
        let p = dir.join(format!(".burrow-load-{}-{i}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&p);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot create a temporary file"))
}

impl TarIndex {
    /// Opens `path` (None: stdin), decompressing gzip or zstd into a temp file first.
    pub fn open(path: Option<&Path>) -> Result<TarIndex> {
        let shown = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| "stdin".into());
        let io_err = |what, source| ArchiveError::Io {
            what,
            path: shown.clone(),
            source,
        };
        let mut file = match path {
            Some(p) => File::open(p).map_err(|e| io_err("cannot open", e))?,
            None => {
                let mut f = anonymous_file().map_err(|e| io_err("cannot buffer", e))?;
                io::copy(&mut io::stdin().lock(), &mut f).map_err(|e| io_err("cannot read", e))?;
                f
            }
        };
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_err("cannot read", e))?;
        let mut magic = [0u8; 4];
        let n = file
            .read(&mut magic)
            .map_err(|e| io_err("cannot read", e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_err("cannot read", e))?;
        if compression::detect(&magic[..n]) != Compression::Plain {
            let mut out = anonymous_file().map_err(|e| io_err("cannot buffer", e))?;
            compression::decompressed(io::BufReader::new(&mut file))
                .and_then(|mut r| io::copy(&mut r, &mut out))
                .map_err(|e| io_err("cannot decompress", e))?;
            out.seek(SeekFrom::Start(0))
                .map_err(|e| io_err("cannot read", e))?;
            file = out;
        }
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        {
            let mut ar = tar::Archive::new(&file);
            let iter = ar
                .entries_with_seek()
                .map_err(|e| io_err("not a tar archive", e))?;
            for entry in iter {
                let entry = entry.map_err(|e| io_err("corrupt tar archive", e))?;
                let name = clean(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                if kind.is_file() {
                    entries.insert(name, (entry.raw_file_position(), entry.size()));
                } else if kind.is_symlink() || kind.is_hard_link() {
                    if let Ok(Some(target)) = entry.link_name() {
                        let target = target.to_string_lossy().into_owned();
                        let target = if kind.is_symlink() && !target.starts_with('/') {
                            match name.rsplit_once('/') {
                                Some((dir, _)) => format!("{dir}/{target}"),
                                None => target,
                            }
                        } else {
                            target
                        };
                        links.push((name, normalize(&target)));
                    }
                }
            }
        }
        for (name, target) in links {
            if let Some(v) = entries.get(&target).copied() {
                entries.insert(name, v);
            }
        }
        Ok(TarIndex {
            file,
            path: shown,
            entries,
        })
    }

    pub fn has(&self, entry: &str) -> bool {
        self.entries.contains_key(entry)
    }

    fn locate(&self, entry: &str) -> Result<(u64, u64)> {
        self.entries
            .get(entry)
            .copied()
            .ok_or_else(|| ArchiveError::MissingEntry {
                path: self.path.clone(),
                entry: entry.to_owned(),
            })
    }

    fn io(&self, source: io::Error) -> ArchiveError {
        ArchiveError::Io {
            what: "cannot read",
            path: self.path.clone(),
            source,
        }
    }

    /// A whole (small) entry.
    pub fn read(&mut self, entry: &str) -> Result<Vec<u8>> {
        let (off, size) = self.locate(entry)?;
        let mut buf = vec![0; size as usize];
        self.file
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| self.io(e))?;
        Ok(buf)
    }

    /// Size of an entry.
    pub fn size(&self, entry: &str) -> Result<u64> {
        Ok(self.locate(entry)?.1)
    }

    /// sha256 and the first two bytes of an entry, read in chunks.
    fn digest(&mut self, entry: &str) -> Result<(String, [u8; 2])> {
        let (off, size) = self.locate(entry)?;
        self.file
            .seek(SeekFrom::Start(off))
            .map_err(|e| self.io(e))?;
        let mut h = manifest::Hasher::default();
        let mut magic = [0u8; 2];
        let mut left = size;
        let mut buf = vec![0; CHUNK];
        let mut first = true;
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            self.file
                .read_exact(&mut buf[..n])
                .map_err(|e| self.io(e))?;
            if first && n >= 2 {
                magic.copy_from_slice(&buf[..2]);
            }
            first = false;
            h.update(&buf[..n]);
            left -= n as u64;
        }
        Ok((h.finish(), magic))
    }

    /// Streams an entry into the content store as `desc` (resuming a partial write).
    pub async fn store_blob(
        &mut self,
        store: &Store,
        entry: &str,
        desc: &Descriptor,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let (off, size) = self.locate(entry)?;
        let ingest_ref = manifest::ingest_ref(desc);
        let Some(mut w) = store.ingest(&ingest_ref, desc).await? else {
            return Ok(store.set_labels(&desc.digest, labels).await?);
        };
        let start = (w.offset.max(0) as u64).min(size);
        self.file
            .seek(SeekFrom::Start(off + start))
            .map_err(|e| self.io(e))?;
        let mut left = size - start;
        while left > 0 {
            let n = (left as usize).min(CHUNK);
            let mut buf = vec![0; n];
            self.file.read_exact(&mut buf).map_err(|e| self.io(e))?;
            w.write(buf).await?;
            left -= n as u64;
        }
        match w.commit(labels).await {
            Ok(()) => Ok(()),
            Err(e) => {
                store.abort(&ingest_ref).await;
                Err(e.into())
            }
        }
    }
}

/// Resolves `a/../b` and `./` in a path inside the archive.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// Where an OCI layout keeps a blob.
fn blob_path(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("blobs/{alg}/{hex}"),
        None => format!("blobs/{digest}"),
    }
}

/// The record names for a loaded image: its names, or for an unnamed one a dangling record
/// (`<none>@<digest>`, as Docker keeps unnamed loads) so its content is not collected.
fn record_names(names: &[String], digest: &str) -> Vec<String> {
    if names.is_empty() {
        vec![format!("<none>@{digest}")]
    } else {
        names.to_vec()
    }
}

/// What `load` did for one image.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Normalised names given to it (empty: the archive named none).
    pub names: Vec<String>,
    /// The config digest (Docker's image id).
    pub id: String,
}

/// Options for `load`.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The platform to unpack when the archive holds an index.
    pub platform: Platform,
    /// Import every platform's blobs that the archive holds (unpack still only `platform`).
    pub all_platforms: bool,
}

/// Loads every image in the archive at `path` (None: stdin) into `store`.
pub async fn load(store: &Store, path: Option<&Path>, opts: &LoadOptions) -> Result<Vec<Loaded>> {
    // Blocking file IO is fine here: the CLI's runtime has nothing else to do meanwhile.
    let mut tar = TarIndex::open(path)?;
    let leased = store.with_lease("load").await?;
    let result = if tar.has("index.json") {
        load_oci(&leased, &mut tar, opts).await
    } else if tar.has("manifest.json") {
        load_docker(&leased, &mut tar, opts).await
    } else {
        Err(ArchiveError::NotAnArchive(tar.path.clone()))
    };
    // The records now hold what they need; without them the content goes at the next GC.
    if let Err(err) = leased.release().await {
        tracing::warn!(%err, "could not release the load lease (it expires in a day)");
    }
    let loaded = result?;
    if loaded.is_empty() {
        return Err(ArchiveError::Empty { path: tar.path });
    }
    Ok(loaded)
}

fn json<T: serde::de::DeserializeOwned>(tar: &TarIndex, entry: &str, data: &[u8]) -> Result<T> {
    serde_json::from_slice(data).map_err(|err| ArchiveError::BadJson {
        path: tar.path.clone(),
        entry: entry.to_owned(),
        err,
    })
}

fn parse_name(tar: &TarIndex, name: &str) -> Result<String> {
    Reference::parse(name)
        .map(|r| r.to_string())
        .map_err(|err| ArchiveError::BadName {
            path: tar.path.clone(),
            name: name.to_owned(),
            err,
        })
}

/// Reads a blob of an OCI layout and checks its digest.
fn read_blob(tar: &mut TarIndex, desc: &Descriptor) -> Result<Vec<u8>> {
    let entry = blob_path(&desc.digest);
    let data = tar.read(&entry)?;
    let got = manifest::sha256(&data);
    if got != desc.digest {
        return Err(ArchiveError::Digest {
            path: tar.path.clone(),
            entry,
            expected: desc.digest.clone(),
            got,
        });
    }
    Ok(data)
}

/// Imports a manifest's blobs (layers, config, then the manifest with its GC labels).
async fn import_manifest(
    store: &Store,
    tar: &mut TarIndex,
    desc: &Descriptor,
    data: &[u8],
) -> Result<(Manifest, Config)> {
    let m: Manifest = json(tar, &blob_path(&desc.digest), data)?;
    for layer in &m.layers {
        tar.store_blob(store, &blob_path(&layer.digest), layer, HashMap::new())
            .await?;
    }
    let config_data = read_blob(tar, &m.config)?;
    let config: Config = json(tar, &blob_path(&m.config.digest), &config_data)?;
    store.put(&m.config, &config_data, HashMap::new()).await?;
    store.put(desc, data, local::manifest_labels(&m)).await?;
    Ok((m, config))
}

/// Imports the tree under `desc`; returns the manifest picked for unpacking, if present.
async fn import_tree(
    store: &Store,
    tar: &mut TarIndex,
    desc: &Descriptor,
    opts: &LoadOptions,
    depth: usize,
) -> Result<Option<(Manifest, Config)>> {
    let data = read_blob(tar, desc)?;
    match manifest::kind_of(&desc.media_type, &data) {
        Some(Kind::Manifest) => Ok(Some(import_manifest(store, tar, desc, &data).await?)),
        Some(Kind::Index) if depth < 4 => {
            let index: Index = json(tar, &blob_path(&desc.digest), &data)?;
            let wanted = local::pick("archive", &index, &opts.platform)
                .ok()
                .map(|d| d.digest.clone());
            let mut picked = None;
            for child in &index.manifests {
                let is_wanted = wanted.as_deref() == Some(child.digest.as_str());
                if !tar.has(&blob_path(&child.digest)) || !(is_wanted || opts.all_platforms) {
                    continue;
                }
                let got = Box::pin(import_tree(store, tar, child, opts, depth + 1)).await?;
                if is_wanted {
                    picked = got;
                }
            }
            store.put(desc, &data, local::index_labels(&index)).await?;
            Ok(picked)
        }
        _ => Err(ArchiveError::UnknownKind {
            path: tar.path.clone(),
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
        }),
    }
}

async fn load_oci(store: &Store, tar: &mut TarIndex, opts: &LoadOptions) -> Result<Vec<Loaded>> {
    let data = tar.read("index.json")?;
    let index: Index = json(tar, "index.json", &data)?;
    let mut out = Vec::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| desc.annotations.get("org.opencontainers.image.ref.name"))
            .map(|n| parse_name(tar, n))
            .transpose()?;
        let Some((m, config)) = import_tree(store, tar, desc, opts, 0).await? else {
            // Say which platforms the archive does hold.
            let available = read_blob(tar, desc)
                .ok()
                .and_then(|d| serde_json::from_slice::<Index>(&d).ok())
                .map(|i| {
                    i.manifests
                        .iter()
                        .filter(|m| tar.has(&blob_path(&m.digest)))
                        .filter_map(|m| m.platform.as_ref().map(Platform::display))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "none".into());
            return Err(LocalError::NoPlatform {
                name: name.unwrap_or_else(|| desc.digest.clone()),
                platform: opts.platform.display(),
                available,
            }
            .into());
        };
        let label = name.clone().unwrap_or_else(|| desc.digest.clone());
        local::unpack(store, &label, &m, &m.config, &config, |_, _| {}).await?;
        let mut target = desc.clone();
        target.platform = None;
        target.annotations.clear();
        let names: Vec<String> = name.into_iter().collect();
        for n in record_names(&names, &target.digest) {
            store.put_image(&n, &target, HashMap::new()).await?;
        }
        out.push(Loaded {
            names,
            id: m.config.digest.clone(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

async fn load_docker(
    store: &Store,
    tar: &mut TarIndex,
    _opts: &LoadOptions,
) -> Result<Vec<Loaded>> {
    let data = tar.read("manifest.json")?;
    let entries: Vec<DockerEntry> = json(tar, "manifest.json", &data)?;
    let mut out = Vec::new();
    for e in entries {
        let config_path = clean(&e.config);
        let config_data = tar.read(&config_path)?;
        let config: Config = json(tar, &config_path, &config_data)?;
        let config_desc = Descriptor {
            media_type: manifest::DOCKER_CONFIG.into(),
            digest: manifest::sha256(&config_data),
            size: config_data.len() as i64,
            platform: None,
            annotations: Default::default(),
        };
        let mut layers = Vec::new();
        for l in &e.layers {
            let entry = clean(l);
            let size = tar.size(&entry)? as i64;
            let (digest, magic) = tar.digest(&entry)?;
            let media_type = if magic == [0x1f, 0x8b] {
                manifest::DOCKER_LAYER_GZIP
            } else if magic == [0x28, 0xb5] {
                manifest::OCI_LAYER_ZSTD
            } else {
                manifest::DOCKER_LAYER
            };
            let desc = Descriptor {
                media_type: media_type.into(),
                digest,
                size,
                platform: None,
                annotations: Default::default(),
            };
            tar.store_blob(store, &entry, &desc, HashMap::new()).await?;
            layers.push(desc);
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::DOCKER_MANIFEST.into()),
            config: config_desc.clone(),
            layers,
            annotations: Default::default(),
        };
        let m_data = serde_json::to_vec(&m).map_err(|err| ArchiveError::BadJson {
            path: tar.path.clone(),
            entry: "manifest.json".into(),
            err,
        })?;
        let m_desc = Descriptor {
            media_type: manifest::DOCKER_MANIFEST.into(),
            digest: manifest::sha256(&m_data),
            size: m_data.len() as i64,
            platform: None,
            annotations: Default::default(),
        };
        store
            .put(&config_desc, &config_data, HashMap::new())
            .await?;
        store
            .put(&m_desc, &m_data, local::manifest_labels(&m))
            .await?;
        let names = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| parse_name(tar, t))
            .collect::<Result<Vec<_>>>()?;
        let label = names
            .first()
            .cloned()
            .unwrap_or_else(|| m_desc.digest.clone());
        local::unpack(store, &label, &m, &config_desc, &config, |_, _| {}).await?;
        for n in record_names(&names, &m_desc.digest) {
            store.put_image(&n, &m_desc, HashMap::new()).await?;
        }
        out.push(Loaded {
            names,
            id: config_desc.digest,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean("./blobs/sha256/ab/"), "blobs/sha256/ab");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(blob_path("sha256:ff"), "blobs/sha256/ff");
    }

    #[test]
    fn tar_index_reads_entries_and_links() {
        let dir = std::env::temp_dir().join(format!("burrow-tarindex-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.tar");
        {
            let f = File::create(&path).unwrap();
            let mut b = tar::Builder::new(f);
            let mut h = tar::Header::new_gnu();
            h.set_size(5);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "./x/layer.tar", &b"hello"[..])
                .unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            l.set_cksum();
            b.append_link(&mut l, "y/layer.tar", "../x/layer.tar")
                .unwrap();
            b.finish().unwrap();
        }
        let mut t = TarIndex::open(Some(&path)).unwrap();
        assert_eq!(t.read("x/layer.tar").unwrap(), b"hello");
        assert_eq!(t.read("y/layer.tar").unwrap(), b"hello");
        assert_eq!(
            t.digest("y/layer.tar").unwrap().0,
            manifest::sha256(b"hello")
        );
        assert!(matches!(
            t.read("z"),
            Err(ArchiveError::MissingEntry { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
