//! The state directory: its creation (private), the `lock` that keeps a second launcher out, and
//! the files other tools read (`child_pid`, `api.sock`, `netns`, resolv.conf, hosts).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};

/// A locked state directory. Dropping it releases the lock and, for a temporary directory,
/// removes it.
pub struct StateDir {
    pub path: PathBuf,
    temporary: bool,
    _lock: Flock<File>,
}

impl StateDir {
    /// Creates (0700) or reuses `dir`, or a new temporary one, and takes its lock. Files a
    /// launcher killed with SIGKILL left behind are removed.
    pub fn open(dir: Option<&Path>) -> anyhow::Result<StateDir> {
        let (path, temporary) = match dir {
            Some(d) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
                    .with_context(|| {
                        format!("cannot create the state directory {}", d.display())
                    })?;
                (d.to_path_buf(), false)
            }
            None => (temporary_dir()?, true),
        };
        let meta = fs::metadata(&path)
            .with_context(|| format!("cannot read the state directory {}", path.display()))?;
        if !meta.is_dir() {
            bail!(
                "--state-dir {} is not a directory; give a directory path",
                path.display()
            );
        }
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).with_context(|| {
                format!(
                    "cannot make the state directory {} private (0700)",
                    path.display()
                )
            })?;
        }
        let lock_path = path.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let pid = fs::read_to_string(path.join("child_pid")).unwrap_or_default();
                let who = if pid.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (its child is pid {})", pid.trim())
                };
                bail!(
                    "another burrow-rootlesskit is running on the state directory {}{who}: stop it first, or give this one another --state-dir",
                    path.display()
                );
            }
            Err((_, e)) => bail!("cannot lock {}: {e}", lock_path.display()),
        };
        let sd = StateDir {
            path,
            temporary,
            _lock: lock,
        };
        sd.remove_stale();
        Ok(sd)
    }

    fn remove_stale(&self) {
        for name in ["child_pid", "api.sock"] {
            let _ = fs::remove_file(self.path.join(name));
        }
        let netns = self.path.join("netns");
        if netns.exists() {
            let _ = nix::mount::umount2(&netns, nix::mount::MntFlags::MNT_DETACH);
            let _ = fs::remove_file(&netns);
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` atomically (temporary file + rename), world-readable like RootlessKit's files (the directory is private).
    pub fn write(&self, name: &str, content: &str) -> anyhow::Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(content.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, self.path.join(name))
            .with_context(|| format!("cannot write {}", self.path.join(name).display()))?;
        Ok(())
    }

    /// Removes what the launcher made there, at exit, and the directory when that leaves it
    /// empty: RootlessKit removes its state directory, and a script may check it is gone. Only
    /// the launcher's own files go (not whatever else a user keeps in a directory they named).
    pub fn cleanup(&self) {
        self.remove_stale();
        for name in [
            "resolv.conf",
            "hosts",
            "slirp4netns.log",
            "slirp4netns.sock",
            "lock",
        ] {
            let _ = fs::remove_file(self.path.join(name));
        }
        let _ = fs::remove_dir(&self.path);
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn temporary_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let template = base.join("burrow-rootlesskit.XXXXXX");
    nix::unistd::mkdtemp(&template).with_context(|| {
        format!(
            "cannot create a state directory under {} (set --state-dir)",
            base.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_stale_files_go() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        let a = StateDir::open(Some(&dir)).unwrap();
        a.write("child_pid", "4242").unwrap();
        let err = StateDir::open(Some(&dir)).err().unwrap().to_string();
        assert!(
            err.contains("another burrow-rootlesskit") && err.contains("4242"),
            "{err}"
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(a);
        let b = StateDir::open(Some(&dir)).unwrap();
        assert!(!b.file("child_pid").exists());
    }

    #[test]
    fn temporary_dir_is_removed() {
        let a = StateDir::open(None).unwrap();
        let p = a.path.clone();
        assert!(p.is_dir());
        drop(a);
        assert!(!p.exists());
    }
}
