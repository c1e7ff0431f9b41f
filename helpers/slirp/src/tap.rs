//! Opens the tap device inside the target namespaces from a short-lived forked process (joining
//! a user namespace needs a single-threaded process, and we must stay in the host's network
//! namespace), which hands the descriptor back over a socketpair.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{bail, Context};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::stat::fstat;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;

use burrow_rootlesskit::launcher::netconf;

/// What the forked process sets up in the namespace.
pub struct TapRequest<'a> {
    pub netns: &'a Path,
    pub userns: Option<&'a Path>,
    pub name: &'a str,
    pub mtu: usize,
    /// The MAC address to give the tap (slirp4netns's --macaddress).
    pub mac: Option<[u8; 6]>,
    /// Address, prefix and gateway to configure (slirp4netns's --configure).
    pub configure: Option<netconf::Plan>,
}

/// True when `fd` is the user namespace this process is already in.
fn same_userns(fd: &std::fs::File) -> bool {
    match (fstat(fd), std::fs::metadata("/proc/self/ns/user")) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.st_ino == b.ino() && a.st_dev == b.dev()
        }
        _ => false,
    }
}

/// Opens (and optionally configures) the tap; returns its descriptor.
pub fn open(req: &TapRequest<'_>) -> anyhow::Result<OwnedFd> {
    let netns = std::fs::File::open(req.netns).with_context(|| {
        format!(
            "cannot open the network namespace {} (is the target process alive and yours?)",
            req.netns.display()
        )
    })?;
    let userns = match req.userns {
        Some(p) => {
            let f = std::fs::File::open(p)
                .with_context(|| format!("cannot open the user namespace {}", p.display()))?;
            (!same_userns(&f)).then_some(f)
        }
        None => None,
    };
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("cannot create a socketpair")?;
    match crate::sys::fork_single_threaded().context("cannot fork")? {
        ForkResult::Child => {
            drop(ours);
            let code = match child(req, &netns, userns.as_ref(), &theirs) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("burrow-slirp: error: {e:#}");
                    1
                }
            };
            std::process::exit(code);
        }
        ForkResult::Parent { child: pid } => {
            drop(theirs);
            let got = receive_fd(&ours);
            let status = waitpid(pid, None).context("cannot wait for the tap helper")?;
            match (got, status) {
                (Ok(fd), WaitStatus::Exited(_, 0)) => Ok(fd),
                (Err(e), WaitStatus::Exited(_, 0)) => Err(e),
                (_, st) => bail!(
                    "setting up {} in the namespace failed (helper: {st:?}; its message is above)",
                    req.name
                ),
            }
        }
    }
}

fn child(
    req: &TapRequest<'_>,
    netns: &std::fs::File,
    userns: Option<&std::fs::File>,
    sock: &OwnedFd,
) -> anyhow::Result<()> {
    if let Some(u) = userns {
        setns(u, CloneFlags::CLONE_NEWUSER)
            .context("cannot join the target's user namespace (it must be owned by your user)")?;
    }
    setns(netns, CloneFlags::CLONE_NEWNET).context("cannot join the target's network namespace")?;
    let tap = burrow_netstack::open_tap(req.name, req.mtu)?;
    if let Some(mac) = req.mac {
        netconf::set_mac(req.name, mac)?;
    }
    if let Some(plan) = &req.configure {
        // slirp4netns brings the loopback up before tap0: a namespace podman or a script
        // made has it down, and nothing could bind 127.0.0.1 there.
        netconf::loopback_up()?;
        netconf::configure(plan)?;
    }
    let fds = [tap.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[std::io::IoSlice::new(b"t")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("cannot hand the tap back")?;
    Ok(())
}

fn receive_fd(sock: &OwnedFd) -> anyhow::Result<OwnedFd> {
    let mut buf = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("no tap from the helper")?;
    for c in msg.cmsgs().context("bad control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // The kernel just installed this descriptor for us alone.
                return Ok(own(fd));
            }
        }
    }
    bail!("the helper closed without handing over the tap")
}

fn own(fd: RawFd) -> OwnedFd {
    crate::sys::own_received(fd)
}
