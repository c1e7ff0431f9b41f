//! Sockets created inside the child's network namespace, by a small forked helper process that has
//! joined that namespace (and its owning user namespace) and hands back fds over SCM_RIGHTS.
//!
//! Why a process and not a thread: entering a network namespace needs CAP_SYS_ADMIN in the
//! caller's *own* user namespace too, which an unprivileged launcher lacks; it must first join the
//! namespace's owning user namespace, and the kernel allows that only to a single-threaded
//! process. A socket keeps the namespace it was created in, so the launcher itself then binds,
//! connects and moves data on it from the host side with no further namespace switches. Sockets
//! come in batches and wait in a small stock, so a burst of connections rarely waits on the helper.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;

/// `NS_GET_USERNS` from linux/nsfs.h: `_IO(0xb7, 0x1)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;

type Reply = tokio::sync::oneshot::Sender<io::Result<Vec<OwnedFd>>>;

/// Sockets the helper makes per request: one goes to the caller, the rest wait in the stock, so
/// a burst of connections costs one round trip with the helper per [`BATCH`] instead of one each.
const BATCH: usize = 8;

/// A factory of sockets that live in one network namespace.
pub struct NetnsSockets {
    tx: Mutex<Option<mpsc::Sender<(libc::c_int, libc::c_int, Reply)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    helper: Pid,
    /// Sockets made ahead, by (domain, type).
    stock: Mutex<HashMap<(libc::c_int, libc::c_int), Vec<OwnedFd>>>,
}

impl NetnsSockets {
    /// Sockets of one kind kept made ahead at most (each holds an fd).
    pub const STOCK_MAX: usize = BATCH;

    /// Forks the helper that joins `netns` (an fd of `/proc/PID/ns/net` or a bind-mounted netns).
    ///
    /// The fork happens on the long-lived thread that then talks to the helper, because the
    /// helper's parent-death signal fires when the *thread* that forked it exits.
    pub fn new(netns: &OwnedFd) -> io::Result<NetnsSockets> {
        let userns = owning_userns(netns)?;
        let netns = netns.try_clone()?;
        let (started_tx, started_rx) = mpsc::sync_channel::<io::Result<Pid>>(1);
        let (tx, rx) = mpsc::channel::<(libc::c_int, libc::c_int, Reply)>();
        let thread = std::thread::Builder::new()
            .name("netns-sockets".into())
            .spawn(move || {
                let started = spawn_helper(userns.as_ref(), &netns);
                // Closed before `new` returns, so callers see a settled fd table.
                drop((userns, netns));
                let parent = match started {
                    Ok((pid, parent)) => {
                        let _ = started_tx.send(Ok(pid));
                        parent
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                for (domain, ty, reply) in rx {
                    let _ = reply.send(request(&parent, domain, ty));
                }
            })?;
        let helper = match started_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(gone());
            }
        };
        Ok(NetnsSockets {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            helper,
            stock: Mutex::default(),
        })
    }

    /// A new socket (`domain`/`ty` as for socket(2), e.g. AF_INET/SOCK_STREAM) in the namespace,
    /// close-on-exec and non-blocking.
    pub async fn socket(&self, domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
        if let Some(fd) = self.take(domain, ty) {
            return Ok(fd);
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(domain, ty, reply)?;
        self.keep(domain, ty, rx.await.map_err(|_| gone())??)
    }

    /// The blocking form of [`NetnsSockets::socket`], for callers outside any async runtime.
    pub fn socket_blocking(&self, domain: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
        if let Some(fd) = self.take(domain, ty) {
            return Ok(fd);
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(domain, ty, reply)?;
        self.keep(domain, ty, rx.blocking_recv().map_err(|_| gone())??)
    }

    /// A socket from the stock, if one is there.
    fn take(&self, domain: libc::c_int, ty: libc::c_int) -> Option<OwnedFd> {
        let mut stock = self.stock.lock().unwrap_or_else(|e| e.into_inner());
        stock.get_mut(&(domain, ty)).and_then(Vec::pop)
    }

    /// Returns the first of a batch from the helper and stocks the others.
    fn keep(
        &self,
        domain: libc::c_int,
        ty: libc::c_int,
        mut batch: Vec<OwnedFd>,
    ) -> io::Result<OwnedFd> {
        let first = batch.pop().ok_or_else(gone)?;
        if !batch.is_empty() {
            let mut stock = self.stock.lock().unwrap_or_else(|e| e.into_inner());
            let kept = stock.entry((domain, ty)).or_default();
            // Callers that found the stock empty at once each brought a batch: keep one batch's
            // worth (the rest close here), so idle sockets stay few.
            let room = Self::STOCK_MAX.saturating_sub(kept.len());
            kept.extend(batch.into_iter().take(room));
        }
        Ok(first)
    }

    fn send(&self, domain: libc::c_int, ty: libc::c_int, reply: Reply) -> io::Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.as_ref()
            .ok_or_else(gone)?
            .send((domain, ty, reply))
            .map_err(|_| gone())
    }
}

impl Drop for NetnsSockets {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which closes our end; the helper then sees EOF.
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
        // ECHILD when a launcher-wide reaper got there first: nothing left to do then.
        let _ = nix::sys::wait::waitpid(self.helper, None);
    }
}

