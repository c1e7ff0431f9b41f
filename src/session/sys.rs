//! The two ioctls a session needs that nix has no safe call for: a terminal's window size
//! (TIOCGWINSZ) and the bytes waiting unread in a pipe or FIFO (FIONREAD). The only unsafe code
//! of the session module.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd};

use nix::libc;

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_read_bad!(fionread, libc::FIONREAD, libc::c_int);

/// The window size (rows, columns) of the terminal `fd`, or `None` when it is not one.
pub(crate) fn window_size(fd: impl AsFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live
    // local of that type; the fd is borrowed, so open for the call.
    unsafe { tiocgwinsz(fd.as_fd().as_raw_fd(), &mut ws) }.ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Bytes buffered in the pipe or FIFO `fd`, or `None` when the kernel will not say.
pub(crate) fn pending(fd: impl AsFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points at a live local; the
    // fd is borrowed, so open for the call.
    unsafe { fionread(fd.as_fd().as_raw_fd(), &mut n) }.ok()?;
    Some(n.max(0) as usize)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn counts_unread_bytes() {
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(super::pending(&r), Some(5));
    }

    #[test]
    fn a_pipe_has_no_window_size() {
        let (r, _w) = std::io::pipe().unwrap();
        assert_eq!(super::window_size(&r), None);
    }
}
