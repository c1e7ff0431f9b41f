//! The files a COPY or ADD writes, as entries (path, kind, mode, owner, mtime): read from the
//! build context (what `.dockerignore` leaves), from an image's layers (COPY --from) or from a
//! local tar archive (ADD), and written out as a layer tar.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ignore::{self, Ignore};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Data),
    Dir,
    Symlink(String),
}

/// A file's contents: in memory (from a layer, an archive, a heredoc), or still on disk (a file
/// of the build context, read only when a step copies it, so a large context costs no memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Bytes(Vec<u8>),
    Disk { path: PathBuf, len: u64 },
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Data {
        Data::Bytes(v)
    }
}

impl Data {
    pub fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The contents as a stream.
    pub fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Data::Bytes(b) => Box::new(b.as_slice()),
            Data::Disk { path, len } => Box::new(std::fs::File::open(path)?.take(*len)),
        })
    }

    /// The contents in memory.
    pub fn bytes(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        Ok(match self {
            Data::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
            Data::Disk { path, .. } => std::borrow::Cow::Owned(std::fs::read(path)?),
        })
    }

    /// The first `n` bytes (fewer when the file is shorter).
    pub fn head(&self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        self.reader()?.take(n as u64).read_to_end(&mut out)?;
        Ok(out)
    }
}

/// One file, directory or symlink with its metadata; `path` is relative, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// A tree of entries by path.
pub type Tree = BTreeMap<String, Entry>;

/// Why files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("reading {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("reading a layer of {what}: {err}")]
    Layer { what: String, err: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
    move |err| FilesError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Every entry of the context directory `root` that `ignore` leaves.
pub fn context_tree(root: &Path, ignore: &Ignore) -> Result<Tree, FilesError> {
    let mut tree = Tree::new();
    walk(root, root, ignore, &mut tree)?;
    Ok(tree)
}

fn walk(root: &Path, dir: &Path, ignore: &Ignore, tree: &mut Tree) -> Result<(), FilesError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let excluded = ignore.excludes(&rel);
        if meta.is_dir() {
            if !excluded {
                tree.insert(rel.clone(), entry_of(&rel, &path, &meta)?);
            }
            if !excluded || ignore.may_reinclude_under(&rel) {
                walk(root, &path, ignore, tree)?;
            }
        } else if !excluded {
            tree.insert(rel.clone(), entry_of(&rel, &path, &meta)?);
        }
    }
    Ok(())
}

fn entry_of(rel: &str, path: &Path, meta: &std::fs::Metadata) -> Result<Entry, FilesError> {
    let kind = if meta.is_dir() {
        Kind::Dir
    } else if meta.file_type().is_symlink() {
        let t = std::fs::read_link(path).map_err(io(path))?;
        Kind::Symlink(t.to_string_lossy().into_owned())
    } else {
        Kind::File(Data::Disk {
            path: path.to_path_buf(),
            len: meta.len(),
        })
    };
    Ok(Entry {
        path: rel.to_string(),
        kind,
        mode: meta.permissions().mode() & 0o7777,
        // Docker: files from the context belong to root unless --chown says otherwise.
        uid: 0,
        gid: 0,
        mtime: meta.mtime().max(0) as u64,
    })
}

/// Applies the tar `data` (plain, gzip or zstd) onto `tree` as a layer: whiteouts (`.wh.NAME`,
/// `.wh..wh..opq`) remove what lower layers had.
pub fn apply_layer(tree: &mut Tree, data: &[u8], what: &str) -> Result<(), FilesError> {
    apply(tree, data, what, true)
}

/// As [`apply_layer`], without reading the files' contents (every file is empty): what a step
/// needs to know of the paths an image has.
pub fn apply_layer_paths(tree: &mut Tree, data: &[u8], what: &str) -> Result<(), FilesError> {
    apply(tree, data, what, false)
}

fn apply(tree: &mut Tree, data: &[u8], what: &str, contents: bool) -> Result<(), FilesError> {
    let err = |err| FilesError::Layer {
        what: what.to_string(),
        err,
    };
    let reader = crate::images::compression::decompressed(data).map_err(err)?;
    let mut archive = tar::Archive::new(reader);
    for e in archive.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let path = ignore::clean(&e.path().map_err(err)?.to_string_lossy());
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (d.to_string(), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            let prefix = format!("{dir}/");
            tree.retain(|p, _| !p.starts_with(&prefix));
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            remove_subtree(tree, &gone);
            continue;
        }
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                e.link_name()
                    .map_err(err)?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(err)?
                    .map(|l| ignore::clean(&l.to_string_lossy()))
                    .unwrap_or_default();
                match tree.get(&target) {
                    Some(t) => t.kind.clone(),
                    None => continue,
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut buf = Vec::new();
                if contents {
                    e.read_to_end(&mut buf).map_err(err)?;
                }
                Kind::File(buf.into())
            }
            // Devices and fifos are not copied between stages.
            _ => continue,
        };
        if path.is_empty() {
            continue;
        }
        if kind != Kind::Dir {
            remove_subtree(tree, &path);
        }
        tree.insert(
            path.clone(),
            Entry {
                path,
                kind,
                mode: h.mode().unwrap_or(0o644) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0),
            },
        );
    }
    Ok(())
}

fn remove_subtree(tree: &mut Tree, path: &str) {
    let prefix = format!("{path}/");
    tree.retain(|p, _| p != path && !p.starts_with(&prefix));
}