/// Forks the helper and waits for it to report that it has joined the namespaces; returns its
/// pid and our end of the request socket.
fn spawn_helper(userns: Option<&OwnedFd>, netns: &OwnedFd) -> io::Result<(Pid, OwnedFd)> {
    let (parent, child) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    let ppid = nix::unistd::getpid();
    // SAFETY: the child branch calls only async-signal-safe functions (raw syscalls through
    // libc, no allocation, no locks) and ends in `_exit`, so forking a multithreaded process
    // is sound here.
    let fork = unsafe { nix::unistd::fork() }?;
    let helper = match fork {
        nix::unistd::ForkResult::Child => helper_main(
            child.as_raw_fd(),
            userns.map(|f| f.as_raw_fd()),
            netns.as_raw_fd(),
            ppid.as_raw(),
        ),
        nix::unistd::ForkResult::Parent { child: pid } => pid,
    };
    drop(child);
    let mut status = [0u8; 4];
    let n = socket::recv(parent.as_raw_fd(), &mut status, MsgFlags::empty())?;
    let errno = if n == 4 {
        i32::from_ne_bytes(status)
    } else {
        libc::EIO
    };
    if errno != 0 {
        let _ = nix::sys::wait::waitpid(helper, None);
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok((helper, parent))
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the network-namespace socket helper has exited",
    )
}

/// One request/reply round trip with the helper: up to [`BATCH`] new sockets.
fn request(sock: &OwnedFd, domain: libc::c_int, ty: libc::c_int) -> io::Result<Vec<OwnedFd>> {
    let mut req = [0u8; 8];
    req[..4].copy_from_slice(&domain.to_ne_bytes());
    req[4..].copy_from_slice(&ty.to_ne_bytes());
    socket::send(sock.as_raw_fd(), &req, MsgFlags::MSG_NOSIGNAL)?;
    let mut buf = [0u8; 4];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; BATCH]);
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(raws) = c {
            for raw in raws {
                // SAFETY: SCM_RIGHTS just installed `raw` in our fd table; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    if msg.bytes == 0 {
        return Err(gone());
    }
    if fds.is_empty() {
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(buf)));
    }
    Ok(fds)
}

