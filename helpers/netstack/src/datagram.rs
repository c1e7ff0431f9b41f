//! UDP flows and ICMP echo of the namespace: each flow is carried by a connected host datagram
//! socket (a ping socket for ICMP echo), and replies are framed back onto the tap by hand.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::device::FrameDevice;
use crate::mmsg::{self, Batch, Gso};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage,
};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, UdpPacket,
};

/// Ethernet + IPv4 (no options) header bytes in front of an IPv4 reply.
const L3: usize = 14 + 20;
/// Ethernet + IPv6 header bytes in front of an IPv6 reply.
const L3V6: usize = 14 + 40;

/// The header bytes in front of a reply to `guest`.
fn l3_len(guest: IpAddr) -> usize {
    if guest.is_ipv4() {
        L3
    } else {
        L3V6
    }
}
const UDP_HDR: usize = 8;
/// Most datagram flows kept at once; the least recently used goes first.
const MAX_FLOWS: usize = 4096;
/// Idle time after which a UDP flow's host socket is closed.
const UDP_IDLE: Duration = Duration::from_secs(60);
/// DNS exchanges are one question, one answer: their flows go sooner.
const DNS_IDLE: Duration = Duration::from_secs(10);
const ICMP_IDLE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Proto {
    Udp,
    /// ICMP (or ICMPv6) echo; the ports are the echo identifier (guest side) and 0.
    Icmp,
}

/// One datagram flow: (guest, port) ↔ (remote as the guest sees it), over a host socket.
struct Flow {
    proto: Proto,
    /// Whether sends on `sock` may use UDP GSO (never for ICMP).
    gso: Gso,
    guest_mac: EthernetAddress,
    guest: (IpAddr, u16),
    remote: (IpAddr, u16),
    sock: OwnedFd,
    last: Instant,
    idle: Duration,
}

/// Where a guest datagram goes on the host, decided by the stack.
pub(crate) enum Route {
    /// To this host address (connected socket).
    Host(SocketAddr),
    /// Nowhere: the datagram is dropped.
    Drop,
    /// An echo request to the stack's own addresses: answered here.
    Local,
    /// A DHCP client's message: answered by the stack's DHCP server.
    Dhcp,
}

/// The table of datagram flows and the one buffer replies are framed in.
pub(crate) struct Datagrams {
    flows: Vec<Flow>,
    /// The stack's epoll set: each new flow's socket is registered there for reading (with
    /// [`Datagrams::token`]); a closed socket leaves it by itself.
    epoll: Option<(std::rc::Rc<Epoll>, u64)>,
    frame: Vec<u8>,
    /// Datagrams read from a flow's socket (made on first use).
    batch: Option<Batch>,
    mtu: usize,
    gateway_mac: EthernetAddress,
    ident: u16,
    icmp_warned: bool,
    /// Host addresses new sockets are bound to (IPv4, IPv6).
    outbound: (Option<Ipv4Addr>, Option<Ipv6Addr>),
}

/// A guest datagram, parsed.
pub(crate) struct Parsed<'a> {
    pub(crate) proto: Proto,
    pub(crate) guest_mac: EthernetAddress,
    pub(crate) src: (IpAddr, u16),
    pub(crate) dst: (IpAddr, u16),
    /// UDP: the payload; ICMP: the whole echo request message.
    pub(crate) payload: &'a [u8],
}

/// Parses a UDP datagram or ICMP/ICMPv6 echo request frame (IPv4 unfragmented, or IPv6 without
/// extension headers); None for anything else.
pub(crate) fn parse(frame: &[u8]) -> Option<Parsed<'_>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let guest_mac = eth.src_addr();
    let (src, dst, proto, l4): (IpAddr, IpAddr, IpProtocol, &[u8]) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(&frame[14..]).ok()?;
            if ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            let hl = usize::from(ip.header_len());
            let total = usize::from(ip.total_len());
            (
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                frame.get(14 + hl..14 + total)?,
            )
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(&frame[14..]).ok()?;
            let len = usize::from(ip.payload_len());
            (
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header(),
                frame.get(L3V6..L3V6 + len)?,
            )
        }
        _ => return None,
    };
    match proto {
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(l4).ok()?;
            let len = usize::from(udp.len());
            Some(Parsed {
                proto: Proto::Udp,
                guest_mac,
                src: (src, udp.src_port()),
                dst: (dst, udp.dst_port()),
                payload: l4.get(UDP_HDR..len)?,
            })
        }
        // Echo request: type 8 (ICMP) or 128 (ICMPv6), code 0; the identifier at bytes 4..6.
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            let echo = if src.is_ipv4() { 8 } else { 128 };
            if l4.len() < 8 || l4[0] != echo || l4[1] != 0 {
                return None;
            }
            let ident = u16::from_be_bytes([l4[4], l4[5]]);
            Some(Parsed {
                proto: Proto::Icmp,
                guest_mac,
                src: (src, ident),
                dst: (dst, 0),
                payload: l4,
            })
        }
        _ => None,
    }
}

