//! The smoltcp device over a frame descriptor: frames are read in batches into buffers allocated
//! once, and written straight from one reused transmit buffer.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Frames read per batch.
pub(crate) const BATCH: usize = 64;
const ETH_HEADER: usize = 14;

pub(crate) struct FrameDevice {
    fd: OwnedFd,
    mtu: usize,
    rx: Vec<Vec<u8>>,
    rx_len: [usize; BATCH],
    rx_head: usize,
    rx_count: usize,
    tx: Vec<u8>,
    /// Frames handed to smoltcp after the batch (SYNs held back until their host connect ended).
    injected: Vec<Vec<u8>>,
    /// The injected frame smoltcp is reading now.
    current: Vec<u8>,
}

impl FrameDevice {
    pub(crate) fn new(fd: OwnedFd, mtu: usize) -> Self {
        let frame = mtu + ETH_HEADER;
        Self {
            fd,
            mtu,
            rx: (0..BATCH).map(|_| vec![0; frame]).collect(),
            rx_len: [0; BATCH],
            rx_head: 0,
            rx_count: 0,
            tx: vec![0; frame],
            injected: Vec::new(),
            current: Vec::new(),
        }
    }

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
        (0..self.rx_count).map(|i| &self.rx[i][..self.rx_len[i]])
    }

    /// Queues a frame for smoltcp as if it had just been read from the tap.
    pub(crate) fn inject(&mut self, frame: Vec<u8>) {
        self.injected.push(frame);
    }

    /// Keeps frame `i` of the batch from smoltcp (it was handled outside it).
    pub(crate) fn discard(&mut self, i: usize) {
        if i < self.rx_count {
            self.rx_len[i] = 0;
        }
    }

    /// Writes one frame to the tap (dropped when the tap's queue is full, as a NIC would).
    pub(crate) fn send_frame(&self, frame: &[u8]) {
        write_frame(self.fd.as_fd(), frame);
    }
}

pub(crate) struct RxToken<'a>(&'a [u8]);

pub(crate) struct TxToken<'a> {
    fd: BorrowedFd<'a>,
    buf: &'a mut Vec<u8>,
}

impl smoltcp::phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl smoltcp::phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let r = f(&mut self.buf[..len]);
        write_frame(self.fd, &self.buf[..len]);
        r
    }
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
            injected,
            current,
            ..
        } = self;
        let fd: &OwnedFd = fd;
        let frame: &[u8] = if *rx_head < *rx_count {
            *rx_head += 1;
            &rx[*rx_head - 1][..rx_len[*rx_head - 1]]
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
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            fd: self.fd.as_fd(),
            buf: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + ETH_HEADER;
        caps.max_burst_size = Some(BATCH);
        caps
    }
}