/// The user namespace owning `netns`, or None when it is our own (no need to join it then).
fn owning_userns(netns: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd or -1.
    let raw = unsafe { libc::ioctl(netns.as_raw_fd(), NS_GET_USERNS) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a fresh fd that we now own.
    let userns = unsafe { OwnedFd::from_raw_fd(raw) };
    let theirs = nix::sys::stat::fstat(userns.as_fd())?;
    let ours = nix::sys::stat::stat("/proc/self/ns/user")?;
    Ok(((theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino)).then_some(userns))
}

/// The helper process: join the namespaces, then serve socket(2) requests until EOF.
fn helper_main(sock: RawFd, userns: Option<RawFd>, netns: RawFd, ppid: libc::pid_t) -> ! {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if sys_getppid() != ppid {
        sys_exit(0);
    }
    let mut err = 0;
    if let Some(u) = userns {
        err = sys_setns(u, libc::CLONE_NEWUSER);
    }
    if err == 0 {
        err = sys_setns(netns, libc::CLONE_NEWNET);
    }
    // Keep only the socket (as fd 3) and stdio: inherited listeners must not stay open here.
    let sock = if sock == 3 { 3 } else { sys_dup2(sock, 3) };
    sys_close_range(4);
    sys_send(sock, &err.to_ne_bytes(), &[]);
    if err != 0 || sock < 0 {
        sys_exit(1);
    }
    let mut req = [0u8; 8];
    loop {
        let n = sys_recv(sock, &mut req);
        if n != 8 {
            sys_exit(0);
        }
        let domain = i32::from_ne_bytes([req[0], req[1], req[2], req[3]]);
        let ty = i32::from_ne_bytes([req[4], req[5], req[6], req[7]]);
        let mut fds = [-1; BATCH];
        let mut made = 0;
        let mut err = 0;
        while made < BATCH {
            let fd = sys_socket(domain, ty | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK);
            if fd < 0 {
                err = errno();
                break;
            }
            fds[made] = fd;
            made += 1;
        }
        // Some sockets are an answer (a later failure, e.g. EMFILE, only ends the batch early).
        sys_send(sock, &err.to_ne_bytes(), &fds[..made]);
        for &fd in &fds[..made] {
            sys_close(fd);
        }
    }
}

fn errno() -> libc::c_int {
    nix::errno::Errno::last_raw()
}

fn sys_getppid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

fn sys_exit(code: libc::c_int) -> ! {
    // SAFETY: _exit ends the forked helper without running the parent's atexit handlers.
    unsafe { libc::_exit(code) }
}

fn sys_setns(fd: RawFd, nstype: libc::c_int) -> libc::c_int {
    // SAFETY: setns on an fd we hold open; failure is reported through errno.
    if unsafe { libc::setns(fd, nstype) } == 0 {
        0
    } else {
        errno()
    }
}

fn sys_dup2(from: RawFd, to: RawFd) -> RawFd {
    // SAFETY: dup2 onto fd 3 in the helper, which owns its whole fd table.
    unsafe { libc::dup2(from, to) }
}

fn sys_close_range(first: libc::c_uint) {
    // SAFETY: closes fds the helper inherited and never uses.
    unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) };
}

fn sys_close(fd: RawFd) {
    // SAFETY: `fd` was created by this helper and was just passed on; the copy here is ours.
    unsafe { libc::close(fd) };
}

fn sys_socket(domain: libc::c_int, ty: libc::c_int) -> RawFd {
    // SAFETY: socket(2) with caller-chosen integers; errors come back as -1.
    unsafe { libc::socket(domain, ty, 0) }
}

fn sys_recv(sock: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is a valid writable buffer of the given length.
    unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), 0) }
}

/// The control message carrying up to [`BATCH`] fds, laid out as CMSG_SPACE(BATCH * sizeof(int))
/// on Linux (BATCH ints are a multiple of the 8-byte alignment).
#[repr(C)]
struct FdCmsg {
    hdr: libc::cmsghdr,
    fds: [libc::c_int; BATCH],
}

fn sys_send(sock: RawFd, data: &[u8], fds: &[RawFd]) {
    // SAFETY: cmsghdr is plain old data; all-zero is a valid value.
    let mut hdr: libc::cmsghdr = unsafe { std::mem::zeroed() };
    let n = fds.len().min(BATCH);
    hdr.cmsg_len =
        (std::mem::size_of::<libc::cmsghdr>() + n * std::mem::size_of::<libc::c_int>()) as _;
    hdr.cmsg_level = libc::SOL_SOCKET;
    hdr.cmsg_type = libc::SCM_RIGHTS;
    let mut cmsg = FdCmsg {
        hdr,
        fds: [-1; BATCH],
    };
    cmsg.fds[..n].copy_from_slice(&fds[..n]);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if n > 0 {
        msg.msg_control = (&mut cmsg as *mut FdCmsg).cast();
        // CMSG_SPACE: the data rounded up to the header's alignment, so no second header fits.
        let data = (n * std::mem::size_of::<libc::c_int>() + 7) & !7;
        msg.msg_controllen = (std::mem::size_of::<libc::cmsghdr>() + data) as _;
    }
    // SAFETY: `msg` points at `iov`, `data` and `cmsg`, all alive for the duration of the call.
    unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
}
