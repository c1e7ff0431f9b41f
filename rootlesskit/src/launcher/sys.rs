//! The launcher's few unsafe operations: fork in a single-threaded process, adopting fds
//! inherited across exec, and copying an fd out of the child stage (pidfd_getfd).
#![allow(unsafe_code)]

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::unistd::ForkResult;

/// Forks the calling process.
///
/// Only called by the launcher's child stage and its PID-1 reaper, which never start threads, so
/// the new process has the one thread it needs and no lock held by another thread.
pub fn fork_single_threaded() -> nix::Result<ForkResult> {
    // SAFETY: the caller is single-threaded (the child stage starts no threads), so the forked
    // process cannot inherit a lock held by a thread that does not exist in it.
    unsafe { nix::unistd::fork() }
}

/// Borrows an fd number inherited from our parent for the duration of a check.
pub fn borrow_raw(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: callers pass an fd number the parent placed in our environment and only use the
    // borrow for an fcntl(F_GETFD) probe, which is harmless even on a closed fd (EBADF).
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of an fd inherited from our parent (checked open with [`borrow_raw`]).
pub fn own_raw(fd: RawFd) -> OwnedFd {
    // SAFETY: the fd is open (checked by the caller), was created by our parent for us alone and
    // nothing else in this process refers to it, so owning (and eventually closing) it is sound.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Copies fd `fd` of process `pid` (our child stage, which we may ptrace) into this process.
pub fn take_fd_of(pid: libc::pid_t, fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pidfd_open returned a fresh fd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes the pidfd we own, a target fd number and flags (0); it returns a
    // new fd (close-on-exec) or -1, and touches no memory of ours.
    let got = unsafe {
        libc::syscall(
            libc::SYS_pidfd_getfd,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            fd,
            0,
        )
    };
    if got < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pidfd_getfd returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(got as RawFd) })
}
