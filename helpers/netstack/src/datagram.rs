//! UDP flows and ICMP echo of the namespace: each flow is carried by a connected host datagram
//! socket (a ping socket for ICMP echo), and replies are framed back onto the tap by hand.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, UdpPacket,
};

/// Ethernet + IPv4 (no options) header bytes in front of every reply.
const L3: usize = 14 + 20;
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
    /// ICMP echo; the ports are the echo identifier (guest side) and 0.
    Icmp,
}

/// One datagram flow: (guest, port) ↔ (remote as the guest sees it), over a host socket.
struct Flow {
    proto: Proto,
    guest_mac: EthernetAddress,
    guest: (Ipv4Addr, u16),
    remote: (Ipv4Addr, u16),
    sock: OwnedFd,
    last: Instant,
    idle: Duration,
}

/// Where a guest datagram goes on the host, decided by the stack.
pub(crate) enum Route {
    /// To this host address (connected socket).
    Host(SocketAddrV4),
    /// Nowhere: the datagram is dropped.
    Drop,
    /// An echo request to the stack's own addresses: answered here.
    Local,
}

/// The table of datagram flows and the one buffer replies are framed in.
pub(crate) struct Datagrams {
    flows: Vec<Flow>,
    frame: Vec<u8>,
    mtu: usize,
    gateway_mac: EthernetAddress,
    ident: u16,
    icmp_warned: bool,
}

/// A guest datagram, parsed.
pub(crate) struct Parsed<'a> {
    pub(crate) proto: Proto,
    pub(crate) guest_mac: EthernetAddress,
    pub(crate) src: (Ipv4Addr, u16),
    pub(crate) dst: (Ipv4Addr, u16),
    /// UDP: the payload; ICMP: the whole echo request message.
    pub(crate) payload: &'a [u8],
}

