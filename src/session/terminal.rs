//! The CLI's own terminal while a session is attached: raw mode (termios, set on entry and
//! restored by a guard) and the window size the process's pty follows.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// A terminal in raw mode until dropped, as Docker's CLI sets it: no echo, no line editing, no
/// signals from keys (they reach the process's pty as bytes), no output processing.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the CLI's terminal (its stdin) in raw mode; `None` when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        RawMode::enter_on(std::io::stdin().as_fd())
    }

    /// Puts the terminal `fd` in raw mode; `None` when it is not a terminal.
    pub fn enter_on(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        // Our own handle, so the guard restores the same terminal whatever happens to `fd`.
        let fd = fd.try_clone_to_owned().ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(err) = termios::tcsetattr(&self.fd, SetArg::TCSADRAIN, &self.saved) {
            tracing::debug!(%err, "restoring the terminal");
        }
    }
}

/// The size (rows, columns) of the CLI's terminal (its stdin), or `None` when it has none.
pub fn size() -> Option<(u16, u16)> {
    super::sys::window_size(std::io::stdin().as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::termios::{LocalFlags, OutputFlags};

    #[test]
    fn raw_mode_is_set_and_restored() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let before = termios::tcgetattr(&pty.slave).unwrap();
        assert!(before
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO));
        let raw = RawMode::enter_on(pty.slave.as_fd()).unwrap();
        let during = termios::tcgetattr(&pty.slave).unwrap();
        assert!(!during
            .local_flags
            .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
        assert!(!during.output_flags.contains(OutputFlags::OPOST));
        drop(raw);
        let after = termios::tcgetattr(&pty.slave).unwrap();
        assert_eq!(after.local_flags, before.local_flags);
        assert_eq!(after.output_flags, before.output_flags);
        assert_eq!(after.input_flags, before.input_flags);
    }

    #[test]
    fn not_a_terminal() {
        let (r, _w) = std::io::pipe().unwrap();
        assert!(RawMode::enter_on(r.as_fd()).is_none());
    }

    #[test]
    fn window_size_of_a_pty() {
        let ws = nix::pty::Winsize {
            ws_row: 33,
            ws_col: 91,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        assert_eq!(super::super::sys::window_size(&pty.slave), Some((33, 91)));
    }
}
