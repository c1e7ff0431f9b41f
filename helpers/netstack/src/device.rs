//! The smoltcp device over a frame descriptor: frames are read in batches into buffers allocated
//! once, and written straight from one reused transmit buffer. On a tap opened with a
//! virtio-net header (see [`crate::sys`]) each frame carries that header: the stack leaves TCP
//! checksums to the header (the kernel trusts or completes a partial checksum) and does not
//! verify those of frames the namespace's kernel left partial.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use smoltcp::phy::{Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Frames read per batch.
pub(crate) const BATCH: usize = 64;
const ETH_HEADER: usize = 14;
/// `struct virtio_net_hdr` (the tap's default header size).
pub(crate) const VNET_HDR: usize = 10;
/// virtio_net_hdr.flags: the checksum at csum_start + csum_offset is the pseudo-header's only.
const VNET_F_NEEDS_CSUM: u8 = 1;
/// virtio_net_hdr.gso_type: UDP segmentation (one datagram per gso_size bytes of payload).
const VNET_GSO_UDP_L4: u8 = 5;

pub(crate) struct FrameDevice {
    fd: OwnedFd,
    mtu: usize,
    rx: Vec<Vec<u8>>,
    rx_len: [usize; BATCH],
    rx_head: usize,
    rx_count: usize,
    tx: Vec<u8>,
    /// Bytes of virtio-net header in front of each frame on `fd` (0 or [`VNET_HDR`]).
    hdr: usize,
    /// Frames handed to smoltcp after the batch (SYNs held back until their host connect ended).
    injected: Vec<Vec<u8>>,
    /// The injected frame smoltcp is reading now.
    current: Vec<u8>,
    /// See [`FrameDevice::udp_gso`].
    udp_gso: std::cell::Cell<bool>,
}

impl FrameDevice {
    pub(crate) fn new(fd: OwnedFd, mtu: usize) -> Self {
        let hdr = if crate::sys::has_vnet_hdr(fd.as_fd()) {
            VNET_HDR
        } else {
            0
        };
        let frame = hdr + mtu + ETH_HEADER;
        Self {
            fd,
            mtu,
            rx: (0..BATCH).map(|_| vec![0; frame]).collect(),
            rx_len: [0; BATCH],
            rx_head: 0,
            rx_count: 0,
            tx: vec![0; frame],
            hdr,
            injected: Vec::new(),
            current: Vec::new(),
            udp_gso: std::cell::Cell::new(true),
        }
    }

    /// A device over `fd` (a socket pair in tests) whose frames carry a virtio-net header.
    #[cfg(test)]
    pub(crate) fn with_vnet_hdr(fd: OwnedFd, mtu: usize) -> Self {
        let mut dev = Self::new(fd, mtu);
        dev.hdr = VNET_HDR;
        dev
    }