/// Parses an IPv4 UDP datagram or ICMP echo request frame (unfragmented); None for anything else.
pub(crate) fn parse(frame: &[u8]) -> Option<Parsed<'_>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let guest_mac = eth.src_addr();
    let ip = Ipv4Packet::new_checked(&frame[14..]).ok()?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let hl = usize::from(ip.header_len());
    let total = usize::from(ip.total_len());
    let l4 = frame.get(14 + hl..14 + total)?;
    match ip.next_header() {
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
        IpProtocol::Icmp => {
            // type 8 = echo request; the identifier sits at bytes 4..6.
            if l4.len() < 8 || l4[0] != 8 || l4[1] != 0 {
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
            frame: vec![0; mtu + 14],
            mtu,
            gateway_mac,
            ident: 1,
            icmp_warned: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.flows.len()
    }

    /// The host sockets to poll for replies, in flow order.
    pub(crate) fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.flows.iter().map(|f| f.sock.as_fd())
    }

    /// Sends a guest datagram towards `to`, opening a flow for it when it has none yet.
    pub(crate) fn send(&mut self, p: &Parsed<'_>, to: SocketAddrV4, dns: bool) {
        let now = Instant::now();
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
        match socket::send(
            std::os::fd::AsRawFd::as_raw_fd(&f.sock),
            p.payload,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(_) | Err(Errno::EAGAIN) => {}
            Err(e) => tracing::debug!("netstack: {:?} datagram to {to}: {e}", p.proto),
        }
    }

    fn open(&mut self, p: &Parsed<'_>, to: SocketAddrV4, dns: bool, now: Instant) -> Option<usize> {
        let (ty, proto, idle) = match p.proto {
            Proto::Udp => (
                SockType::Datagram,
                None,
                if dns { DNS_IDLE } else { UDP_IDLE },
            ),
            Proto::Icmp => (SockType::Datagram, Some(SockProtocol::Icmp), ICMP_IDLE),
        };
        let sock = match socket::socket(
            AddressFamily::Inet,
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
        if let Err(e) = socket::connect(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            &SockaddrIn::from(to),
        ) {
            tracing::debug!("netstack: connect {:?} flow to {to}: {e}", p.proto);
            return None;
        }
        if self.flows.len() >= MAX_FLOWS {
            if let Some((oldest, _)) = self.flows.iter().enumerate().min_by_key(|(_, f)| f.last) {
                self.flows.swap_remove(oldest);
            }
        }
        self.flows.push(Flow {
            proto: p.proto,
            guest_mac: p.guest_mac,
            guest: p.src,
            remote: p.dst,
            sock,
            last: now,
            idle,
        });
        Some(self.flows.len() - 1)
    }

    /// Reads what flow `i`'s host socket has and frames each datagram onto the tap.
    pub(crate) fn readable(&mut self, i: usize, write: &mut dyn FnMut(&[u8])) {
        let Some(f) = self.flows.get_mut(i) else {
            return;
        };
        let hdr = match f.proto {
            Proto::Udp => L3 + UDP_HDR,
            Proto::Icmp => L3,
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
                    let mut udp = UdpPacket::new_unchecked(&mut self.frame[L3..L3 + len]);
                    udp.set_src_port(f.remote.1);
                    udp.set_dst_port(f.guest.1);
                    udp.set_len(len as u16);
                    udp.fill_checksum(&IpAddress::Ipv4(f.remote.0), &IpAddress::Ipv4(f.guest.0));
                    len
                }
                Proto::Icmp => {
                    // The kernel gives the whole echo reply with its own identifier: put the
                    // guest's back.
                    if n < 8 || self.frame[L3] != 0 {
                        continue;
                    }
                    let msg = &mut self.frame[L3..L3 + n];
                    msg[4..6].copy_from_slice(&f.guest.1.to_be_bytes());
                    msg[2..4].copy_from_slice(&[0, 0]);
                    let sum = !smoltcp::wire::checksum::data(msg);
                    msg[2..4].copy_from_slice(&sum.to_be_bytes());
                    n
                }
            };
            self.ident = self.ident.wrapping_add(1);
            let proto = match f.proto {
                Proto::Udp => IpProtocol::Udp,
                Proto::Icmp => IpProtocol::Icmp,
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

    /// Frames one UDP datagram from `src` to the guest's `dst` onto the tap (a published UDP
    /// port's client); dropped when it exceeds the MTU.
    pub(crate) fn udp_to_guest(
        &mut self,
        guest_mac: EthernetAddress,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        payload: &[u8],
        write: &mut dyn FnMut(&[u8]),
    ) {
        let len = UDP_HDR + payload.len();
        if L3 + len > self.frame.len() {
            tracing::debug!(
                "netstack: {}-byte datagram exceeds the MTU; dropped",
                payload.len()
            );
            return;
        }
        self.frame[L3 + UDP_HDR..L3 + len].copy_from_slice(payload);
        let mut udp = UdpPacket::new_unchecked(&mut self.frame[L3..L3 + len]);
        udp.set_src_port(src.1);
        udp.set_dst_port(dst.1);
        udp.set_len(len as u16);
        udp.fill_checksum(&IpAddress::Ipv4(src.0), &IpAddress::Ipv4(dst.0));
        self.ident = self.ident.wrapping_add(1);
        let n = write_l3(
            &mut self.frame,
            self.gateway_mac,
            guest_mac,
            src.0,
            dst.0,
            IpProtocol::Udp,
            len,
            self.ident,
        );
        write(&self.frame[..n]);
    }

    /// Answers an ICMP echo request addressed to the stack itself (gateway or DNS address).
    pub(crate) fn echo_reply(&mut self, p: &Parsed<'_>, write: &mut dyn FnMut(&[u8])) {
        let n = p.payload.len();
        if p.proto != Proto::Icmp || L3 + n > self.frame.len() {
            return;
        }
        let msg = &mut self.frame[L3..L3 + n];
        msg.copy_from_slice(p.payload);
        msg[0] = 0; // echo reply
        msg[2..4].copy_from_slice(&[0, 0]);
        let sum = !smoltcp::wire::checksum::data(msg);
        msg[2..4].copy_from_slice(&sum.to_be_bytes());
        self.ident = self.ident.wrapping_add(1);
        let len = write_l3(
            &mut self.frame,
            self.gateway_mac,
            p.guest_mac,
            p.dst.0,
            p.src.0,
            IpProtocol::Icmp,
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

/// Fills in the Ethernet and IPv4 headers in front of an `l4_len`-byte payload already at
/// `buf[L3..]`; returns the frame's length.
#[allow(clippy::too_many_arguments)]
fn write_l3(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    l4_len: usize,
    ident: u16,
) -> usize {
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..14]);
    eth.set_src_addr(src_mac);
    eth.set_dst_addr(dst_mac);
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
        let n = write_l3(&mut buf, mac, mac, a, b, IpProtocol::Udp, 13, 7);
        let p = parse(&buf[..n]).expect("parsed");
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.src, (a, 1234));
        assert_eq!(p.dst, (b, 53));
        assert_eq!(p.payload, b"hello");
        assert!(Ipv4Packet::new_checked(&buf[14..n])
            .unwrap()
            .verify_checksum());
    }
}
