//! Batched datagram I/O for UDP forwarding (the stack's and the builtin port driver's):
//! recvmmsg(2) into buffers allocated once, and
//! sendmmsg(2) of a run of them on a connected socket. One system call moves up to [`BATCH`]
//! datagrams instead of one; a run of equal-sized datagrams to one peer goes as a single UDP
//! GSO send (`UDP_SEGMENT`), which the kernel takes through its output path once and splits only
//! where it delivers them.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmmsg, sendmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

/// Datagrams one system call carries at most.
pub const BATCH: usize = 32;
/// The room for one datagram (the largest UDP payload).
pub const DGRAM: usize = 65536;

/// A set of received datagrams and where each came from.
pub struct Batch {
    /// One DGRAM-byte slot per datagram; zeroed pages the kernel never wrote stay unbacked.
    buf: Vec<u8>,
    lens: Vec<usize>,
    from: Vec<Option<SocketAddr>>,
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Self {
        Self::with_slots(BATCH)
    }

    /// A batch that receives at most `slots` datagrams (1 to [`BATCH`]) per call.
    pub fn with_slots(slots: usize) -> Self {
        let slots = slots.clamp(1, BATCH);
        Batch {
            buf: vec![0; slots * DGRAM],
            lens: vec![0; slots],
            from: vec![None; slots],
        }
    }

    /// Receives what `fd` has queued, up to the batch's slots, without blocking; returns how
    /// many (EAGAIN when none).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buf
            .chunks_mut(DGRAM)
            .map(|c| [IoSliceMut::new(c)])
            .collect();
        // The headers hold raw pointers (not Send): made per call, a few KiB.
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(self.lens.len(), None);
        let got = recvmmsg(
            fd,
            &mut hdrs,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for (i, m) in got.enumerate() {
            self.lens[i] = m.bytes;
            self.from[i] = m.address.as_ref().and_then(to_std);
            n = i + 1;
        }
        Ok(n)
    }

    /// Datagram `i` of the last [`Batch::recv`].
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.buf[i * DGRAM..i * DGRAM + self.lens[i].min(DGRAM)]
    }

    /// The sender of datagram `i` of the last [`Batch::recv`].
    pub fn from(&self, i: usize) -> Option<SocketAddr> {
        self.from[i]
    }
}

/// Socket buffer size for a forwarded UDP port: room for a burst while the forwarder is not
/// scheduled (at 2 Gbit/s the kernel's default, 208 KiB, fills in under a millisecond).
pub const SOCK_BUF: usize = 4 << 20;

/// Sizes `sock`'s receive and send buffers to [`SOCK_BUF`]. The kernel caps the size at
/// net.core.rmem_max/wmem_max; failing to set it is not an error.
pub fn size_buffers(sock: &impl std::os::fd::AsFd) {
    use nix::sys::socket::{setsockopt, sockopt};
    let _ = setsockopt(sock, sockopt::RcvBuf, &SOCK_BUF);
    let _ = setsockopt(sock, sockopt::SndBuf, &SOCK_BUF);
}

/// Most datagrams one GSO send carries (the kernel's `UDP_MAX_SEGMENTS` is 64 on older kernels,
/// 128 on newer ones).
const GSO_SEGMENTS: usize = 64;
/// Most payload bytes one GSO send carries (an IP datagram's limit, less its headers).
pub const GSO_BYTES: usize = 65_000;

/// Whether a socket's sends may use UDP GSO: on until a GSO send fails (a kernel without it, or a
/// path whose MTU is below the datagrams' size), then off for that socket.
#[derive(Debug)]
pub struct Gso(AtomicBool);

impl Default for Gso {
    fn default() -> Self {
        Self::new()
    }
}

impl Gso {
    pub fn new() -> Self {
        Gso(AtomicBool::new(true))
    }

