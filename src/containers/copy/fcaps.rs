//! File capabilities (`security.capability`) across a remap: chown drops them, so they are read
//! before and written back after, with the root id they are bound to moved through the map
//! (version 3, as the kernel keeps capabilities of files in user namespaces). The only unsafe
//! code of the copy helper: lgetxattr/lsetxattr, which nix has no call for.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::libc;

use crate::containers::userns::IdMap;

const NAME: &[u8] = b"security.capability\0";
const REVISION_MASK: u32 = 0xFF00_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;

fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
}

/// The file's raw capability xattr, if it has one.
pub fn get(path: &Path) -> Option<Vec<u8>> {
    let p = c_path(path).ok()?;
    let mut buf = [0u8; 64];
    // SAFETY: both names are NUL-terminated and live for the call; the kernel writes at most
    // `buf.len()` bytes into `buf`, a live local.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            NAME.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n > 0).then(|| buf[..n as usize].to_vec())
}

/// Sets the raw capability xattr.
pub fn set(path: &Path, value: &[u8]) -> std::io::Result<()> {
    let p = c_path(path)?;
    // SAFETY: both names are NUL-terminated and live for the call; the kernel reads
    // `value.len()` bytes from `value`, a live slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            NAME.as_ptr().cast(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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
}
