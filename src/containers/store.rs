//! burrow's own per-container state under the data root, in nerdctl's layout:
//! `containers/NS/ID/` (hosts, resolv.conf, hostname, the json-file log, network hook files)
//! and `names/NS/NAME` (the id owning a name; created exclusively so two runs cannot share one).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A state file or name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the container name {name:?} is already in use by container {id} (remove it with `burrow rm {name}` or choose another --name)")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadName(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The file in a container's state dir holding its task's last start (Unix nanoseconds).
const STARTED_FILE: &str = "started";
/// The lock file of a container's task changes (see [`Store::lock_task`]).
const TASK_LOCK: &str = "task.lock";

/// The data root, for one containerd namespace.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    namespace: String,
}

/// Creates `dir` and its parents private to the user (0700).
pub fn private_dir(dir: &Path) -> Result<(), StoreError> {
    crate::fsutil::private_dir(dir).map_err(io("creating", dir))
}

impl Store {
    pub fn new(root: impl Into<PathBuf>, namespace: impl Into<String>) -> Store {
        Store {
            root: root.into(),
            namespace: namespace.into(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `containers/NS/ID`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(&self.namespace).join(id)
    }

    /// The json-file log of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    fn names_dir(&self) -> PathBuf {
        self.root.join("names").join(&self.namespace)
    }

    /// Claims `name` for `id`; fails if another container holds it.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<(), StoreError> {
        if !crate::network::valid_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        let dir = self.names_dir();
        private_dir(&dir)?;
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => f.write_all(id.as_bytes()).map_err(io("writing", &path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                Err(StoreError::NameInUse {
                    name: name.to_string(),
                    id: owner.trim().to_string(),
                })
            }
            Err(e) => Err(io("creating", &path)(e)),
        }
    }

    /// Whether a container holds `name`.
    pub fn name_taken(&self, name: &str) -> bool {
        self.names_dir().join(name).exists()
    }

    /// Releases `name` if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let path = self.names_dir().join(name);
        if std::fs::read_to_string(&path).is_ok_and(|s| s.trim() == id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Creates the container's state dir (with its task lock file).
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.container_dir(id);
        private_dir(&dir)?;
        let lock = dir.join(TASK_LOCK);
        std::fs::File::create(&lock).map_err(io("creating", &lock))?;
        Ok(dir)
    }

    /// Waits for and takes the lock on container `id`'s task, held while an exited task is
    /// deleted (by a command, or by the container's exit monitor) so that no two processes
    /// delete it at once and a new start waits for the deletion to end. None when the
    /// container has no lock file (made before there was one, or being removed: the file is
    /// never made here, so a removal's recursive delete is not raced). Blocks: call it off the
    /// async runtime's threads.
    pub fn lock_task(&self, id: &str) -> Option<nix::fcntl::Flock<std::fs::File>> {
        let f = std::fs::File::open(self.container_dir(id).join(TASK_LOCK)).ok()?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok()
    }

    /// Writes a file in the container's state dir (world-readable: it is bind-mounted into the
    /// container, whose processes may not be root).
    pub fn write_file(&self, id: &str, name: &str, content: &str) -> Result<PathBuf, StoreError> {
        let path = self.container_dir(id).join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)
            .map_err(io("writing", &path))?;
        f.write_all(content.as_bytes())
            .map_err(io("writing", &path))?;
        Ok(path)
    }

    /// Records that the container's task started now (best effort: without the record, `ps`
    /// falls back to the container record's times and `inspect` shows Docker's zero time).
    pub fn record_start(&self, id: &str) {
        self.set_started(id, Some(std::time::SystemTime::now()));
    }

    /// Sets (or with None, forgets) when the container's task last started.
    pub fn set_started(&self, id: &str, at: Option<std::time::SystemTime>) {
        let path = self.container_dir(id).join(STARTED_FILE);
        match at {
            Some(t) => {
                let nanos = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                let _ = replace_file(&path, nanos.to_string());
            }
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// When the container's task last started, as [`Store::record_start`] recorded it.
    pub fn started_at(&self, id: &str) -> Option<std::time::SystemTime> {
        let text = std::fs::read_to_string(self.container_dir(id).join(STARTED_FILE)).ok()?;
        let nanos: u64 = text.trim().parse().ok()?;
        Some(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos))
    }

    /// Removes the container's state dir (absent is fine).
    pub fn remove_dir(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &dir)(e)),
            _ => Ok(()),
        }
    }
}

pub use crate::fsutil::replace_file;

/// A new random container id (64 hex digits, as Docker's).
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .is_ok();
    if !ok {
        // Fall back to time and pid: unique enough for one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seed = format!("{t}-{}", std::process::id());
        use sha2::Digest;
        buf.copy_from_slice(&sha2::Sha256::digest(seed.as_bytes()));
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_exclusive_and_released_by_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path(), "default");
        s.reserve_name("web", "id1").unwrap();
        let e = s.reserve_name("web", "id2").unwrap_err().to_string();
        assert!(e.contains("already in use by container id1"), "{e}");
        s.release_name("web", "id2");
        assert!(s.reserve_name("web", "id2").is_err());
        s.release_name("web", "id1");
        s.reserve_name("web", "id2").unwrap();
        assert!(s.reserve_name("-bad", "x").is_err());
    }

    #[test]
    fn the_last_start_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path(), "default");
        assert_eq!(s.started_at("c1"), None);
        // Without a state dir there is nowhere to record it, and nothing fails.
        s.record_start("c1");
        assert_eq!(s.started_at("c1"), None);
        s.create_dir("c1").unwrap();
        let before = std::time::SystemTime::now();
        s.record_start("c1");
        let first = s.started_at("c1").unwrap();
        assert!(first >= before && first <= std::time::SystemTime::now());
        s.record_start("c1");
        assert!(s.started_at("c1").unwrap() >= first);
        let names: Vec<_> = std::fs::read_dir(s.container_dir("c1"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != TASK_LOCK)
            .collect();
        assert_eq!(names, ["started"], "no temporary file left");
    }

    #[test]
    fn layout_is_nerdctls() {
        let s = Store::new("/d", "default");
        assert_eq!(
            s.log_path("abc"),
            Path::new("/d/containers/default/abc/abc-json.log")
        );
        assert_eq!(new_id().len(), 64);
        assert_ne!(new_id(), new_id());
    }
}
