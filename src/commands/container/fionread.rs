//! How many bytes wait unread in a pipe or FIFO (FIONREAD), so stdin is only closed for the
//! container once the shim has drained what the CLI wrote.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// Bytes buffered in the pipe `f`, or `None` when the kernel will not say.
pub fn pending(f: &impl AsRawFd) -> Option<usize> {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at a live local.
    let rc = unsafe { nix::libc::ioctl(f.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    (rc == 0).then_some(n.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn counts_unread_bytes() {
        let (r, w) = std::io::pipe().unwrap();
        let mut w = w;
        w.write_all(b"hello").unwrap();
        assert_eq!(super::pending(&r), Some(5));
    }
}
