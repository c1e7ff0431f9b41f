//! `burrow diff`'s walk, run by the cp helper: a snapshot's overlay upper directory compared with
//! its lower directories, as Docker's `A`/`C`/`D` changes.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One change of a container's filesystem against its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// 'A' added, 'C' changed, 'D' deleted.
    pub kind: char,
    /// The path inside the container ("/etc/passwd").
    pub path: String,
}

/// The changes in `upper` (an overlay upperdir) against `lowers` (its lowerdirs), sorted by path:
/// a whiteout (a 0/0 character device) is a deletion, a path some lower has is a change, any
/// other an addition.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> anyhow::Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(upper.join(&rel))? {
            let e = e?;
            let rel = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(e.path())?;
            let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
            let in_lower = lowers
                .iter()
                .any(|l| std::fs::symlink_metadata(l.join(&rel)).is_ok());
            let kind = match (whiteout, in_lower) {
                (true, _) => 'D',
                (false, true) => 'C',
                (false, false) => 'A',
            };
            out.push(Change {
                kind,
                path: format!("/{}", rel.display()),
            });
            if meta.is_dir() {
                stack.push(rel);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted() {
        let dir = std::env::temp_dir().join(format!("burrow-changes-{}", std::process::id()));
        let (upper, lower) = (dir.join("upper"), dir.join("lower"));
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        std::fs::write(upper.join("new"), "n").unwrap();
        let got = changes(&upper, &[lower]).unwrap();
        let lines: Vec<String> = got
            .iter()
            .map(|c| format!("{} {}", c.kind, c.path))
            .collect();
        assert_eq!(lines, ["C /etc", "C /etc/passwd", "A /new"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