impl Datagrams {
    pub(crate) fn new(mtu: usize, gateway_mac: EthernetAddress) -> Self {
        Self {
            flows: Vec::new(),
            epoll: None,
            frame: vec![0; mtu + 14],
            batch: None,
            mtu,
            gateway_mac,
            ident: 1,
            icmp_warned: false,
            outbound: (None, None),
        }
    }

    /// Binds every new host socket to these addresses (IPv4, IPv6) before it connects.
    pub(crate) fn set_outbound(&mut self, v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) {
        self.outbound = (v4, v6);
    }

    /// Registers every flow opened from now on in `epoll`, its event data `kind | fd`.
    pub(crate) fn register_in(&mut self, epoll: std::rc::Rc<Epoll>, kind: u64) {
        self.epoll = Some((epoll, kind));
    }

    /// The flow whose host socket is `fd`.
    pub(crate) fn index_of(&self, fd: RawFd) -> Option<usize> {
        self.flows.iter().position(|f| f.sock.as_raw_fd() == fd)
    }

    /// Sends a run of one flow's guest datagrams (`first` is the run's first, `payloads` all of
    /// them) towards `to`, opening a flow when it has none yet: in one sendmmsg, or as one UDP
    /// GSO send when they are of one size. What the socket has no room for is dropped, as a
    /// full queue drops it.
    pub(crate) fn send_run(
        &mut self,
        first: &Parsed<'_>,
        payloads: &[&[u8]],
        to: SocketAddr,
        dns: bool,
    ) {
        let now = Instant::now();
        let p = first;
        let i = match self
            .flows
            .iter()
            .position(|f| f.proto == p.proto && f.guest == p.src && f.remote == p.dst)
        {
            Some(i) => i,
            None => match self.open(p, to, dns, now) {
                Some(i) => i,
                None => return,
            },
        };
        let f = &mut self.flows[i];
        f.last = now;
        let fd = f.sock.as_raw_fd();
        let mut done = 0;
        while done < payloads.len() {
            match mmsg::send_connected(fd, &payloads[done..], &f.gso) {
                Ok(n) => done += n.max(1),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("netstack: {:?} datagram to {to}: {e}", p.proto);
                    done += 1;
                }
            }
        }
    }

    fn open(&mut self, p: &Parsed<'_>, to: SocketAddr, dns: bool, now: Instant) -> Option<usize> {
        let v4 = to.is_ipv4();
        let (ty, proto, idle) = match p.proto {
            Proto::Udp => (
                SockType::Datagram,
                None,
                if dns { DNS_IDLE } else { UDP_IDLE },
            ),
            Proto::Icmp if v4 => (SockType::Datagram, Some(SockProtocol::Icmp), ICMP_IDLE),
            Proto::Icmp => (SockType::Datagram, Some(SockProtocol::IcmpV6), ICMP_IDLE),
        };
        let family = if v4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let sock = match socket::socket(
            family,
            ty,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            proto,
        ) {
            Ok(s) => s,
            Err(e @ (Errno::EACCES | Errno::EPERM)) if p.proto == Proto::Icmp => {
                if !self.icmp_warned {
                    self.icmp_warned = true;
                    tracing::warn!(
                        "ping from the namespace cannot be carried: opening an ICMP socket failed \
                         ({e}); allow unprivileged ping sockets for your group as root, e.g. \
                         sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""
                    );
                }
                return None;
            }
            Err(e) => {
                tracing::debug!("netstack: datagram socket: {e}");
                return None;
            }
        };
        if p.proto == Proto::Udp {
            // Replies from the host arrive in bursts while the stack is busy elsewhere.
            crate::mmsg::size_buffers(&sock);
        }
        if let Err(e) = bind_outbound(&sock, to, self.outbound) {
            tracing::debug!(
                "netstack: bind the {:?} flow to {to} to the outbound address: {e}",
                p.proto
            );
            return None;
        }
        if let Err(e) = socket::connect(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &SockaddrStorage::from(to),
        ) {
            tracing::debug!("netstack: connect {:?} flow to {to}: {e}", p.proto);
            return None;
        }
        if self.flows.len() >= MAX_FLOWS {
            if let Some((oldest, _)) = self.flows.iter().enumerate().min_by_key(|(_, f)| f.last) {
                self.flows.swap_remove(oldest);
            }
        }
        if let Some((ep, kind)) = &self.epoll {
            let token = kind | sock.as_raw_fd() as u64;
            if let Err(e) = ep.add(&sock, EpollEvent::new(EpollFlags::EPOLLIN, token)) {
                tracing::debug!("netstack: epoll add of a datagram flow: {e}");
                return None;
            }
        }
        let gso = Gso::new();
        if p.proto != Proto::Udp {
            gso.off();
        }
        self.flows.push(Flow {
            proto: p.proto,
            gso,
            guest_mac: p.guest_mac,
            guest: p.src,
            remote: p.dst,
            sock,
            last: now,
            idle,
        });
        Some(self.flows.len() - 1)
    }

    /// Reads what flow `i`'s host socket has and frames it onto the tap: a UDP flow's
    /// datagrams in batches ([`Datagrams::udp_run_to_guest`]), an ICMP flow's one by one.
    pub(crate) fn readable(&mut self, i: usize, dev: &FrameDevice) {
        let Some(f) = self.flows.get(i) else {
            return;
        };
        if f.proto == Proto::Udp {
            let (fd, mac, remote, guest) = (f.sock.as_raw_fd(), f.guest_mac, f.remote, f.guest);
            let mut batch = self.batch.take().unwrap_or_default();
            // At most 64 datagrams a wakeup, as for ICMP (the socket is level-triggered).
            for _ in 0..2 {
                match batch.recv(fd) {
                    Ok(n) => {
                        let payloads: Vec<&[u8]> = (0..n).map(|k| batch.datagram(k)).collect();
                        self.udp_run_to_guest(mac, remote, guest, &payloads, dev);
                        if let Some(f) = self.flows.get_mut(i) {
                            f.last = Instant::now();
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // An ICMP error from the destination (ECONNREFUSED and the like).
                    Err(e) => tracing::debug!("netstack: udp flow {remote:?}: {e}"),
                }
            }
            self.batch = Some(batch);
            mmsg::let_receiver_run();
            return;
        }
        let write = &mut |frame: &[u8]| dev.send_frame(frame);
        let Some(f) = self.flows.get_mut(i) else {
            return;
        };
        let l3 = l3_len(f.guest.0);
        let hdr = match f.proto {
            Proto::Udp => l3 + UDP_HDR,
            Proto::Icmp => l3,
        };
        let room = self.mtu + 14 - hdr;
        for _ in 0..64 {
            let n = match socket::recv(
                std::os::fd::AsRawFd::as_raw_fd(&f.sock),
                &mut self.frame[hdr..],
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    // An ICMP error from the destination (ECONNREFUSED and the like): drop it.
                    tracing::debug!("netstack: {:?} flow {:?}: {e}", f.proto, f.remote);
                    continue;
                }
            };
            f.last = Instant::now();
            if n > room {
                tracing::debug!("netstack: {n}-byte datagram exceeds the MTU; dropped");
                continue;
            }
            let l4 = match f.proto {
                Proto::Udp => {
                    let len = UDP_HDR + n;
                    let mut udp = UdpPacket::new_unchecked(&mut self.frame[l3..l3 + len]);
                    udp.set_src_port(f.remote.1);
                    udp.set_dst_port(f.guest.1);
                    udp.set_len(len as u16);
                    udp.fill_checksum(&f.remote.0.into(), &f.guest.0.into());
                    len
                }
                Proto::Icmp => {
                    // The kernel gives the whole echo reply (type 0, or 129 for ICMPv6) with
                    // its own identifier: put the guest's back.
                    let reply = if f.guest.0.is_ipv4() { 0 } else { 129 };
                    if n < 8 || self.frame[l3] != reply {
                        continue;
                    }
                    let msg = &mut self.frame[l3..l3 + n];
                    msg[4..6].copy_from_slice(&f.guest.1.to_be_bytes());
                    icmp_checksum(msg, f.remote.0, f.guest.0);
                    n
                }
            };
            self.ident = self.ident.wrapping_add(1);
            let proto = match (f.proto, f.guest.0.is_ipv4()) {
                (Proto::Udp, _) => IpProtocol::Udp,
                (Proto::Icmp, true) => IpProtocol::Icmp,
                (Proto::Icmp, false) => IpProtocol::Icmpv6,
            };
            let len = write_l3(
                &mut self.frame,
                self.gateway_mac,
                f.guest_mac,
                f.remote.0,
                f.guest.0,
                proto,
                l4,
                self.ident,
            );
            write(&self.frame[..len]);
        }
    }

    /// Frames UDP datagrams from `src` to the guest's `dst` onto `dev`. On a tap with a
    /// virtio-net header a run of equal-sized ones goes as one frame the namespace's kernel
    /// splits (UDP GSO), and checksums are left to it; otherwise one frame each with its
    /// checksum. A datagram larger than the MTU allows is dropped.
    pub(crate) fn udp_run_to_guest(
        &mut self,
        guest_mac: EthernetAddress,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        payloads: &[&[u8]],
        dev: &FrameDevice,
    ) {
        if !dev.offloads() {
            for p in payloads {
                self.udp_to_guest(guest_mac, src, dst, p, &mut |f| dev.send_frame(f));
            }
            return;
        }
        let room = self.mtu + 14 - l3_len(dst.0) - UDP_HDR;
        let mut i = 0;
        while i < payloads.len() {
            let run = if dev.udp_gso() {
                crate::mmsg::gso_run(&payloads[i..])
            } else {
                1
            };
            let group = &payloads[i..i + run];
            i += run;
            if group[0].len() > room {
                tracing::debug!(
                    "netstack: {}-byte datagram exceeds the MTU; dropped",
                    group[0].len()
                );
                continue;
            }
            let (gw, ident) = (self.gateway_mac, &mut self.ident);
            if !offloaded_udp(dev, ident, (gw, guest_mac), src, dst, group) {
                // Refused as one GSO frame (a kernel before 6.2): each on its own.
                for p in group {
                    offloaded_udp(dev, ident, (gw, guest_mac), src, dst, &[p]);
                }
            }
        }
    }

    /// Frames one UDP datagram from `src` to the guest's `dst` onto the tap (a published UDP
    /// port's client); dropped when it exceeds the MTU.
    pub(crate) fn udp_to_guest(
        &mut self,
        guest_mac: EthernetAddress,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        payload: &[u8],
        write: &mut dyn FnMut(&[u8]),
    ) {
        let len = UDP_HDR + payload.len();
        let l3 = l3_len(dst.0);
        if l3 + len > self.frame.len() {
            tracing::debug!(
                "netstack: {}-byte datagram exceeds the MTU; dropped",
                payload.len()
            );
            return;
        }
        self.frame[l3 + UDP_HDR..l3 + len].copy_from_slice(payload);
        let (gw, ident) = (self.gateway_mac, &mut self.ident);
        let n = frame_udp(&mut self.frame, ident, (gw, guest_mac), src, dst, len);
        UdpPacket::new_unchecked(&mut self.frame[l3..l3 + len])
            .fill_checksum(&src.0.into(), &dst.0.into());
        write(&self.frame[..n]);
    }

    /// Answers an ICMP echo request addressed to the stack itself (gateway or DNS address).
    pub(crate) fn echo_reply(&mut self, p: &Parsed<'_>, write: &mut dyn FnMut(&[u8])) {
        let n = p.payload.len();
        let l3 = l3_len(p.src.0);
        if p.proto != Proto::Icmp || l3 + n > self.frame.len() {
            return;
        }
        let v4 = p.src.0.is_ipv4();
        let msg = &mut self.frame[l3..l3 + n];
        msg.copy_from_slice(p.payload);
        msg[0] = if v4 { 0 } else { 129 }; // echo reply
        icmp_checksum(msg, p.dst.0, p.src.0);
        self.ident = self.ident.wrapping_add(1);
        let len = write_l3(
            &mut self.frame,
            self.gateway_mac,
            p.guest_mac,
            p.dst.0,
            p.src.0,
            if v4 {
                IpProtocol::Icmp
            } else {
                IpProtocol::Icmpv6
            },
            n,
            self.ident,
        );
        write(&self.frame[..len]);
    }

    /// Closes flows idle past their timeout.
    pub(crate) fn expire(&mut self) {
        let now = Instant::now();
        self.flows.retain(|f| now.duration_since(f.last) < f.idle);
    }
}

