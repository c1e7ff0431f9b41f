//! Which user namespaces a process lives under: the kernel's NS_GET_PARENT ioctl on
//! `/proc/PID/ns/user`, walked up to the namespace asked about. The only unsafe code of setup's
//! process bookkeeping.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

// NS_GET_PARENT is _IO(0xb7, 0x2) (linux/nsfs.h).
nix::ioctl_none!(ns_get_parent, 0xb7, 0x2);

/// Whether process `pid`'s user namespace is the one with inode `ns` or nested (at any depth)
/// in it, as keep-id containers' namespaces are nested in the launcher's.
pub(crate) fn lives_under(pid: i32, ns: u64) -> bool {
    let Ok(file) = std::fs::File::open(format!("/proc/{pid}/ns/user")) else {
        return false;
    };
    let mut fd = OwnedFd::from(file);
    for _ in 0..33 {
        match std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
            Ok(m) if m.ino() == ns => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        // SAFETY: NS_GET_PARENT takes no argument and returns a new fd (or -1); `fd` is an
        // open namespace fd owned here for the whole call.
        let parent = match unsafe { ns_get_parent(fd.as_raw_fd()) } {
            Ok(p) if p >= 0 => p,
            _ => return false,
        };
        // SAFETY: the ioctl returned a fresh fd that nothing else owns.
        fd = unsafe { OwnedFd::from_raw_fd(parent) };
    }
    false
}

/// The inode number of a `user:[INODE]` namespace link.
pub(crate) fn inode(link: &std::path::Path) -> Option<u64> {
    link.to_str()?
        .strip_prefix("user:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_lives_under_its_own_namespace_only() {
        let me = std::process::id() as i32;
        let link = std::fs::read_link("/proc/self/ns/user").unwrap();
        let ns = super::inode(&link).unwrap();
        assert!(super::lives_under(me, ns));
        assert!(!super::lives_under(me, ns + 1));
        assert_eq!(super::inode(std::path::Path::new("net:[5]")), None);
    }
}
