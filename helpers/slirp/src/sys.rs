//! burrow-slirp's unsafe corner: forking while still single-threaded.
#![allow(unsafe_code)]

use nix::unistd::ForkResult;

/// Forks the process. Only called from main before any thread is started (the stack's thread
/// comes later), so the child cannot inherit a lock held by another thread.
pub fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: burrow-slirp has one thread when this runs (see above), and the child only makes
    // system calls and exits.
    unsafe { nix::unistd::fork() }
}

/// Takes ownership of a descriptor received with SCM_RIGHTS, or inherited and checked open.
pub fn own_received(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: either the kernel installed `fd` for the SCM_RIGHTS message we received, or it is
    // a descriptor our parent passed us by number (--ready-fd/--exit-fd), checked open; nothing
    // else in this process refers to it, so owning (and closing) it is sound.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Borrows an inherited descriptor number for an F_GETFD probe.
pub fn borrow(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: only used for fcntl(F_GETFD), which is harmless even on a closed number (EBADF).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}