/// Binds `sock` (about to connect to `to`) to the outbound address of `to`'s family, if one
/// is set (port 0: any).
pub(crate) fn bind_outbound(
    sock: &OwnedFd,
    to: SocketAddr,
    outbound: (Option<Ipv4Addr>, Option<Ipv6Addr>),
) -> Result<(), Errno> {
    let local = match (to, outbound) {
        (SocketAddr::V4(_), (Some(a), _)) => SockaddrStorage::from(SocketAddrV4::new(a, 0)),
        (SocketAddr::V6(_), (_, Some(a))) => SockaddrStorage::from(SocketAddrV6::new(a, 0, 0, 0)),
        _ => return Ok(()),
    };
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(sock), &local)
}

/// An ICMP "destination unreachable" (IPv4 type 3 / ICMPv6 type 1, with `code`) from `from`
/// answering the IP packet in Ethernet frame `frame`: how a router tells the namespace that a
/// connection cannot be made. None when the frame is not IP.
pub(crate) fn unreachable(
    frame: &[u8],
    from: EthernetAddress,
    src: IpAddr,
    code: u8,
) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (dst, quoted, v4): (IpAddr, &[u8], bool) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            let n = (usize::from(ip.header_len()) + 8).min(eth.payload().len());
            (ip.src_addr().into(), &eth.payload()[..n], true)
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            (
                ip.src_addr().into(),
                &eth.payload()[..(40 + 8).min(eth.payload().len())],
                false,
            )
        }
        _ => return None,
    };
    let head = if v4 { L3 } else { L3V6 };
    let l4_len = 8 + quoted.len();
    let mut buf = vec![0u8; head + l4_len];
    let msg = &mut buf[head..];
    msg[0] = if v4 { 3 } else { 1 };
    msg[1] = code;
    msg[8..].copy_from_slice(quoted);
    let src = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => return None,
        (s, _) => s,
    };
    icmp_checksum(msg, src, dst);
    let proto = if v4 {
        IpProtocol::Icmp
    } else {
        IpProtocol::Icmpv6
    };
    let len = write_l3(&mut buf, from, eth.src_addr(), src, dst, proto, l4_len, 0);
    buf.truncate(len);
    Some(buf)
}