    #[cfg(test)]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads up to [`BATCH`] frames (stopping at EAGAIN); returns how many are pending.
    pub(crate) fn fill(&mut self) -> Result<usize, Errno> {
        self.rx_head = 0;
        self.rx_count = 0;
        while self.rx_count < BATCH {
            match nix::unistd::read(&self.fd, &mut self.rx[self.rx_count]) {
                Ok(0) => return Err(Errno::EPIPE),
                Ok(n) => {
                    self.rx_len[self.rx_count] = n;
                    if n <= self.hdr {
                        self.rx_len[self.rx_count] = 0;
                    }
                    self.rx_count += 1;
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(self.rx_count)
    }

    /// The frames read by the last [`FrameDevice::fill`] (a discarded one is empty).
    pub(crate) fn pending(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.rx_count).map(|i| self.frame(i))
    }

    /// Frame `i` of the batch without its virtio-net header (empty when discarded).
    fn frame(&self, i: usize) -> &[u8] {
        match self.rx_len[i] {
            0 => &[],
            n => &self.rx[i][self.hdr..n],
        }
    }

    /// Queues a frame for smoltcp as if it had just been read from the tap.
    pub(crate) fn inject(&mut self, frame: Vec<u8>) {
        self.injected.push(frame);
    }

    /// Frame `i` of the batch, copied out and kept from smoltcp (handled outside it).
    pub(crate) fn take(&mut self, i: usize) -> Vec<u8> {
        let frame = if i < self.rx_count {
            self.frame(i).to_vec()
        } else {
            Vec::new()
        };
        self.discard(i);
        frame
    }

    /// Keeps frame `i` of the batch from smoltcp (it was handled outside it).
    pub(crate) fn discard(&mut self, i: usize) {
        if i < self.rx_count {
            self.rx_len[i] = 0;
        }
    }

    /// Whether frames carry a virtio-net header, so that UDP checksums and segmentation can be
    /// left to the namespace's kernel ([`FrameDevice::send_udp`]).
    pub(crate) fn offloads(&self) -> bool {
        self.hdr > 0
    }

    /// Writes a UDP frame made of `headers` (Ethernet, IP and a UDP header whose checksum field
    /// holds only the pseudo-header's sum: the kernel completes or trusts it, NEEDS_CSUM) and
    /// `payloads`, gathered by the write itself. With `gso_size` the payloads are several
    /// datagrams of that size (the last may be shorter) that the kernel splits where it
    /// delivers them (UDP GSO). Only for a device that [`FrameDevice::offloads`]. Returns false
    /// when the kernel refused a GSO frame (a tap takes them from Linux 6.2 on): GSO is then off
    /// for this device ([`FrameDevice::udp_gso`]) and the caller sends the datagrams one by one.
    pub(crate) fn send_udp(
        &self,
        headers: &[u8],
        payloads: &[&[u8]],
        gso_size: Option<u16>,
    ) -> bool {
        let l4 = headers.len() - 8;
        let mut hdr = [0u8; VNET_HDR];
        hdr[0] = VNET_F_NEEDS_CSUM;
        if let Some(size) = gso_size {
            hdr[1] = VNET_GSO_UDP_L4;
            hdr[2..4].copy_from_slice(&(headers.len() as u16).to_le_bytes());
            hdr[4..6].copy_from_slice(&size.to_le_bytes());
        }
        hdr[6..8].copy_from_slice(&(l4 as u16).to_le_bytes());
        hdr[8..10].copy_from_slice(&6u16.to_le_bytes());
        let mut iov = Vec::with_capacity(2 + payloads.len());
        iov.push(std::io::IoSlice::new(&hdr));
        iov.push(std::io::IoSlice::new(headers));
        iov.extend(payloads.iter().map(|p| std::io::IoSlice::new(p)));
        match self.writev(&iov) {
            Err(Errno::EINVAL) if gso_size.is_some() => {
                tracing::debug!("the tap refused a UDP GSO frame; sending datagrams singly");
                self.udp_gso.set(false);
                false
            }
            _ => true,
        }
    }

    /// Whether runs of UDP datagrams may go to the tap as one GSO frame (until it refuses one).
    pub(crate) fn udp_gso(&self) -> bool {
        self.udp_gso.get()
    }

    #[cfg(test)]
    pub(crate) fn set_udp_gso(&self, on: bool) {
        self.udp_gso.set(on);
    }

    /// Writes one frame to the tap (dropped when the tap's queue is full, as a NIC would).
    pub(crate) fn send_frame(&self, frame: &[u8]) {
        if self.hdr == 0 {
            write_frame(self.fd.as_fd(), frame);
        } else {
            // Checksums complete: a header of zeroes.
            self.write_with(&[0u8; VNET_HDR], frame);
        }
    }

    /// One write of `hdr` then `frame`; dropped when the tap's queue is full.
    fn write_with(&self, hdr: &[u8], frame: &[u8]) {
        let _ = self.writev(&[std::io::IoSlice::new(hdr), std::io::IoSlice::new(frame)]);
    }

    /// One frame gathered from `iov`; dropped when the tap's queue is full.
    fn writev(&self, iov: &[std::io::IoSlice<'_>]) -> Result<(), Errno> {
        loop {
            match nix::sys::uio::writev(self.fd.as_fd(), iov) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) | Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::debug!("tap write: {e}");
                    return Err(e);
                }
            }
        }
    }
}

pub(crate) struct RxToken<'a>(&'a [u8]);

pub(crate) struct TxToken<'a> {
    fd: BorrowedFd<'a>,
    buf: &'a mut Vec<u8>,
    hdr: usize,
}

impl smoltcp::phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl smoltcp::phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let total = self.hdr + len;
        if self.buf.len() < total {
            self.buf.resize(total, 0);
        }
        let r = f(&mut self.buf[self.hdr..total]);
        if self.hdr > 0 {
            offload_tcp_checksum(&mut self.buf[..total]);
        }
        write_frame(self.fd, &self.buf[..total]);
        r
    }
}

/// Fills the virtio-net header in front of a frame smoltcp built without its TCP checksum: for
/// a TCP segment (IPv4, or IPv6 without extension headers, as smoltcp sends) the checksum field
/// gets the pseudo-header's sum and the header says where the rest is to be summed
/// (NEEDS_CSUM); the namespace's kernel delivers such a segment without summing it, as it does
/// its own on loopback or veth. Any other frame gets a header of zeroes (checksums complete).
pub(crate) fn offload_tcp_checksum(buf: &mut [u8]) {
    buf[..VNET_HDR].fill(0);
    let frame = &buf[VNET_HDR..];
    if frame.len() < ETH_HEADER + 40 {
        return;
    }
    let l3 = ETH_HEADER;
    let word = |b: &[u8], at: usize| u32::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let (l4, len, mut sum) = match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 if frame[l3 + 9] == 6 => {
            let ihl = usize::from(frame[l3] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
            let sum: u32 = (12..20).step_by(2).map(|o| word(frame, l3 + o)).sum();
            (l3 + ihl, total.saturating_sub(ihl), sum)
        }
        0x86dd if frame[l3 + 6] == 6 => {
            let payload = usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
            let sum: u32 = (8..40).step_by(2).map(|o| word(frame, l3 + o)).sum();
            (l3 + 40, payload, sum)
        }
        _ => return,
    };
    if len < 20 || l4 + len > frame.len() {
        return;
    }
    sum += 6 + (len as u32 >> 16) + (len as u32 & 0xffff);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let at = VNET_HDR + l4 + 16;
    buf[at..at + 2].copy_from_slice(&(sum as u16).to_be_bytes());
    buf[0] = VNET_F_NEEDS_CSUM;
    buf[6..8].copy_from_slice(&(l4 as u16).to_le_bytes());
    buf[8..10].copy_from_slice(&16u16.to_le_bytes());
}

