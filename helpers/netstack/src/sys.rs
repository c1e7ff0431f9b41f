//! The unsafe corner: opening a tap device (TUNSETIFF, with a virtio-net header and checksum
//! offload) and setting its MTU inside a network namespace.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;

use crate::NetstackError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNGETIFF: libc::c_ulong = 0x8004_54d2;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
/// Offload flag: the tap may hand over TCP/UDP frames whose checksum is left to the receiver.
const TUN_F_CSUM: libc::c_ulong = 0x01;

fn ifreq_named(name: &str) -> Result<libc::ifreq, NetstackError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(NetstackError::Config(format!(
            "interface name {name:?} must be 1 to {} bytes without NUL",
            libc::IFNAMSIZ - 1
        )));
    }
    // SAFETY: ifreq is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// Opens /dev/net/tun as tap `name` (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, with checksum offload) in
/// the calling thread's network namespace and sets its MTU. Each frame read or written carries a
/// `struct virtio_net_hdr` in front: the namespace's kernel leaves TCP/UDP checksums to the
/// stack (which need not check them on a local link), and the stack's TCP segments go in with
/// only their pseudo-header sum (see [`crate::device`]).
pub(crate) fn open_tap_here(name: &str, mtu: usize) -> Result<OwnedFd, NetstackError> {
    let tun_path = "/dev/net/tun";
    let fd = open(tun_path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| {
        NetstackError::Tap(format!(
            "open {tun_path}: {e} (it must exist and be mode 0666 for rootless use)"
        ))
    })?;
    let mut req = ifreq_named(name)?;
    req.ifr_ifru.ifru_flags =
        (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    // SAFETY: fd is an open /dev/net/tun descriptor and req is a valid, initialised ifreq that
    // outlives the call; TUNSETIFF reads and writes only that struct.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut libc::ifreq) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(NetstackError::Tap(format!(
            "TUNSETIFF {name}: {e} (the caller needs CAP_NET_ADMIN in the namespace's user namespace)"
        )));
    }
    // SAFETY: fd is the tap just set up; TUNSETOFFLOAD takes its flags by value.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, TUN_F_CSUM) };
    if rc < 0 {
        // Without it frames come with full checksums, which works as well (more slowly).
        tracing::debug!("TUNSETOFFLOAD {name}: {}", std::io::Error::last_os_error());
    }
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| NetstackError::Tap(format!("socket for SIOCSIFMTU: {e}")))?;
    let mut req = ifreq_named(name)?;
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    // SAFETY: sock is an open socket and req a valid ifreq naming an existing interface; the
    // ioctl only reads the struct.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFMTU,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return Err(NetstackError::Tap(format!("set MTU {mtu} on {name}: {e}")));
    }
    Ok(fd)
}

/// Whether `fd` is a tap whose frames carry a virtio-net header (IFF_VNET_HDR); false for any
/// other descriptor (a socket pair in tests, or a tap someone else opened without it).
pub(crate) fn has_vnet_hdr(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: ifreq is a plain C struct for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    // SAFETY: TUNGETIFF only writes the ifreq passed, which outlives the call; on a descriptor
    // that is not a tap it fails (EBADFD/ENOTTY/EINVAL) without touching it.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF, &mut req as *mut libc::ifreq) };
    // SAFETY: on success TUNGETIFF filled ifru_flags; reading a c_short of the union is valid.
    rc == 0 && i32::from(unsafe { req.ifr_ifru.ifru_flags }) & libc::IFF_VNET_HDR != 0
}

/// See [`crate::open_tap_in_netns`].
pub(crate) fn open_tap_in_netns(
    netns: BorrowedFd<'_>,
    name: &str,
    mtu: usize,
) -> Result<OwnedFd, NetstackError> {
    let ns = netns
        .try_clone_to_owned()
        .map_err(|e| NetstackError::Tap(format!("dup netns fd: {e}")))?;
    let name = name.to_owned();
    // setns affects only the calling thread: do it on a thread that exits afterwards, so no
    // other thread (and no runtime worker) ever ends up in the namespace.
    std::thread::Builder::new()
        .name("netstack-tap".into())
        .spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| {
                NetstackError::Tap(format!("setns into the network namespace: {e}"))
            })?;
            open_tap_here(&name, mtu)
        })
        .map_err(|e| NetstackError::Tap(format!("spawn tap thread: {e}")))?
        .join()
        .map_err(|_| NetstackError::Tap("tap thread panicked".into()))?
}
