//! The container's NIS domain name where runc cannot set it: runc 1.1 ignores the spec's
//! `domainname`, and the `kernel.domainname` sysctl is not writable from a user namespace, so
//! rootless containers get it from a createContainer hook that runc runs inside the
//! container's namespaces (`burrow internal set-domainname NAME`). The only unsafe code here.
#![allow(unsafe_code)]

use std::io;

use nix::libc;

/// Sets the domain name of the calling process's UTS namespace.
pub fn set_domainname(name: &str) -> io::Result<()> {
    let bytes = name.as_bytes();
    // SAFETY: the pointer and length describe `bytes`, which outlives the call; the kernel
    // only reads that many bytes and keeps no reference to them.
    let rc = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