/// One write of one frame; a full tap queue drops the frame, as a NIC would (TCP retransmits).
fn write_frame(fd: BorrowedFd<'_>, frame: &[u8]) {
    loop {
        match nix::unistd::write(fd, frame) {
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => break,
            Err(e) => {
                tracing::debug!("tap write: {e}");
                break;
            }
            Ok(_) => break,
        }
    }
}

impl Device for FrameDevice {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        while self.rx_head < self.rx_count && self.rx_len[self.rx_head] == 0 {
            self.rx_head += 1; // discarded
        }
        let Self {
            fd,
            rx,
            rx_len,
            rx_head,
            rx_count,
            tx,
            hdr,
            injected,
            current,
            ..
        } = self;
        let hdr = *hdr;
        let fd: &OwnedFd = fd;
        let frame: &[u8] = if *rx_head < *rx_count {
            *rx_head += 1;
            &rx[*rx_head - 1][hdr..rx_len[*rx_head - 1]]
        } else if let Some(f) = injected.pop() {
            *current = f;
            current
        } else {
            return None;
        };
        Some((
            RxToken(frame),
            TxToken {
                fd: fd.as_fd(),
                buf: tx,
                hdr,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            fd: self.fd.as_fd(),
            buf: &mut self.tx,
            hdr: self.hdr,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETH_HEADER;
        caps.max_burst_size = Some(BATCH);
        if self.hdr > 0 {
            // The namespace's kernel may leave TCP/UDP checksums partial (TUN_F_CSUM), and our
            // TCP segments get theirs through the header ([`offload_tcp_checksum`]).
            caps.checksum.tcp = Checksum::None;
            caps.checksum.udp = Checksum::Tx;
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpAddress, Ipv4Packet, TcpPacket};

    /// A full TCP checksum over the segment, with the partial one the header asks to complete.
    fn complete(buf: &[u8]) -> u16 {
        let start = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
        let seg = &buf[VNET_HDR + start..];
        let mut sum: u32 = seg
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn offloaded_tcp_checksum_completes_to_the_real_one() {
        // Ethernet + IPv4 (20) + TCP (20) + 5 bytes of data, odd to test the padding.
        let mut buf = vec![0u8; VNET_HDR + 14 + 20 + 20 + 5];
        buf[VNET_HDR + 12..VNET_HDR + 14].copy_from_slice(&[0x08, 0x00]);
        let (src, dst) = ([10, 0, 2, 2], [10, 0, 2, 100]);
        {
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[VNET_HDR + 14..]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_total_len(45);
            ip.set_next_header(smoltcp::wire::IpProtocol::Tcp);
            ip.set_src_addr(src.into());
            ip.set_dst_addr(dst.into());
        }
        let tcp_at = VNET_HDR + 34;
        buf[tcp_at + 12] = 5 << 4;
        buf[tcp_at + 20..].copy_from_slice(b"hello");
        let mut want = buf[tcp_at..].to_vec();
        let mut tcp = TcpPacket::new_unchecked(&mut want[..]);
        tcp.fill_checksum(&IpAddress::Ipv4(src.into()), &IpAddress::Ipv4(dst.into()));
        let want = tcp.checksum();
        offload_tcp_checksum(&mut buf);
        assert_eq!(buf[0], VNET_F_NEEDS_CSUM);
        assert_eq!(u16::from_le_bytes([buf[6], buf[7]]), 34);
        assert_eq!(u16::from_le_bytes([buf[8], buf[9]]), 16);
        assert_eq!(complete(&buf), want);
    }

    #[test]
    fn other_frames_get_a_zero_header() {
        let mut buf = vec![0xffu8; VNET_HDR + 60];
        buf[VNET_HDR + 12..VNET_HDR + 14].copy_from_slice(&[0x08, 0x06]); // ARP
        let before = buf[VNET_HDR..].to_vec();
        offload_tcp_checksum(&mut buf);
        assert_eq!(&buf[..VNET_HDR], &[0; VNET_HDR]);
        assert_eq!(&buf[VNET_HDR..], &before[..]);
    }
}