    pub fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn off(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// How many of the leading `datagrams` make one GSO send: a run of one size, the last of which
/// may be shorter, within the kernel's limits.
pub fn gso_run(datagrams: &[&[u8]]) -> usize {
    let Some(first) = datagrams.first() else {
        return 0;
    };
    let size = first.len();
    if size == 0 {
        return 1;
    }
    let most = GSO_SEGMENTS.min(GSO_BYTES / size).max(1);
    let mut n = 1;
    while n < datagrams.len() && n < most {
        let len = datagrams[n].len();
        if len == size {
            n += 1;
        } else {
            if len > 0 && len < size {
                n += 1;
            }
            break;
        }
    }
    n
}

/// Yields the calling thread's CPU after a burst of datagrams went out, so that the receiver
/// it woke (on a busy machine, often waiting for this very CPU) drains its socket before the next
/// burst. Without it a forwarder, cheaper per datagram than a receiver reading one at a time,
/// filled the receiver's buffer (208 KiB by default) and half of a 2 Gbit/s stream was dropped
/// there.
pub fn let_receiver_run() {
    let _ = nix::sched::sched_yield();
}

/// Sends `datagrams` on the connected socket `fd` without blocking; returns how many went
/// (EAGAIN when none: the socket's buffer is full).
pub fn send_connected(fd: RawFd, datagrams: &[&[u8]], gso: &Gso) -> io::Result<usize> {
    send_to(fd, datagrams, None, gso)
}

/// Sends `datagrams` on `fd`, each to `to` when given; returns how many went. A leading run of
/// equal-sized datagrams goes as one GSO send while `gso` allows; the rest by sendmmsg.
pub fn send_to(
    fd: RawFd,
    datagrams: &[&[u8]],
    to: Option<SocketAddr>,
    gso: &Gso,
) -> io::Result<usize> {
    if gso.on() {
        let run = gso_run(datagrams);
        if run > 1 {
            match send_gso(fd, &datagrams[..run], to) {
                Ok(()) => return Ok(run),
                // Not supported here, or the path's MTU is below the datagrams' size: each
                // datagram on its own from now on.
                Err(Errno::EINVAL | Errno::EIO | Errno::EOPNOTSUPP | Errno::ENOPROTOOPT) => {
                    gso.off()
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    send_each(fd, datagrams, to)
}

/// One send of `datagrams` (equal in size but the last) that the kernel splits into them.
fn send_gso(fd: RawFd, datagrams: &[&[u8]], to: Option<SocketAddr>) -> nix::Result<()> {
    let iov: Vec<IoSlice<'_>> = datagrams.iter().map(|d| IoSlice::new(d)).collect();
    let size = datagrams[0].len() as u16;
    let cmsgs = [ControlMessage::UdpGsoSegments(&size)];
    let addr = to.map(SockaddrStorage::from);
    sendmsg(fd, &iov, &cmsgs, MsgFlags::MSG_DONTWAIT, addr.as_ref()).map(|_| ())
}

/// Sends each of `datagrams` as its own message in one sendmmsg; returns how many went.
fn send_each(fd: RawFd, datagrams: &[&[u8]], to: Option<SocketAddr>) -> io::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = datagrams.iter().map(|d| [IoSlice::new(d)]).collect();
    let addr = to.map(SockaddrStorage::from);
    let addrs = vec![addr; datagrams.len()];
    let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(datagrams.len(), None);
    let cmsgs: [ControlMessage<'_>; 0] = [];
    let sent = sendmmsg(fd, &mut hdrs, &slices, addrs, cmsgs, MsgFlags::MSG_DONTWAIT)
        .map_err(io::Error::from)?;
    Ok(sent.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_burst_moves_in_one_batch_each_way() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100 + i as usize]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let gso = Gso::new();
        assert_eq!(send_connected(tx.as_raw_fd(), &refs, &gso).unwrap(), 5);
        let mut b = Batch::new();
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 5);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(b.datagram(i), m.as_slice());
            assert_eq!(b.from(i), Some(tx.local_addr().unwrap()));
        }
        let e = b.recv(rx.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // Replies to an unconnected socket's peer.
        assert_eq!(
            send_to(
                rx.as_raw_fd(),
                &refs[..2],
                Some(tx.local_addr().unwrap()),
                &gso
            )
            .unwrap(),
            2
        );
        assert_eq!(b.recv(tx.as_raw_fd()).unwrap(), 2);
        assert_eq!(b.datagram(1), msgs[1].as_slice());
    }

    #[test]
    fn a_run_of_one_size_goes_as_one_gso_send_and_arrives_as_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        // Four of 1400 bytes and a shorter last one make one run; the 1400 after it another.
        let mut msgs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1400]).collect();
        msgs.push(vec![9; 300]);
        msgs.push(vec![7; 1400]);
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        assert_eq!(gso_run(&refs), 5);
        let gso = Gso::new();
        let first = send_connected(tx.as_raw_fd(), &refs, &gso).unwrap();
        // Linux has had UDP GSO since 4.18: the run goes in one send.
        assert_eq!(first, 5);
        assert!(gso.on());
        let mut sent = first;
        while sent < refs.len() {
            sent += send_connected(tx.as_raw_fd(), &refs[sent..], &gso).unwrap();
        }
        let mut b = Batch::new();
        let mut got = Vec::new();
        while got.len() < msgs.len() {
            let n = b.recv(rx.as_raw_fd()).unwrap();
            got.extend((0..n).map(|i| b.datagram(i).to_vec()));
        }
        assert_eq!(got, msgs);
    }

    #[test]
    fn a_batch_with_fewer_slots_takes_that_many_per_call_and_sizing_buffers_takes() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        size_buffers(&rx);
        // The kernel doubles what is asked, capped at rmem_max: more than its default either way.
        let got = nix::sys::socket::getsockopt(&rx, nix::sys::socket::sockopt::RcvBuf).unwrap();
        assert!(got > 212_992, "receive buffer {got}");
        for i in 0..5u8 {
            tx.send(&[i; 10]).unwrap();
        }
        let mut b = Batch::with_slots(3);
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 3);
        assert_eq!(b.datagram(2), &[2u8; 10]);
        assert_eq!(b.recv(rx.as_raw_fd()).unwrap(), 2);
        assert_eq!(b.datagram(1), &[4u8; 10]);
        assert_eq!(Batch::with_slots(0).lens.len(), 1);
        assert_eq!(Batch::with_slots(1000).lens.len(), BATCH);
    }

    #[test]
    fn runs_stop_at_a_size_change_and_the_kernel_limits() {
        let big = vec![0u8; 1400];
        let small = vec![0u8; 10];
        let refs: Vec<&[u8]> = vec![&small, &big, &big];
        assert_eq!(gso_run(&refs), 1);
        let refs: Vec<&[u8]> = vec![&big; 100];
        assert_eq!(gso_run(&refs), GSO_BYTES / 1400);
        let refs: Vec<&[u8]> = vec![&small; 100];
        assert_eq!(gso_run(&refs), GSO_SEGMENTS);
        assert_eq!(gso_run(&[]), 0);
    }
}
