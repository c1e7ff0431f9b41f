//! The files a setup writes: private directories, atomic 0600 writes, removal, and telling
//! burrow's files from another tool's.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;

use super::change::Change;
use super::layout::MARKER;

/// True when a file exists and was not written by burrow.
pub fn foreign(path: &Path) -> anyhow::Result<bool> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(!t.contains(MARKER)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Creates a directory (and parents) private to the user.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `text` to `path` (0600, atomically) unless it already holds it; the change when written.
pub fn write_file(path: &Path, text: &str) -> anyhow::Result<Option<Change>> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(None);
    }
    let dir = path.parent().context("a file path without a directory")?;
    private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.burrow-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    let existed = path.exists();
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(if existed {
        Change::Updated(path.to_path_buf())
    } else {
        Change::Wrote(path.to_path_buf())
    }))
}

/// Removes a file burrow wrote; the change when there was one.
pub fn remove(path: &Path) -> anyhow::Result<Option<Change>> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Some(Change::Removed(path.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_then_updates_then_removes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/f.toml");
        assert_eq!(write_file(&p, "a").unwrap(), Some(Change::Wrote(p.clone())));
        assert_eq!(write_file(&p, "a").unwrap(), None);
        assert_eq!(
            write_file(&p, "b").unwrap(),
            Some(Change::Updated(p.clone()))
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(foreign(&p).unwrap());
        assert_eq!(remove(&p).unwrap(), Some(Change::Removed(p.clone())));
        assert_eq!(remove(&p).unwrap(), None);
        assert!(!foreign(&p).unwrap());
    }
}
