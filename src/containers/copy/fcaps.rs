//! File capabilities (`security.capability`) across a remap: chown drops them, so they are read
//! before and written back after, with the root id they are bound to moved through the map
//! (version 3, as the kernel keeps capabilities of files in user namespaces). The xattrs are
//! read and written with the `xattr` crate (lgetxattr/lsetxattr: never through a symlink).

use std::path::Path;

use crate::containers::userns::IdMap;

const NAME: &str = "security.capability";
const REVISION_MASK: u32 = 0xFF00_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;

/// The file's raw capability xattr, if it has one (a symlink's own, not its target's).
pub fn get(path: &Path) -> Option<Vec<u8>> {
    xattr::get(path, NAME).ok().flatten()
}

/// Sets the raw capability xattr (on a symlink itself, not its target).
pub fn set(path: &Path, value: &[u8]) -> std::io::Result<()> {
    xattr::set(path, NAME, value)
}

/// The capability xattr `raw` bound to the root id the map gives container root's owner: a
/// version 2 value (bound to this namespace's root, 0) or version 3 (bound to its root id)
/// becomes version 3 bound to `map.to_host(root id)`. None for a value of unknown layout.
pub fn shift(raw: &[u8], uid_map: &IdMap) -> Option<Vec<u8>> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            raw.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let magic = word(0)?;
    let root = match (magic & REVISION_MASK, raw.len()) {
        (REVISION_2, 20) => 0,
        (REVISION_3, 24) => word(5)?,
        _ => return None,
    };
    let new_root = uid_map.to_host(root)?;
    let mut out = Vec::with_capacity(24);
    out.extend(((magic & !REVISION_MASK) | REVISION_3).to_le_bytes());
    out.extend(&raw[4..20]);
    out.extend(new_root.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_move_to_the_maps_root() {
        let map = IdMap::keep_id(1000, 65537).unwrap();
        // cap_net_raw+ep, version 2.
        let mut v2 = (REVISION_2 | 1).to_le_bytes().to_vec();
        v2.extend([0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let v3 = shift(&v2, &map).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(&v3[..4], &(REVISION_3 | 1).to_le_bytes());
        assert_eq!(&v3[4..20], &v2[4..20]);
        assert_eq!(
            &v3[20..],
            &1u32.to_le_bytes(),
            "root 0 is the launcher's 1 now"
        );
        assert!(shift(&v2[..19], &map).is_none());
    }

    #[test]
    fn the_xattr_is_read_and_written_on_the_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert_eq!(get(&file), None);
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let mut v2 = (REVISION_2 | 1).to_le_bytes().to_vec();
        v2.extend([0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        if let Err(e) = set(&file, &v2) {
            // Setting file capabilities takes CAP_SETFCAP (the tests run as root in CI).
            assert_eq!(e.raw_os_error(), Some(nix::libc::EPERM), "{e}");
            return;
        }
        assert_eq!(get(&file), Some(v2));
        assert_eq!(
            get(&link),
            None,
            "the symlink's own xattrs, not its target's"
        );
    }
}