/// Sets an ICMP message's checksum (ICMPv6's covers the IPv6 pseudo-header).
/// Writes `group` (one datagram, or a run of one size but the last) to `dev` as one frame with
/// its UDP checksum left to the kernel (GSO when more than one); false when the kernel refused a
/// GSO frame (see [`FrameDevice::send_udp`]).
fn offloaded_udp(
    dev: &FrameDevice,
    ident: &mut u16,
    macs: (EthernetAddress, EthernetAddress),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    group: &[&[u8]],
) -> bool {
    let l3 = l3_len(dst.0);
    let len = UDP_HDR + group.iter().map(|p| p.len()).sum::<usize>();
    let mut headers = [0u8; L3V6 + UDP_HDR];
    frame_udp(&mut headers, ident, macs, src, dst, len);
    UdpPacket::new_unchecked(&mut headers[l3..l3 + UDP_HDR])
        .set_checksum(pseudo_header_sum(src.0, dst.0, len));
    let gso = (group.len() > 1).then_some(group[0].len() as u16);
    dev.send_udp(&headers[..l3 + UDP_HDR], group, gso)
}

/// Writes the Ethernet, IP and UDP headers (ports and length; the checksum is the caller's) of a
/// `len`-byte UDP datagram from `src` to `dst` at the front of `buf`, between the MACs
/// `(from, to)`, with the next IP identifier; returns the frame's length.
fn frame_udp(
    buf: &mut [u8],
    ident: &mut u16,
    (from, to): (EthernetAddress, EthernetAddress),
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    len: usize,
) -> usize {
    let l3 = l3_len(dst.0);
    let mut udp = UdpPacket::new_unchecked(&mut buf[l3..l3 + UDP_HDR]);
    udp.set_src_port(src.1);
    udp.set_dst_port(dst.1);
    udp.set_len(len as u16);
    *ident = ident.wrapping_add(1);
    write_l3(buf, from, to, src.0, dst.0, IpProtocol::Udp, len, *ident)
}