/// Whether `data` is a tar archive (plain or gzip) ADD extracts.
/// The tar inside a bzip2- or xz-compressed file, which ADD extracts as Docker does (plain,
/// gzip and zstd tars go to [`apply_layer`] as they are); None for other data.
pub fn bzip2_or_xz_tar(data: &[u8]) -> Option<std::io::Result<Vec<u8>>> {
    let mut out = Vec::new();
    if data.starts_with(b"BZh") {
        let r = bzip2::read::BzDecoder::new(data).read_to_end(&mut out);
        return Some(r.map(|_| out));
    }
    if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let r = lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()));
        return Some(r.map(|_| out));
    }
    None
}

pub fn is_archive(data: &[u8]) -> bool {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut head = vec![0u8; 512];
        let mut d = flate2::read::GzDecoder::new(data);
        return d.read_exact(&mut head).is_ok() && &head[257..262] == b"ustar";
    }
    data.len() >= 512 && &data[257..262] == b"ustar"
}

/// `tree`'s entries written as an uncompressed layer tar, parents before children.
pub fn layer_tar(tree: &Tree) -> std::io::Result<Vec<u8>> {
    write_tar(tree, Vec::new())
}

/// `tree` as a gzip-compressed layer and the digest of its uncompressed tar (its diff id),
/// streamed: only the compressed layer is held in memory.
pub fn layer_gzip(tree: &Tree) -> std::io::Result<(Vec<u8>, String)> {
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let hashing = write_tar(
        tree,
        Hashing {
            inner: enc,
            hash: crate::images::manifest::Hasher::default(),
        },
    )?;
    let diff_id = hashing.hash.finish();
    Ok((hashing.inner.finish()?, diff_id))
}

/// A writer that hashes what it passes on.
struct Hashing<W> {
    inner: W,
    hash: crate::images::manifest::Hasher,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_tar<W: std::io::Write>(tree: &Tree, out: W) -> std::io::Result<W> {
    let mut b = tar::Builder::new(out);
    for e in tree.values() {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(e.mtime);
        match &e.kind {
            Kind::File(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len());
                b.append_data(&mut h, &e.path, data.reader()?)?;
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{}/", e.path), std::io::empty())?;
            }
            Kind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &e.path, target)?;
            }
        }
    }
    b.into_inner()
}

/// A digest of what `tree` holds (paths, kinds, modes, owners, contents; not times): what the
/// cache key of a COPY is made of.
pub fn content_digest(tree: &Tree) -> std::io::Result<String> {
    let mut h = crate::images::manifest::Hasher::default();
    for e in tree.values() {
        h.update(e.path.as_bytes());
        h.update(format!("\0{:o}\0{}\0{}\0", e.mode, e.uid, e.gid).as_bytes());
        match &e.kind {
            Kind::File(d) => {
                h.update(b"f");
                let mut file = crate::images::manifest::Hasher::default();
                let mut r = d.reader()?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = r.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    file.update(&buf[..n]);
                }
                h.update(file.finish().as_bytes());
            }
            Kind::Dir => h.update(b"d"),
            Kind::Symlink(t) => {
                h.update(b"l");
                h.update(t.as_bytes());
            }
        }
        h.update(b"\n");
    }
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, data: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File(data.as_bytes().to_vec().into()),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
        }
    }

    #[test]
    fn layers_apply_with_whiteouts() {
        let mut lower = Tree::new();
        for e in [file("a/x", "1"), file("a/y", "2"), file("b", "3")] {
            lower.insert(e.path.clone(), e);
        }
        let base = layer_tar(&lower).unwrap();
        let mut tree = Tree::new();
        apply_layer(&mut tree, &base, "t").unwrap();
        assert_eq!(tree.len(), 3);
        let mut upper = Tree::new();
        for e in [file("a/.wh.x", ""), file(".wh.b", ""), file("c", "4")] {
            upper.insert(e.path.clone(), e);
        }
        apply_layer(&mut tree, &layer_tar(&upper).unwrap(), "t").unwrap();
        let paths: Vec<&String> = tree.keys().collect();
        assert_eq!(paths, ["a/y", "c"]);
        assert!(is_archive(&base));
        assert!(!is_archive(b"plain text"));
    }

    #[test]
    fn content_digest_ignores_times_only() {
        let mut t = Tree::new();
        t.insert("a".into(), file("a", "1"));
        let d1 = content_digest(&t).unwrap();
        t.get_mut("a").unwrap().mtime = 99;
        assert_eq!(content_digest(&t).unwrap(), d1);
        t.insert("a".into(), file("a", "2"));
        assert_ne!(content_digest(&t).unwrap(), d1);
        // A file still on disk digests and writes as the same bytes in memory would.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, "2").unwrap();
        let mut disk = t.clone();
        disk.get_mut("a").unwrap().kind = Kind::File(Data::Disk { path: p, len: 1 });
        assert_eq!(content_digest(&disk).unwrap(), content_digest(&t).unwrap());
        assert_eq!(layer_tar(&disk).unwrap(), layer_tar(&t).unwrap());
        let (gz, diff_id) = layer_gzip(&disk).unwrap();
        assert_eq!(
            diff_id,
            crate::images::manifest::sha256(&layer_tar(&t).unwrap())
        );
        let mut back = Tree::new();
        apply_layer(&mut back, &gz, "t").unwrap();
        assert_eq!(back["a"].kind, Kind::File(b"2".to_vec().into()));
    }

    #[test]
    fn context_tree_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/keep.md"), "k").unwrap();
        std::fs::write(dir.path().join("docs/drop.md"), "d").unwrap();
        std::fs::write(dir.path().join("main.c"), "m").unwrap();
        let ig = Ignore::parse("docs\n!docs/keep.md\n").unwrap();
        let t = context_tree(dir.path(), &ig).unwrap();
        let paths: Vec<&String> = t.keys().collect();
        assert_eq!(paths, ["docs/keep.md", "main.c"]);
    }
}
