//! [`super::Op::Remap`]: gives every entry of a mounted snapshot the owner that makes it show,
//! inside a container with the given uid and gid maps, as the owner it has here. Modes are set
//! again after the chown where the kernel cleared setuid/setgid bits, file capabilities written
//! back bound to the container's root ([`super::fcaps`]); hard links are chowned
//! once (an entry already carrying its new owner is left alone).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::containers::userns::IdMap;

/// One entry as found before any change.
struct Entry {
    path: PathBuf,
    uid: u32,
    gid: u32,
    mode: u32,
    symlink: bool,
}

/// Remaps the tree at `root` (its root directory included).
pub fn remap(root: &Path, uid_map: &IdMap, gid_map: &IdMap) -> anyhow::Result<()> {
    let entries = collect(root)?;
    let (mut unmapped, mut lost_caps) = (0usize, 0usize);
    for e in &entries {
        let (Some(uid), Some(gid)) = (uid_map.to_host(e.uid), gid_map.to_host(e.gid)) else {
            unmapped += 1;
            continue;
        };
        let now = std::fs::symlink_metadata(&e.path)
            .with_context(|| format!("reading {}", e.path.display()))?;
        if (now.uid(), now.gid()) == (uid, gid) {
            continue; // a hard link of an entry done already
        }
        let caps = (!e.symlink && now.is_file())
            .then(|| super::fcaps::get(&e.path))
            .flatten();
        std::os::unix::fs::lchown(&e.path, Some(uid), Some(gid))
            .with_context(|| format!("chown {uid}:{gid} {}", e.path.display()))?;
        if let Some(raw) = caps {
            match super::fcaps::shift(&raw, uid_map) {
                Some(v) => super::fcaps::set(&e.path, &v).with_context(|| {
                    format!("restoring the file capabilities of {}", e.path.display())
                })?,
                None => lost_caps += 1,
            }
        }
        if !e.symlink && e.mode & 0o6000 != 0 {
            std::fs::set_permissions(&e.path, std::fs::Permissions::from_mode(e.mode & 0o7777))
                .with_context(|| format!("chmod {:o} {}", e.mode & 0o7777, e.path.display()))?;
        }
    }
    if unmapped > 0 {
        tracing::warn!(
            unmapped,
            "entries owned by ids outside the container's maps keep their owners"
        );
    }
    if lost_caps > 0 {
        tracing::warn!(
            lost_caps,
            "file capabilities of an unknown layout were dropped"
        );
    }
    Ok(())
}

/// Every entry under `root`, directories before their contents, symlinks not followed.
fn collect(root: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let m = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if m.is_dir() {
            for child in
                std::fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))?
            {
                stack.push(child?.path());
            }
        }
        out.push(Entry {
            path,
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode(),
            symlink: m.file_type().is_symlink(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::userns::IdRange;

    #[test]
    fn own_files_stay_own_and_setuid_bits_survive() {
        // Unprivileged: a map that gives the test's own ids to themselves is all we can chown
        // to; the walk, the link handling and the mode restore still run for real.
        let me = nix::unistd::getuid().as_raw();
        let my_gid = nix::unistd::getgid().as_raw();
        let ident = |id| {
            IdMap(vec![IdRange {
                container: id,
                host: id,
                size: 1,
            }])
        };
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("sub/prog");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("prog", d.path().join("sub/link")).unwrap();
        std::fs::hard_link(&f, d.path().join("hard")).unwrap();
        remap(d.path(), &ident(me), &ident(my_gid)).unwrap();
        let m = std::fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o7777), (me, 0o4755));
        assert_eq!(collect(d.path()).unwrap().len(), 5);
    }

    #[test]
    fn as_root_owners_move_through_the_map_and_capabilities_follow() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: chown to other ids and setting file capabilities need root");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("ping");
        std::fs::write(&f, b"x").unwrap();
        std::os::unix::fs::lchown(&f, Some(0), Some(0)).unwrap();
        // cap_net_raw+ep, version 2 (bound to the namespace's root).
        let mut v2 = 0x0200_0001u32.to_le_bytes().to_vec();
        v2.extend([0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        if super::super::fcaps::set(&f, &v2).is_err() {
            eprintln!("SKIP: this filesystem takes no security.capability");
            return;
        }
        let map = IdMap::keep_id(5, 10).unwrap(); // 0 -> 1, 5 -> 0
        let gmap = IdMap::keep_id(5, 10).unwrap();
        remap(d.path(), &map, &gmap).unwrap();
        let m = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid()), (1, 1));
        let caps = super::super::fcaps::get(&f).expect("capabilities kept");
        assert_eq!(caps.len(), 24, "version 3 now: {caps:?}");
        assert_eq!(&caps[20..], &1u32.to_le_bytes());
    }
}