/// The folded, uncomplemented sum of a UDP pseudo-header (what a checksum field holds when the
/// rest is left to the receiver, NEEDS_CSUM); an IPv4-mapped pair sums as IPv6, as framed.
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u16 {
    let bytes = |a: IpAddr| -> Vec<u8> {
        match (a, src.is_ipv4() && dst.is_ipv4()) {
            (IpAddr::V4(a), true) => a.octets().to_vec(),
            (IpAddr::V4(a), false) => a.to_ipv6_mapped().octets().to_vec(),
            (IpAddr::V6(a), _) => a.octets().to_vec(),
        }
    };
    let mut sum: u32 = bytes(src)
        .chunks(2)
        .chain(bytes(dst).chunks(2))
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    sum += 17 + (udp_len as u32 >> 16) + (udp_len as u32 & 0xffff);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn icmp_checksum(msg: &mut [u8], src: IpAddr, dst: IpAddr) {
    msg[2..4].copy_from_slice(&[0, 0]);
    let sum = match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => !smoltcp::wire::checksum::combine(&[
            smoltcp::wire::checksum::pseudo_header_v6(&s, &d, IpProtocol::Icmpv6, msg.len() as u32),
            smoltcp::wire::checksum::data(msg),
        ]),
        _ => !smoltcp::wire::checksum::data(msg),
    };
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// Fills in the Ethernet and IP headers in front of an `l4_len`-byte payload already in place
/// after them (`buf[14 + 20..]` for IPv4, `buf[14 + 40..]` for IPv6); returns the frame's length.
#[allow(clippy::too_many_arguments)]
fn write_l3(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    l4_len: usize,
    ident: u16,
) -> usize {
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..14]);
    eth.set_src_addr(src_mac);
    eth.set_dst_addr(dst_mac);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            eth.set_ethertype(EthernetProtocol::Ipv4);
            let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..L3]);
            ip.set_version(4);
            ip.set_header_len(20);
            ip.set_dscp(0);
            ip.set_ecn(0);
            ip.set_total_len((20 + l4_len) as u16);
            ip.set_ident(ident);
            ip.clear_flags();
            ip.set_dont_frag(true);
            ip.set_frag_offset(0);
            ip.set_hop_limit(64);
            ip.set_next_header(proto);
            ip.set_src_addr(src);
            ip.set_dst_addr(dst);
            ip.fill_checksum();
            L3 + l4_len
        }
        (src, dst) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            eth.set_ethertype(EthernetProtocol::Ipv6);
            let mut ip = Ipv6Packet::new_unchecked(&mut buf[14..L3V6]);
            ip.set_version(6);
            ip.set_traffic_class(0);
            ip.set_flow_label(0);
            ip.set_payload_len(l4_len as u16);
            ip.set_next_header(proto);
            ip.set_hop_limit(64);
            ip.set_src_addr(to6(src));
            ip.set_dst_addr(to6(dst));
            L3V6 + l4_len
        }
    }
}

