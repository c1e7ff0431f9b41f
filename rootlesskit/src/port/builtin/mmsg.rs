//! Batched datagram I/O for the UDP forwarder: recvmmsg(2) into buffers allocated once, and
//! sendmmsg(2) of a run of them on a connected socket. One system call moves up to [`BATCH`]
//! datagrams instead of one.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

/// Datagrams one system call carries at most.
pub(crate) const BATCH: usize = 32;
/// The room for one datagram (the largest UDP payload).
pub(crate) const DGRAM: usize = 65536;

/// A set of received datagrams and where each came from.
pub(crate) struct Batch {
    /// BATCH slots of DGRAM bytes; zeroed pages the kernel never wrote stay unbacked.
    buf: Vec<u8>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

impl Batch {
    pub(crate) fn new() -> Self {
        Batch {
            buf: vec![0; BATCH * DGRAM],
            lens: [0; BATCH],
            from: [None; BATCH],
        }
    }

    /// Receives what `fd` has queued, up to [`BATCH`] datagrams, without blocking; returns how
    /// many (EAGAIN when none).
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .buf
            .chunks_mut(DGRAM)
            .map(|c| [IoSliceMut::new(c)])
            .collect();
        // The headers hold raw pointers (not Send): made per call, a few KiB.
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
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
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        &self.buf[i * DGRAM..i * DGRAM + self.lens[i].min(DGRAM)]
    }

    /// The sender of datagram `i` of the last [`Batch::recv`].
    pub(crate) fn from(&self, i: usize) -> Option<SocketAddr> {
        self.from[i]
    }
}

/// Sends `datagrams` on the connected socket `fd` without blocking; returns how many went
/// (EAGAIN when none: the socket's buffer is full).
pub(crate) fn send_connected(fd: RawFd, datagrams: &[&[u8]]) -> io::Result<usize> {
    send_to(fd, datagrams, None)
}

/// Sends `datagrams` on `fd`, each to `to` when given; returns how many went.
pub(crate) fn send_to(fd: RawFd, datagrams: &[&[u8]], to: Option<SocketAddr>) -> io::Result<usize> {
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
        assert_eq!(send_connected(tx.as_raw_fd(), &refs).unwrap(), 5);
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
            send_to(rx.as_raw_fd(), &refs[..2], Some(tx.local_addr().unwrap())).unwrap(),
            2
        );
        assert_eq!(b.recv(tx.as_raw_fd()).unwrap(), 2);
        assert_eq!(b.datagram(1), msgs[1].as_slice());
    }
}