/// The first IPv4 name server of a resolv.conf, port 53.
pub(crate) fn resolver_from(conf: &str) -> Option<SocketAddrV4> {
    conf.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .find_map(|a| a.parse::<Ipv4Addr>().ok())
        .map(|a| SocketAddrV4::new(a, 53))
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::IpAddress;

    #[test]
    fn resolver_is_the_first_ipv4_nameserver() {
        let conf = "# c\nsearch x\nnameserver fe80::1\nnameserver 127.0.0.53\nnameserver 1.1.1.1\n";
        assert_eq!(
            resolver_from(conf),
            Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 53), 53))
        );
        assert_eq!(resolver_from("search x\n"), None);
    }

    #[test]
    fn udp_frame_round_trips_through_parse() {
        let mut buf = vec![0u8; 200];
        buf[L3 + UDP_HDR..L3 + UDP_HDR + 5].copy_from_slice(b"hello");
        let mut udp = UdpPacket::new_unchecked(&mut buf[L3..L3 + UDP_HDR + 5]);
        udp.set_src_port(1234);
        udp.set_dst_port(53);
        udp.set_len(13);
        let (a, b) = (Ipv4Addr::new(10, 0, 2, 100), Ipv4Addr::new(10, 0, 2, 3));
        udp.fill_checksum(&IpAddress::Ipv4(a), &IpAddress::Ipv4(b));
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let n = write_l3(
            &mut buf,
            mac,
            mac,
            a.into(),
            b.into(),
            IpProtocol::Udp,
            13,
            7,
        );
        let p = parse(&buf[..n]).expect("parsed");
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.src, (a.into(), 1234));
        assert_eq!(p.dst, (b.into(), 53));
        assert_eq!(p.payload, b"hello");
        assert!(Ipv4Packet::new_checked(&buf[14..n])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn a_run_goes_to_the_tap_as_one_gso_frame_or_one_frame_each_once_refused() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let dev = FrameDevice::with_vnet_hdr(ours, 65520);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let mut d = Datagrams::new(65520, mac);
        let (gw, ns): (IpAddr, IpAddr) =
            ("10.0.2.2".parse().unwrap(), "10.0.2.100".parse().unwrap());
        let payloads: [&[u8]; 3] = [&[1; 1000], &[2; 1000], &[3; 500]];
        let mut buf = vec![0u8; 70000];
        let mut next = || {
            let n = nix::unistd::read(&theirs, &mut buf).unwrap();
            buf[..n].to_vec()
        };
        let le = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let v = crate::device::VNET_HDR;

        d.udp_run_to_guest(mac, (gw, 5000), (ns, 6000), &payloads, &dev);
        let f = next();
        // NEEDS_CSUM, GSO UDP_L4, header length 42, 1000 bytes a datagram, sum from the UDP header.
        assert_eq!((f[0], f[1]), (1, 5));
        assert_eq!(
            (le(&f, 2), le(&f, 4), le(&f, 6), le(&f, 8)),
            (42, 1000, 34, 6)
        );
        let ip = Ipv4Packet::new_checked(&f[v + 14..]).unwrap();
        assert_eq!(ip.total_len(), 20 + 8 + 2500);
        assert!(ip.verify_checksum());
        let udp = UdpPacket::new_unchecked(&f[v + 34..]);
        assert_eq!(
            (udp.src_port(), udp.dst_port(), udp.len()),
            (5000, 6000, 2508)
        );
        assert_eq!(udp.checksum(), pseudo_header_sum(gw, ns, 2508));
        assert_eq!(
            &f[v + 42..],
            [payloads[0], payloads[1], payloads[2]].concat()
        );

        // A kernel that refuses GSO frames turns it off: one frame each from then on.
        dev.set_udp_gso(false);
        d.udp_run_to_guest(mac, (gw, 5000), (ns, 6000), &payloads, &dev);
        for p in payloads {
            let f = next();
            assert_eq!((f[0], f[1]), (1, 0));
            let udp = UdpPacket::new_unchecked(&f[v + 34..]);
            assert_eq!(usize::from(udp.len()), 8 + p.len());
            assert_eq!(udp.checksum(), pseudo_header_sum(gw, ns, 8 + p.len()));
            assert_eq!(&f[v + 42..], p);
        }
    }

    #[test]
    fn icmpv6_echo_round_trips_through_parse_with_a_valid_checksum() {
        let (a, b): (IpAddr, IpAddr) = ("fd00::100".parse().unwrap(), "fd00::2".parse().unwrap());
        let mut buf = vec![0u8; L3V6 + 12];
        buf[L3V6..].copy_from_slice(&[128, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4]);
        icmp_checksum(&mut buf[L3V6..], a, b);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let n = write_l3(&mut buf, mac, mac, a, b, IpProtocol::Icmpv6, 12, 1);
        let p = parse(&buf[..n]).expect("parsed");
        assert_eq!((p.proto, p.src, p.dst), (Proto::Icmp, (a, 0x1234), (b, 0)));
        let (IpAddr::V6(s6), IpAddr::V6(d6)) = (a, b) else {
            unreachable!()
        };
        let icmp = smoltcp::wire::Icmpv6Packet::new_checked(&buf[L3V6..n]).unwrap();
        assert!(icmp.verify_checksum(&s6, &d6));
    }
}
