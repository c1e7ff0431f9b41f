//! The stack's thread: smoltcp on the tap, a TCP flow table, and the relay of each flow to a host
//! socket. The thread waits in epoll, where every descriptor is registered once, when it is
//! made (TCP flows edge-triggered: each wakeup relays every flow until EAGAIN or a full buffer).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::PollTimeout;
#[cfg(test)]
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{
    self, sockopt, AddressFamily, Shutdown, SockFlag, SockType, SockaddrStorage,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpCidr, IpProtocol, Ipv4Packet,
    Ipv6Packet, TcpPacket,
};

use crate::datagram::{self, Datagrams, Route};
use crate::device::FrameDevice;
use crate::{NetstackError, StackConfig};

/// Idle time after which a published UDP port's client flow is forgotten.
const INBOUND_UDP_IDLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Per-connection buffer sizes (smoltcp derives its window scale from them).
const TCP_RX_BUF: usize = 1 << 20;
const TCP_TX_BUF: usize = 1 << 20;
/// Event data of the stack's epoll set: fixed for the three pipes and the tap, else a kind in
/// the high half and the descriptor in the low half.
const EV_TAP: u64 = 0;
const EV_STOP: u64 = 1;
const EV_WAKE: u64 = 2;
const EV_FORWARD: u64 = 1 << 32;
const EV_PENDING: u64 = 2 << 32;
const EV_FLOW: u64 = 3 << 32;
const EV_DGRAM: u64 = 4 << 32;
/// A TCP flow's host socket: edge-triggered both ways (relayed until EAGAIN on each wakeup).
const FLOW_EVENTS: EpollFlags = EpollFlags::EPOLLIN
    .union(EpollFlags::EPOLLOUT)
    .union(EpollFlags::EPOLLRDHUP)
    .union(EpollFlags::EPOLLET);

/// The gateway's MAC address (as slirp4netns uses).
const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 0x0a, 0x00, 0x02, 0x02];

/// A running stack. Dropping it stops the stack as [`StackHandle::shutdown`] does.
pub struct StackHandle {
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<Result<(), NetstackError>>>,
    ctl: std::sync::Mutex<(mpsc::Sender<Ctl>, OwnedFd)>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Requests to the stack's thread, each answered on its channel once done.
enum Ctl {
    Add(Forward, mpsc::SyncSender<()>),
    Remove(u64, mpsc::SyncSender<bool>),
}

/// The protocol of a forwarded host socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardProto {
    /// A listening TCP socket: each accepted connection is opened into the namespace.
    Tcp,
    /// A bound UDP socket: each client's datagrams become a flow into the namespace.
    Udp,
}

/// A published port: a host socket whose traffic enters the namespace through the stack, with
/// the client's address as its source.
struct Forward {
    id: u64,
    listener: Listener,
    guest: SocketAddrV4,
}

/// A forward's host socket.
enum Listener {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

impl Listener {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Udp(u) => u.as_fd(),
        }
    }
}

/// A host client's UDP flow into the namespace: who it is, and what the guest sees.
struct InboundUdp {
    forward: u64,
    client: std::net::SocketAddr,
    seen_as: (IpAddr, u16),
    guest: SocketAddr,
    last: std::time::Instant,
}

impl std::fmt::Debug for StackHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackHandle").finish_non_exhaustive()
    }
}

impl StackHandle {
    /// Starts carrying `listener`'s traffic into the namespace at `guest`: a listening TCP socket's
    /// connections, or a bound UDP socket's datagrams (replies go back from it). The guest sees
    /// each client's own address as the source; loopback clients appear as the gateway. IPv6
    /// clients enter over IPv6 (to fd00::100) when the stack serves IPv6 and `guest` is the
    /// namespace's own address, else over IPv4 from the gateway. Returns the forward's id.
    pub fn add_forward(
        &self,
        proto: ForwardProto,
        listener: OwnedFd,
        guest: SocketAddrV4,
    ) -> Result<u64, NetstackError> {
        set_nonblocking(&listener)
            .map_err(|e| NetstackError::Io(format!("make the listener non-blocking: {e}")))?;
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::sync_channel(1);
        let listener = match proto {
            ForwardProto::Tcp => Listener::Tcp(listener.into()),
            ForwardProto::Udp => {
                crate::mmsg::size_buffers(&listener);
                Listener::Udp(listener.into())
            }
        };
        self.request(Ctl::Add(
            Forward {
                id,
                listener,
                guest,
            },
            tx,
        ))?;
        rx.recv()
            .map_err(|_| NetstackError::Io("the stack stopped".into()))?;
        Ok(id)
    }

    /// Stops forward `id` and closes its host socket and connections; false when unknown.
    pub fn remove_forward(&self, id: u64) -> Result<bool, NetstackError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.request(Ctl::Remove(id, tx))?;
        rx.recv()
            .map_err(|_| NetstackError::Io("the stack stopped".into()))
    }

    fn request(&self, c: Ctl) -> Result<(), NetstackError> {
        let ctl = self
            .ctl
            .lock()
            .map_err(|_| NetstackError::Io("the stack's control channel is poisoned".into()))?;
        ctl.0
            .send(c)
            .map_err(|_| NetstackError::Io("the stack stopped".into()))?;
        match nix::unistd::write(&ctl.1, &[1]) {
            Ok(_) | Err(Errno::EAGAIN) => Ok(()),
            Err(e) => Err(NetstackError::Io(format!("wake the stack: {e}"))),
        }
    }

    /// Stops the stack (every relayed connection is closed) and waits for its thread; returns the
    /// error that ended it early, if any.
    pub fn shutdown(mut self) -> Result<(), NetstackError> {
        self.stop_and_join()
    }

    /// True while the stack's thread runs (it ends on shutdown or when the tap is closed).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn stop_and_join(&mut self) -> Result<(), NetstackError> {
        // Closing the write end makes the stack's poll see POLLHUP on the read end.
        drop(self.stop.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| NetstackError::Io("the stack thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl Drop for StackHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::warn!("{e}");
        }
    }
}

pub(crate) fn spawn(tap: OwnedFd, cfg: StackConfig) -> Result<StackHandle, NetstackError> {
    set_nonblocking(&tap)
        .map_err(|e| NetstackError::Io(format!("make the tap non-blocking: {e}")))?;
    let (stop_rx, stop_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| NetstackError::Io(format!("pipe: {e}")))?;
    let (wake_rx, wake_tx) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
        .map_err(|e| NetstackError::Io(format!("pipe: {e}")))?;
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("netstack".into())
        .spawn(move || Stack::new(tap, cfg, ctl_rx, wake_rx, &stop_rx)?.run(stop_rx))
        .map_err(|e| NetstackError::Io(format!("spawn the stack thread: {e}")))?;
    Ok(StackHandle {
        stop: Some(stop_tx),
        thread: Some(thread),
        ctl: std::sync::Mutex::new((ctl_tx, wake_tx)),
        next_id: std::sync::atomic::AtomicU64::new(1),
    })
}

fn set_nonblocking(fd: &impl AsFd) -> Result<(), Errno> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// (source, source port, destination, destination port) of a TCP connection.
type FlowKey = (IpAddr, u16, IpAddr, u16);

/// One guest TCP connection and the host socket carrying it.
struct Flow {
    handle: SocketHandle,
    /// (guest address, guest port, destination address, destination port) as the guest sees it.
    key: FlowKey,
    host: OwnedFd,
    /// The host peer sent FIN (forwarded to the guest as FIN).
    host_eof: bool,
    /// The guest's FIN was forwarded to the host (shutdown(SHUT_WR)).
    host_shut: bool,
    /// The host socket may have bytes to read: set by its (edge-triggered) epoll events, cleared
    /// when a read finds nothing, so an idle flow costs no read per wakeup.
    host_readable: bool,
}

/// A guest SYN held back while its host connection is being made: the guest's handshake
/// completes only once the host side has (a refused host connect becomes a RST to the guest).
struct Pending {
    key: FlowKey,
    host: OwnedFd,
    syn: Vec<u8>,
}

struct Stack {
    cfg: StackConfig,
    /// Every descriptor the thread waits on, registered once (see the `EV_` constants).
    epoll: std::rc::Rc<Epoll>,
    ctl: mpsc::Receiver<Ctl>,
    wake: OwnedFd,
    forwards: Vec<Forward>,
    inbound_udp: Vec<InboundUdp>,
    /// The namespace's MAC address, learnt from its frames (broadcast until then).
    guest_mac: EthernetAddress,
    /// Datagrams read from forwarded UDP sockets, a batch at a time.
    udp_in: crate::mmsg::Batch,
    pending: Vec<Pending>,
    dev: FrameDevice,
    iface: Interface,
    sockets: SocketSet<'static>,
    flows: Vec<Flow>,
    dgram: Datagrams,
    resolver: Option<SocketAddrV4>,
    dhcp: crate::dhcp::Dhcp,
    last_expiry: std::time::Instant,
}

fn now() -> Instant {
    Instant::now()
}

impl Stack {
    fn new(
        tap: OwnedFd,
        cfg: StackConfig,
        ctl: mpsc::Receiver<Ctl>,
        wake: OwnedFd,
        stop: &OwnedFd,
    ) -> Result<Self, NetstackError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| NetstackError::Io(format!("epoll_create: {e}")))?;
        let level = |fd: &OwnedFd, token| {
            epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(|e| NetstackError::Io(format!("epoll_ctl: {e}")))
        };
        level(&tap, EV_TAP)?;
        level(stop, EV_STOP)?;
        level(&wake, EV_WAKE)?;
        let epoll = std::rc::Rc::new(epoll);
        let mut dev = FrameDevice::new(tap, cfg.mtu);
        let mut config = Config::new(EthernetAddress(GATEWAY_MAC).into());
        config.random_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        let mut iface = Interface::new(config, &mut dev, now());
        let (gw, dns, prefix) = (cfg.gateway(), cfg.dns(), cfg.cidr.1);
        iface.update_ip_addrs(|addrs| {
            // Capacity is at least 2; these cannot fail.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(gw), prefix));
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(dns), prefix));
            if cfg.ipv6 {
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(cfg.gateway6()), 64));
                let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(cfg.dns6()), 64));
            }
        });
        if cfg.ipv6 {
            let _ = iface.routes_mut().add_default_ipv6_route(cfg.gateway6());
        }
        // any_ip: accept packets for every destination routed through our own address, so that
        // connections to the whole Internet terminate here.
        let _ = iface.routes_mut().add_default_ipv4_route(gw);
        iface.set_any_ip(true);
        let resolver = if cfg.disable_dns {
            None
        } else {
            cfg.dns_upstream.or_else(|| {
                let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
                let r = datagram::resolver_from(&conf);
                if r.is_none() {
                    tracing::warn!(
                        "no IPv4 name server in /etc/resolv.conf: DNS queries to {} go unanswered",
                        cfg.dns()
                    );
                }
                r
            })
        };
        let mut dgram = Datagrams::new(cfg.mtu, EthernetAddress(GATEWAY_MAC));
        dgram.register_in(epoll.clone(), EV_DGRAM);
        dgram.set_outbound(cfg.outbound_addr, cfg.outbound_addr6);
        Ok(Self {
            epoll,
            ctl,
            wake,
            forwards: Vec::new(),
            inbound_udp: Vec::new(),
            guest_mac: EthernetAddress::BROADCAST,
            udp_in: crate::mmsg::Batch::new(),
            pending: Vec::new(),
            dgram,
            cfg,
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
            flows: Vec::new(),
            resolver,
            dhcp: Default::default(),
            last_expiry: std::time::Instant::now(),
        })
    }

    /// Serves until `stop` (registered in the epoll set) reads EOF: the handle closed its end.
    fn run(mut self, _stop: OwnedFd) -> Result<(), NetstackError> {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut ready: Vec<u64> = Vec::new();
        loop {
            let timeout = self
                .iface
                .poll_delay(now(), &self.sockets)
                .map_or(Duration::from_millis(500), |d| {
                    d.min(Duration::from_millis(500))
                });
            let ms = u16::try_from(timeout.total_millis()).unwrap_or(500);
            let n = match self.epoll.wait(&mut events, PollTimeout::from(ms)) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(NetstackError::Io(format!("epoll_wait: {e}"))),
            };
            ready.clear();
            ready.extend(events[..n].iter().map(EpollEvent::data));
            if ready.contains(&EV_STOP) {
                tracing::debug!("netstack: shutdown requested");
                return Ok(());
            }
            if ready.contains(&EV_WAKE) {
                self.control();
            }
            if ready.contains(&EV_TAP) {
                match self.dev.fill() {
                    Ok(_) => {}
                    Err(Errno::EPIPE) => {
                        return Err(NetstackError::Io("the tap device was closed".into()))
                    }
                    Err(e) => return Err(NetstackError::Io(format!("read from the tap: {e}"))),
                }
                self.learn_guest_mac();
                self.accept_new_flows();
                self.datagrams_from_guest();
            }
            for fd in fds_of(&ready, EV_FORWARD) {
                if let Some(i) = self
                    .forwards
                    .iter()
                    .position(|f| f.listener.fd().as_raw_fd() == fd)
                {
                    self.forward_readable(i);
                }
            }
            let connected: Vec<i32> = fds_of(&ready, EV_PENDING).collect();
            self.finish_connects(&connected);
            for fd in fds_of(&ready, EV_FLOW) {
                if let Some(f) = self.flows.iter_mut().find(|f| f.host.as_raw_fd() == fd) {
                    f.host_readable = true;
                }
            }
            self.iface.poll(now(), &mut self.dev, &mut self.sockets);
            for i in 0..self.flows.len() {
                self.relay(i);
            }
            for fd in fds_of(&ready, EV_DGRAM) {
                if let Some(i) = self.dgram.index_of(fd) {
                    self.dgram.readable(i, &self.dev);
                }
            }
            if self.last_expiry.elapsed() >= std::time::Duration::from_secs(1) {
                self.last_expiry = std::time::Instant::now();
                self.dgram.expire();
                let now = std::time::Instant::now();
                self.inbound_udp
                    .retain(|u| now.duration_since(u.last) < INBOUND_UDP_IDLE);
            }
            self.iface.poll(now(), &mut self.dev, &mut self.sockets);
            self.reap();
        }
    }

    /// Registers a new TCP flow's host socket (edge-triggered; see [`FLOW_EVENTS`]).
    fn watch_flow(&self, host: &OwnedFd) {
        let ev = EpollEvent::new(FLOW_EVENTS, EV_FLOW | host.as_raw_fd() as u64);
        if let Err(e) = self.epoll.add(host, ev) {
            tracing::debug!("netstack: epoll add of a flow: {e}");
        }
    }

    /// Starts a host connection for every new SYN in the batch and holds the SYN back until it
    /// is made (SYNs of known flows go on to smoltcp; retransmits of pending ones are dropped).
    fn accept_new_flows(&mut self) {
        let mut syns: [Option<FlowKey>; crate::device::BATCH] = [None; crate::device::BATCH];
        for (slot, frame) in syns.iter_mut().zip(self.dev.pending()) {
            *slot = parse_syn(frame);
        }
        for (i, key) in syns.into_iter().enumerate() {
            let Some(key) = key else { continue };
            if self.flows.iter().any(|f| f.key == key) {
                continue; // a retransmitted SYN of a live flow: smoltcp answers it
            }
            if self.pending.iter().any(|p| p.key == key) {
                self.dev.discard(i);
                continue;
            }
            let (_, _, dst, dport) = key;
            let target = match self.syn_verdict(dst, dport) {
                Syn::Connect(t) => t,
                Syn::Refuse => continue, // no listener: smoltcp answers with RST
                Syn::Drop => {
                    self.dev.discard(i);
                    continue;
                }
                Syn::Unreachable(code) => {
                    self.send_unreachable(i, code);
                    continue;
                }
            };
            let host = match connect_nonblocking(target, self.outbound()) {
                Ok(fd) => fd,
                Err(Errno::ECONNREFUSED) => continue, // RST
                Err(e) => {
                    tracing::debug!("netstack: connect {target}: {e}");
                    self.send_unreachable(i, unreachable_code(e));
                    continue;
                }
            };
            let syn = self.dev.take(i);
            // Writable (or in error) once the connect has ended.
            let ev = EpollEvent::new(
                EpollFlags::EPOLLOUT | EpollFlags::EPOLLET,
                EV_PENDING | host.as_raw_fd() as u64,
            );
            if let Err(e) = self.epoll.add(&host, ev) {
                tracing::debug!("netstack: epoll add of a connect: {e}");
                continue; // RST
            }
            self.pending.push(Pending { key, host, syn });
        }
    }

    /// Completes the pending connections whose host connect ended: a listening smoltcp socket
    /// and the held SYN for a success, the SYN alone (answered with RST) for a failure.
    fn finish_connects(&mut self, ended: &[i32]) {
        let mut i = self.pending.len();
        while i > 0 {
            i -= 1;
            if !ended.contains(&self.pending[i].host.as_raw_fd()) {
                continue;
            }
            let p = self.pending.swap_remove(i);
            let ok = match socket::getsockopt(&p.host, sockopt::SocketError) {
                Ok(0) => true,
                Ok(err) => {
                    let err = Errno::from_raw(err);
                    tracing::debug!("netstack: host connect for {:?}: {err}", p.key);
                    if matches!(err, Errno::ENETUNREACH | Errno::EHOSTUNREACH) {
                        self.unreachable_for(&p.syn, unreachable_code(err));
                        continue;
                    }
                    false
                }
                Err(e) => {
                    tracing::debug!("netstack: SO_ERROR: {e}");
                    false
                }
            };
            if ok {
                let (_, _, dst, dport) = p.key;
                let mut sock = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; TCP_RX_BUF]),
                    tcp::SocketBuffer::new(vec![0; TCP_TX_BUF]),
                );
                sock.set_nagle_enabled(false);
                sock.set_timeout(Some(Duration::from_secs(300)));
                if sock.listen((IpAddress::from(dst), dport)).is_ok() {
                    let ev = EpollEvent::new(FLOW_EVENTS, EV_FLOW | p.host.as_raw_fd() as u64);
                    let mut ev = ev;
                    if let Err(e) = self.epoll.modify(&p.host, &mut ev) {
                        tracing::debug!("netstack: epoll modify of a flow: {e}");
                    }
                    let handle = self.sockets.add(sock);
                    self.flows.push(Flow {
                        handle,
                        key: p.key,
                        host: p.host,
                        host_eof: false,
                        host_readable: true,
                        host_shut: false,
                    });
                }
            }
            self.dev.inject(p.syn);
        }
    }

    /// Handles the control requests waiting on the channel.
    fn control(&mut self) {
        let mut b = [0u8; 64];
        while matches!(nix::unistd::read(&self.wake, &mut b), Ok(n) if n > 0) {}
        while let Ok(c) = self.ctl.try_recv() {
            match c {
                Ctl::Add(f, done) => {
                    let ev = EpollEvent::new(
                        EpollFlags::EPOLLIN,
                        EV_FORWARD | f.listener.fd().as_raw_fd() as u64,
                    );
                    if let Err(e) = self.epoll.add(f.listener.fd(), ev) {
                        tracing::warn!("netstack: cannot watch forward {}: {e}", f.id);
                    }
                    self.forwards.push(f);
                    let _ = done.send(());
                }
                Ctl::Remove(id, done) => {
                    let before = self.forwards.len();
                    for f in self.forwards.iter().filter(|f| f.id == id) {
                        let _ = self.epoll.delete(f.listener.fd());
                    }
                    self.forwards.retain(|f| f.id != id);
                    self.inbound_udp.retain(|u| u.forward != id);
                    let _ = done.send(self.forwards.len() != before);
                }
            }
        }
    }

    /// Remembers the namespace's MAC address from the batch's frames.
    fn learn_guest_mac(&mut self) {
        if let Some(mac) = self
            .dev
            .pending()
            .filter_map(|f| EthernetFrame::new_checked(f).ok())
            .map(|e| e.src_addr())
            .find(|m| m.is_unicast())
        {
            self.guest_mac = mac;
        }
    }

    /// The source address the namespace sees for a host client: its own IPv4 address, or the
    /// gateway for loopback and IPv6 clients (the namespace could not route back to those).
    fn seen_as(&self, client: &std::net::SocketAddr) -> (Ipv4Addr, u16) {
        let (ip, port) = match client {
            std::net::SocketAddr::V4(a) => (Some(*a.ip()), a.port()),
            std::net::SocketAddr::V6(a) => (a.ip().to_ipv4_mapped(), a.port()),
        };
        let mask = u32::MAX << (32 - u32::from(self.cfg.cidr.1));
        match ip {
            Some(ip)
                if !ip.is_loopback()
                    && !ip.is_unspecified()
                    && u32::from(ip) & mask != u32::from(self.cfg.cidr.0) & mask =>
            {
                (ip, port)
            }
            _ => (self.cfg.gateway(), port),
        }
    }

    /// Where a published port's client enters the namespace: (source the guest sees, the
    /// guest's address). An IPv6 client of a port published to the namespace's own address
    /// enters over IPv6 when the stack serves it (from fd00::2 for the host's ::1); every other
    /// client enters over IPv4 ([`Stack::seen_as`]).
    fn inbound(&self, client: &SocketAddr, guest: SocketAddrV4) -> ((IpAddr, u16), SocketAddr) {
        if let SocketAddr::V6(c) = client {
            let ip = *c.ip();
            if self.cfg.ipv6 && ip.to_ipv4_mapped().is_none() && *guest.ip() == self.cfg.guest() {
                let inside = ip.segments()[..4] == [0xfd00, 0, 0, 0];
                let src = if ip.is_loopback() || inside {
                    self.cfg.gateway6()
                } else {
                    ip
                };
                return (
                    (IpAddr::V6(src), c.port()),
                    SocketAddr::new(IpAddr::V6(self.cfg.guest6()), guest.port()),
                );
            }
        }
        let (src, port) = self.seen_as(client);
        ((IpAddr::V4(src), port), SocketAddr::V4(guest))
    }

    /// Accepts the connections (TCP) or reads the datagrams (UDP) waiting on forward `i`.
    fn forward_readable(&mut self, i: usize) {
        let (guest, id) = (self.forwards[i].guest, self.forwards[i].id);
        for _ in 0..64 {
            match &self.forwards[i].listener {
                Listener::Tcp(l) => {
                    let (conn, peer) = match l.accept() {
                        Ok(c) => c,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                        Err(e) => {
                            tracing::debug!("netstack: accept on forward {id}: {e}");
                            return;
                        }
                    };
                    if conn.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = conn.set_nodelay(true);
                    let ((src, sport), target) = self.inbound(&peer, guest);
                    let mut sock = tcp::Socket::new(
                        tcp::SocketBuffer::new(vec![0; TCP_RX_BUF]),
                        tcp::SocketBuffer::new(vec![0; TCP_TX_BUF]),
                    );
                    sock.set_nagle_enabled(false);
                    sock.set_timeout(Some(Duration::from_secs(300)));
                    let cx = self.iface.context();
                    if let Err(e) = sock.connect(
                        cx,
                        (IpAddress::from(target.ip()), target.port()),
                        (IpAddress::from(src), sport),
                    ) {
                        tracing::debug!("netstack: open {src}:{sport} -> {target}: {e}");
                        continue;
                    }
                    let handle = self.sockets.add(sock);
                    let host: OwnedFd = conn.into();
                    self.watch_flow(&host);
                    self.flows.push(Flow {
                        handle,
                        key: (src, sport, target.ip(), target.port()),
                        host,
                        host_eof: false,
                        host_readable: true,
                        host_shut: false,
                    });
                }
                Listener::Udp(u) => {
                    let n = match self.udp_in.recv(u.as_raw_fd()) {
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                        Err(e) => {
                            tracing::debug!("netstack: recv on forward {id}: {e}");
                            return;
                        }
                    };
                    let mut k = 0;
                    while k < n {
                        let from = self.udp_in.from(k);
                        let end = (k + 1..n)
                            .find(|&j| self.udp_in.from(j) != from)
                            .unwrap_or(n);
                        let run = k..end;
                        k = end;
                        let Some(client) = from else { continue };
                        let (seen, target) = self.inbound(&client, guest);
                        let now = std::time::Instant::now();
                        match self
                            .inbound_udp
                            .iter_mut()
                            .find(|u| u.forward == id && u.client == client)
                        {
                            Some(u) => u.last = now,
                            None => self.inbound_udp.push(InboundUdp {
                                forward: id,
                                client,
                                seen_as: seen,
                                guest: target,
                                last: now,
                            }),
                        }
                        let payloads: Vec<&[u8]> = run.map(|j| self.udp_in.datagram(j)).collect();
                        self.dgram.udp_run_to_guest(
                            self.guest_mac,
                            seen,
                            (target.ip(), target.port()),
                            &payloads,
                            &self.dev,
                        );
                    }
                    crate::mmsg::let_receiver_run();
                }
            }
        }
    }

    /// Sends the batch's UDP datagrams and ICMP echo requests out through host sockets (pings of
    /// the stack's own addresses are answered here); none of them reaches smoltcp.
    fn datagrams_from_guest(&mut self) {
        let mut handled = [false; crate::device::BATCH];
        // Consecutive UDP datagrams of one flow go out together (one send for the run).
        let mut run: Vec<&[u8]> = Vec::new();
        let mut head: Option<(datagram::Parsed<'_>, SocketAddr, bool)> = None;
        let mut sent = false;
        for (i, frame) in self.dev.pending().enumerate() {
            let Some(p) = datagram::parse(frame) else {
                continue;
            };
            if let Some((h, to, dns)) = &head {
                if (h.proto, h.src, h.dst) == (p.proto, p.src, p.dst) {
                    run.push(p.payload);
                    handled[i] = true;
                    continue;
                }
                self.dgram.send_run(h, &run, *to, *dns);
                head = None;
            }
            if p.proto == datagram::Proto::Udp {
                if let Some(u) = self
                    .inbound_udp
                    .iter_mut()
                    .find(|u| (u.guest.ip(), u.guest.port()) == p.src && u.seen_as == p.dst)
                {
                    // A reply to a published UDP port's client: from the published socket.
                    u.last = std::time::Instant::now();
                    if let Some(Listener::Udp(l)) = self
                        .forwards
                        .iter()
                        .find(|f| f.id == u.forward)
                        .map(|f| &f.listener)
                    {
                        let _ = l.send_to(p.payload, u.client);
                    }
                    handled[i] = true;
                    continue;
                }
            }
            match self.datagram_route(&p) {
                Route::Local => {
                    let dev = &self.dev;
                    self.dgram.echo_reply(&p, &mut |f| dev.send_frame(f));
                }
                Route::Drop => {}
                Route::Dhcp => {
                    if let Some((reply, mac)) = self.dhcp.answer(&self.cfg, p.payload) {
                        let dev = &self.dev;
                        self.dgram.udp_to_guest(
                            mac,
                            (IpAddr::V4(self.cfg.gateway()), 67),
                            (IpAddr::V4(Ipv4Addr::BROADCAST), 68),
                            &reply,
                            &mut |f| dev.send_frame(f),
                        );
                    }
                }
                Route::Host(to) => {
                    let dns = p.dst.1 == 53 && self.is_dns(p.dst.0);
                    run.clear();
                    run.push(p.payload);
                    head = Some((p, to, dns));
                    sent = true;
                }
            }
            handled[i] = true;
        }
        if let Some((h, to, dns)) = &head {
            self.dgram.send_run(h, &run, *to, *dns);
        }
        if sent {
            crate::mmsg::let_receiver_run();
        }
        for (i, h) in handled.iter().enumerate() {
            if *h {
                self.dev.discard(i);
            }
        }
    }

    /// What becomes of a guest's connection attempt to `dst:dport`.
    fn syn_verdict(&self, dst: IpAddr, dport: u16) -> Syn {
        if self.is_gateway(dst) && self.cfg.disable_host_loopback {
            return Syn::Unreachable(UNREACH_NET);
        }
        if self.is_dns(dst) {
            return match (self.cfg.disable_dns, dport, self.resolver) {
                // slirp4netns passes such packets on to the host's network unchanged, where the
                // address leads nowhere: the guest's connect times out. Dropping them does the
                // same without sending anything out.
                (true, _, _) => Syn::Drop,
                (false, 53, Some(r)) => Syn::Connect(SocketAddr::new(IpAddr::V4(*r.ip()), 53)),
                _ => Syn::Refuse,
            };
        }
        match self.host_target(dst) {
            Some(a) => Syn::Connect(SocketAddr::new(a, dport)),
            None => Syn::Refuse,
        }
    }

    fn outbound(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        (self.cfg.outbound_addr, self.cfg.outbound_addr6)
    }

    /// Answers pending frame `i` (a SYN) with an ICMP unreachable and drops it.
    fn send_unreachable(&mut self, i: usize, code: u8) {
        let syn = self.dev.take(i);
        self.unreachable_for(&syn, code);
    }

    /// Sends the guest an ICMP unreachable (from the gateway) for the packet in `frame`.
    fn unreachable_for(&self, frame: &[u8], code: u8) {
        let v4 = EthernetFrame::new_checked(frame)
            .is_ok_and(|e| e.ethertype() == EthernetProtocol::Ipv4);
        let from = if v4 {
            IpAddr::V4(self.cfg.gateway())
        } else {
            IpAddr::V6(self.cfg.gateway6())
        };
        let code = if v4 { code } else { UNREACH6_NO_ROUTE };
        if let Some(f) = datagram::unreachable(frame, EthernetAddress(GATEWAY_MAC), from, code) {
            self.dev.send_frame(&f);
        }
    }

    fn is_dns(&self, a: IpAddr) -> bool {
        a == IpAddr::V4(self.cfg.dns()) || (self.cfg.ipv6 && a == IpAddr::V6(self.cfg.dns6()))
    }

    fn is_gateway(&self, a: IpAddr) -> bool {
        a == IpAddr::V4(self.cfg.gateway())
            || (self.cfg.ipv6 && a == IpAddr::V6(self.cfg.gateway6()))
    }

    fn datagram_route(&self, p: &datagram::Parsed<'_>) -> Route {
        let (dst, port) = p.dst;
        if p.proto == datagram::Proto::Icmp && (self.is_gateway(dst) || self.is_dns(dst)) {
            return Route::Local;
        }
        if p.proto == datagram::Proto::Udp && port == 67 && p.src.1 == 68 && dst.is_ipv4() {
            return Route::Dhcp;
        }
        if self.is_dns(dst) {
            return match (port, self.resolver) {
                (53, Some(r)) => Route::Host(r.into()),
                _ => Route::Drop,
            };
        }
        match self.host_target(dst) {
            Some(a) => Route::Host(SocketAddr::new(a, port)),
            None => Route::Drop,
        }
    }

    /// Where a guest connection to `dst` goes on the host, if anywhere.
    fn host_target(&self, dst: IpAddr) -> Option<IpAddr> {
        if self.is_gateway(dst) {
            let lo = if dst.is_ipv4() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            };
            return (!self.cfg.disable_host_loopback).then_some(lo);
        }
        match dst {
            IpAddr::V4(d) => {
                let mask = u32::MAX << (32 - u32::from(self.cfg.cidr.1));
                let inside = u32::from(d) & mask == u32::from(self.cfg.cidr.0) & mask;
                let out = !(inside
                    || d.is_loopback()
                    || d.is_unspecified()
                    || d.is_broadcast()
                    || d.is_multicast());
                out.then_some(dst)
            }
            IpAddr::V6(d) => {
                let seg = d.segments();
                let inside = seg[..4] == [0xfd00, 0, 0, 0];
                let link_local = seg[0] & 0xffc0 == 0xfe80;
                let out = self.cfg.ipv6
                    && !(inside
                        || link_local
                        || d.is_loopback()
                        || d.is_unspecified()
                        || d.is_multicast());
                out.then_some(dst)
            }
        }
    }

    fn relay(&mut self, i: usize) {
        let f = &mut self.flows[i];
        let sock = self.sockets.get_mut::<tcp::Socket>(f.handle);
        // Guest → host.
        while sock.recv_queue() > 0 {
            let host = &f.host;
            let r = sock.recv(|buf| match nix::unistd::write(host, buf) {
                Ok(n) => (n, Ok(n)),
                Err(Errno::EAGAIN) => (0, Ok(0)),
                Err(e) => (0, Err(e)),
            });
            match r {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!("netstack: write to host for {:?}: {e}", f.key);
                    sock.abort();
                    return;
                }
            }
        }
        if !f.host_shut
            && sock.recv_queue() == 0
            && matches!(
                sock.state(),
                tcp::State::CloseWait
                    | tcp::State::LastAck
                    | tcp::State::Closing
                    | tcp::State::TimeWait
            )
        {
            let _ = socket::shutdown(f.host.as_raw_fd(), Shutdown::Write);
            f.host_shut = true;
        }
        // Host → guest.
        while f.host_readable
            && !f.host_eof
            && sock.may_send()
            && sock.send_queue() < sock.send_capacity()
        {
            let host = &f.host;
            let r = sock.send(|buf| match nix::unistd::read(host, buf) {
                Ok(0) => (0, Read::Eof),
                Ok(n) => (n, Read::Data),
                Err(Errno::EAGAIN) => (0, Read::Again),
                Err(e) => (0, Read::Failed(e)),
            });
            match r {
                Ok(Read::Data) => {}
                Ok(Read::Again) => {
                    f.host_readable = false;
                    break;
                }
                Err(_) => break,
                Ok(Read::Eof) => {
                    f.host_eof = true;
                    sock.close();
                }
                Ok(Read::Failed(e)) => {
                    tracing::debug!("netstack: read from host for {:?}: {e}", f.key);
                    sock.abort();
                    return;
                }
            }
        }
    }

    /// Drops finished flows; a flow the guest reset (or that failed) resets its host side too.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.flows.len() {
            let f = &self.flows[i];
            let state = self.sockets.get::<tcp::Socket>(f.handle).state();
            let done = match state {
                tcp::State::Closed => true,
                tcp::State::TimeWait => f.host_shut,
                _ => false,
            };
            if !done {
                i += 1;
                continue;
            }
            let f = self.flows.swap_remove(i);
            if !(f.host_eof && f.host_shut) {
                // Abortive close: the host peer sees RST, as the guest's peer did.
                let _ = socket::setsockopt(
                    &f.host,
                    sockopt::Linger,
                    &libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    },
                );
            }
            self.sockets.remove(f.handle);
        }
    }
}

/// What the stack does with a guest's SYN.
enum Syn {
    /// Open a host connection to this address.
    Connect(SocketAddr),
    /// Let smoltcp answer with RST (connection refused).
    Refuse,
    /// Drop it silently (the guest's connect times out).
    Drop,
    /// Answer with ICMP destination unreachable of this (IPv4) code.
    Unreachable(u8),
}

/// ICMP codes of "destination unreachable": network, host; ICMPv6's "no route".
const UNREACH_NET: u8 = 0;
const UNREACH_HOST: u8 = 1;
const UNREACH6_NO_ROUTE: u8 = 0;

/// The unreachable code for a failed host connect, as libslirp picks it.
fn unreachable_code(e: Errno) -> u8 {
    if e == Errno::EHOSTUNREACH {
        UNREACH_HOST
    } else {
        UNREACH_NET
    }
}

enum Read {
    Data,
    Eof,
    Again,
    Failed(Errno),
}

/// The descriptors of the ready events of `kind`.
fn fds_of(ready: &[u64], kind: u64) -> impl Iterator<Item = i32> + '_ {
    ready
        .iter()
        .filter(move |d| *d & !0xffff_ffff == kind)
        .map(|d| *d as u32 as i32)
}

fn connect_nonblocking(
    addr: SocketAddr,
    outbound: (Option<Ipv4Addr>, Option<Ipv6Addr>),
) -> Result<OwnedFd, Errno> {
    let fd = socket::socket(
        if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        },
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let _ = socket::setsockopt(&fd, sockopt::TcpNoDelay, &true);
    datagram::bind_outbound(&fd, addr, outbound)?;
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(fd),
        Err(e) => Err(e),
    }
}

/// The (source, source port, destination, destination port) of a TCP SYN frame (IPv4, or IPv6
/// without extension headers).
fn parse_syn(frame: &[u8]) -> Option<FlowKey> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, dst, l4): (IpAddr, IpAddr, &[u8]) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (ip.src_addr().into(), ip.dst_addr().into(), ip.payload())
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(l4).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| (src, tcp.src_port(), dst, tcp.dst_port()))
}

#[cfg(test)]
mod tests {
    //! The stack driven over a SOCK_SEQPACKET socketpair by a second smoltcp interface playing the
    //! namespace: no privileges needed.
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    struct Guest {
        dev: FrameDevice,
        iface: Interface,
        sockets: SocketSet<'static>,
    }

    impl Guest {
        fn new(fd: OwnedFd, cfg: &StackConfig) -> Self {
            set_nonblocking(&fd).unwrap();
            let mut dev = FrameDevice::new(fd, cfg.mtu);
            let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x64]).into());
            config.random_seed = 7;
            let mut iface = Interface::new(config, &mut dev, now());
            iface.update_ip_addrs(|a| {
                a.push(IpCidr::new(IpAddress::Ipv4(cfg.guest()), cfg.cidr.1))
                    .unwrap();
            });
            iface
                .routes_mut()
                .add_default_ipv4_route(cfg.gateway())
                .unwrap();
            Self {
                dev,
                iface,
                sockets: SocketSet::new(Vec::new()),
            }
        }

        /// Runs the guest's stack until `done` says so (fails after a generous bound, so a broken
        /// stack fails the test instead of hanging it).
        fn run_until(&mut self, h: SocketHandle, mut done: impl FnMut(&mut tcp::Socket) -> bool) {
            for _ in 0..20_000 {
                let mut fds = [PollFd::new(self.dev.fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(5u16));
                self.dev.fill().unwrap();
                self.iface.poll(now(), &mut self.dev, &mut self.sockets);
                if done(self.sockets.get_mut::<tcp::Socket>(h)) {
                    return;
                }
            }
            let s = self.sockets.get::<tcp::Socket>(h);
            panic!(
                "the guest connection never reached the expected state (it is {}, {} bytes to send, {} received)",
                s.state(),
                s.send_queue(),
                s.recv_queue()
            );
        }

        fn connect(&mut self, dst: Ipv4Addr, port: u16) -> SocketHandle {
            let sock = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 65536]),
                tcp::SocketBuffer::new(vec![0; 65536]),
            );
            let h = self.sockets.add(sock);
            let cx = self.iface.context();
            self.sockets
                .get_mut::<tcp::Socket>(h)
                .connect(cx, (IpAddress::Ipv4(dst), port), 49152)
                .unwrap();
            h
        }
    }

    fn pair() -> (OwnedFd, OwnedFd) {
        socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    #[test]
    fn tcp_through_gateway_reaches_host_loopback_with_half_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, peer) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap(); // ends at the guest's FIN
            s.write_all(format!("{} bytes from {}", got.len(), peer.ip()).as_bytes())
                .unwrap();
            got
        });
        let cfg = StackConfig {
            mtu: 1500,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut guest = Guest::new(b, &cfg);
        let h = guest.connect(cfg.gateway(), port);
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        guest.run_until(h, |s| {
            if s.can_send() && sent < payload.len() {
                sent += s.send_slice(&payload[sent..]).unwrap();
            }
            if sent == payload.len() {
                s.close();
                return true;
            }
            false
        });
        let mut reply = Vec::new();
        guest.run_until(h, |s| {
            if s.can_recv() {
                s.recv(|b| {
                    reply.extend_from_slice(b);
                    (b.len(), ())
                })
                .unwrap();
            }
            !s.may_recv()
                && s.state() != tcp::State::SynSent
                && s.state() != tcp::State::Established
        });
        assert_eq!(server.join().unwrap(), payload);
        assert_eq!(
            String::from_utf8(reply).unwrap(),
            "200000 bytes from 127.0.0.1"
        );
        assert!(stack.is_running());
        stack.shutdown().unwrap();
    }

    /// A guest's TCP SYN frame to `dst:port`, written by hand.
    fn raw_syn(cfg: &StackConfig, dst: Ipv4Addr, port: u16) -> Vec<u8> {
        let mut buf = vec![0u8; 14 + 20 + 20];
        {
            let mut tcp = TcpPacket::new_unchecked(&mut buf[34..]);
            tcp.set_src_port(40000);
            tcp.set_dst_port(port);
            tcp.set_seq_number(smoltcp::wire::TcpSeqNumber(1000));
            tcp.set_header_len(20);
            tcp.set_syn(true);
            tcp.set_window_len(65535);
            tcp.fill_checksum(&IpAddress::from(cfg.guest()), &IpAddress::from(dst));
        }
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(40);
        ip.set_hop_limit(64);
        ip.set_next_header(IpProtocol::Tcp);
        ip.set_src_addr(cfg.guest());
        ip.set_dst_addr(dst);
        ip.fill_checksum();
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 0x64]));
        eth.set_dst_addr(EthernetAddress(GATEWAY_MAC));
        eth.set_ethertype(EthernetProtocol::Ipv4);
        buf
    }

    /// The next IPv4 frame the stack sends within `ms` milliseconds (ARP and the like skipped).
    fn next_ipv4(b: &OwnedFd, ms: u16) -> Option<Vec<u8>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms.into());
        let mut rx = vec![0u8; 2048];
        while std::time::Instant::now() < deadline {
            let mut fds = [PollFd::new(b.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(50u16)).unwrap() == 0 {
                continue;
            }
            let n = nix::unistd::read(b, &mut rx).unwrap();
            if EthernetFrame::new_checked(&rx[..n])
                .is_ok_and(|e| e.ethertype() == EthernetProtocol::Ipv4)
            {
                return Some(rx[..n].to_vec());
            }
        }
        None
    }

    #[test]
    fn disable_host_loopback_answers_the_gateway_with_network_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = StackConfig {
            mtu: 1500,
            disable_host_loopback: true,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let syn = raw_syn(&cfg, cfg.gateway(), port);
        nix::unistd::write(&b, &syn).unwrap();
        let reply = next_ipv4(&b, 2000).expect("no answer to the SYN");
        let eth = EthernetFrame::new_checked(&reply[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            ip.next_header(),
            IpProtocol::Icmp,
            "an ICMP error, not a RST"
        );
        assert_eq!((ip.src_addr(), ip.dst_addr()), (cfg.gateway(), cfg.guest()));
        let icmp = ip.payload();
        assert_eq!(
            (icmp[0], icmp[1]),
            (3, 0),
            "destination (network) unreachable"
        );
        assert_eq!(smoltcp::wire::checksum::data(icmp), 0xffff);
        assert_eq!(
            &icmp[8..],
            &syn[14..14 + 28],
            "quotes the IP header and 8 bytes"
        );
        listener.set_nonblocking(true).unwrap();
        assert!(
            listener.accept().is_err(),
            "the host listener must not see a connection"
        );
        stack.shutdown().unwrap();
    }

    #[test]
    fn disable_dns_drops_what_goes_to_dot3() {
        let cfg = StackConfig {
            mtu: 1500,
            disable_dns: true,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut guest = Guest::new(b, &cfg);
        let h = guest.connect(cfg.dns(), 53);
        for _ in 0..100 {
            let mut fds = [PollFd::new(guest.dev.fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(5u16));
            guest.dev.fill().unwrap();
            guest.iface.poll(now(), &mut guest.dev, &mut guest.sockets);
        }
        let state = guest.sockets.get::<tcp::Socket>(h).state();
        assert_eq!(
            state,
            tcp::State::SynSent,
            "the SYN to .3 must go unanswered"
        );
        stack.shutdown().unwrap();
        // Without it, .3 refuses what is not DNS.
        let cfg = StackConfig {
            disable_dns: false,
            ..cfg
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut guest = Guest::new(b, &cfg);
        let h = guest.connect(cfg.dns(), 80);
        guest.run_until(h, |s| s.state() == tcp::State::Closed);
        stack.shutdown().unwrap();
    }

    #[test]
    fn outbound_address_is_the_source_of_host_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cfg = StackConfig {
            mtu: 1500,
            outbound_addr: Some(Ipv4Addr::new(127, 0, 0, 9)),
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        nix::unistd::write(&b, &raw_syn(&cfg, cfg.gateway(), port)).unwrap();
        let (_conn, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)));
        stack.shutdown().unwrap();
    }

    #[test]
    fn host_reset_reaches_the_guest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap(); // the guest is established: now reset
            socket::setsockopt(
                &s,
                sockopt::Linger,
                &libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            )
            .unwrap();
            drop(s); // RST
        });
        let cfg = StackConfig {
            mtu: 1500,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut guest = Guest::new(b, &cfg);
        let h = guest.connect(cfg.gateway(), port);
        // The guest's SYN leaves only while its stack runs: the host side accepts meanwhile.
        let mut established = false;
        guest.run_until(h, |s| {
            if s.state() == tcp::State::Established && !established {
                established = true;
                s.send_slice(b"x").unwrap();
            }
            s.state() == tcp::State::Closed
        });
        server.join().unwrap();
        assert!(established);
        stack.shutdown().unwrap();
    }

    /// Sends one UDP datagram from the guest as a raw frame and returns the payload of the first
    /// UDP frame that comes back, with its source.
    fn udp_exchange(
        cfg: &StackConfig,
        tap: &OwnedFd,
        dst: (Ipv4Addr, u16),
        payload: &[u8],
    ) -> (Ipv4Addr, u16, Vec<u8>) {
        use smoltcp::wire::UdpPacket;
        let mut buf = vec![0u8; 14 + 20 + 8 + payload.len()];
        let l4 = 8 + payload.len();
        buf[42..].copy_from_slice(payload);
        let mut udp = UdpPacket::new_unchecked(&mut buf[34..]);
        udp.set_src_port(40000);
        udp.set_dst_port(dst.1);
        udp.set_len(l4 as u16);
        udp.fill_checksum(&IpAddress::Ipv4(cfg.guest()), &IpAddress::Ipv4(dst.0));
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len((20 + l4) as u16);
        ip.set_hop_limit(64);
        ip.set_next_header(IpProtocol::Udp);
        ip.set_src_addr(cfg.guest());
        ip.set_dst_addr(dst.0);
        ip.fill_checksum();
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 0x64]));
        eth.set_dst_addr(EthernetAddress(GATEWAY_MAC));
        eth.set_ethertype(EthernetProtocol::Ipv4);
        nix::unistd::write(tap, &buf).unwrap();
        let mut rx = vec![0u8; 2048];
        for _ in 0..200 {
            let mut fds = [PollFd::new(tap.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(20u16)).unwrap() == 0 {
                continue;
            }
            let n = nix::unistd::read(tap, &mut rx).unwrap();
            let Ok(eth) = EthernetFrame::new_checked(&rx[..n]) else {
                continue;
            };
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                continue;
            };
            if ip.next_header() != IpProtocol::Udp || ip.dst_addr() != cfg.guest() {
                continue;
            }
            assert!(ip.verify_checksum());
            let udp = UdpPacket::new_checked(ip.payload()).unwrap();
            assert!(udp.verify_checksum(
                &IpAddress::Ipv4(ip.src_addr()),
                &IpAddress::Ipv4(ip.dst_addr())
            ));
            assert_eq!(udp.dst_port(), 40000);
            return (ip.src_addr(), udp.src_port(), udp.payload().to_vec());
        }
        panic!("no UDP reply reached the guest");
    }

    fn udp_echo_server() -> (u16, std::thread::JoinHandle<()>) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            let (n, peer) = sock.recv_from(&mut b).unwrap();
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&b[..n]);
            sock.send_to(&reply, peer).unwrap();
        });
        (port, t)
    }

    #[test]
    fn udp_to_the_gateway_reaches_host_loopback_and_returns() {
        let (port, server) = udp_echo_server();
        let cfg = StackConfig {
            mtu: 1500,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let (src, sport, got) = udp_exchange(&cfg, &b, (cfg.gateway(), port), b"ping");
        assert_eq!((src, sport), (cfg.gateway(), port));
        assert_eq!(got, b"echo:ping");
        server.join().unwrap();
        stack.shutdown().unwrap();
    }

    #[test]
    fn dns_at_dot3_goes_to_the_upstream_resolver() {
        let (port, server) = udp_echo_server();
        let cfg = StackConfig {
            mtu: 1500,
            dns_upstream: Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)),
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let (src, sport, got) = udp_exchange(&cfg, &b, (cfg.dns(), 53), b"query");
        assert_eq!((src, sport), (cfg.dns(), 53));
        assert_eq!(got, b"echo:query");
        server.join().unwrap();
        stack.shutdown().unwrap();
    }

    #[test]
    fn refused_host_connect_is_refused_in_the_guest() {
        // A port nothing listens on: bind, note the port, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = StackConfig {
            mtu: 1500,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut guest = Guest::new(b, &cfg);
        let h = guest.connect(cfg.gateway(), port);
        let mut established = false;
        guest.run_until(h, |s| {
            established |= s.state() == tcp::State::Established;
            s.state() == tcp::State::Closed
        });
        assert!(
            !established,
            "the handshake must not complete before the host's does"
        );
        stack.shutdown().unwrap();
    }

    #[test]
    fn ping_of_the_gateway_is_answered() {
        let cfg = StackConfig {
            mtu: 1500,
            ..StackConfig::default()
        };
        let (a, b) = pair();
        let stack = crate::spawn_stack(a, cfg.clone()).unwrap();
        let mut buf = vec![0u8; 14 + 20 + 8 + 4];
        buf[34..].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd']);
        let sum = !smoltcp::wire::checksum::data(&buf[34..]);
        buf[36..38].copy_from_slice(&sum.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut buf[14..]);
        ip.set_version(4);
        ip.set_header_len(20);
        ip.set_total_len(32);
        ip.set_hop_limit(64);
        ip.set_next_header(IpProtocol::Icmp);
        ip.set_src_addr(cfg.guest());
        ip.set_dst_addr(cfg.gateway());
        ip.fill_checksum();
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
        eth.set_src_addr(EthernetAddress([2, 0, 0, 0, 0, 0x64]));
        eth.set_dst_addr(EthernetAddress(GATEWAY_MAC));
        eth.set_ethertype(EthernetProtocol::Ipv4);
        nix::unistd::write(&b, &buf).unwrap();
        let mut rx = vec![0u8; 2048];
        let mut fds = [PollFd::new(b.as_fd(), PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, PollTimeout::from(2000u16)).unwrap(), 1);
        let n = nix::unistd::read(&b, &mut rx).unwrap();
        let eth = EthernetFrame::new_checked(&rx[..n]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (cfg.gateway(), cfg.guest()));
        let icmp = ip.payload();
        assert_eq!(icmp[0], 0, "an echo reply");
        assert_eq!(&icmp[4..], &[0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd']);
        assert_eq!(smoltcp::wire::checksum::data(icmp), 0xffff);
        stack.shutdown().unwrap();
    }

    /// A link between the guest and the stack that loses and reorders frames: in each
    /// direction, a seeded generator drops about one frame in `1/loss` and holds back about one
    /// in eight to send it after its successor. Deterministic in what it does to the n-th frame.
    fn lossy_link(a: OwnedFd, b: OwnedFd, seed: u64, loss: u64) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut rng = [seed, seed ^ 0x9e37_79b9_7f4a_7c15];
            let mut next = |k: usize| {
                let x = &mut rng[k];
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                *x
            };
            let mut held: [Option<Vec<u8>>; 2] = [None, None];
            let mut buf = vec![0u8; 70000];
            loop {
                let mut fds = [
                    PollFd::new(a.as_fd(), PollFlags::POLLIN),
                    PollFd::new(b.as_fd(), PollFlags::POLLIN),
                ];
                if poll(&mut fds, PollTimeout::from(20u16)).is_err() {
                    return;
                }
                let ready: Vec<bool> = fds
                    .iter()
                    .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                    .collect();
                for (k, (from, to)) in [(&a, &b), (&b, &a)].into_iter().enumerate() {
                    if !ready[k] {
                        // Nothing new: release a frame held back too long.
                        if let Some(f) = held[k].take() {
                            let _ = nix::unistd::write(to, &f);
                        }
                        continue;
                    }
                    let n = match nix::unistd::read(from, &mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let r = next(k);
                    if r % loss == 0 {
                        continue; // lost
                    }
                    if std::env::var_os("NO_REORDER").is_none() && r % 8 == 1 && held[k].is_none() {
                        held[k] = Some(buf[..n].to_vec()); // goes after the next one
                        continue;
                    }
                    let _ = nix::unistd::write(to, &buf[..n]);
                    if let Some(f) = held[k].take() {
                        let _ = nix::unistd::write(to, &f);
                    }
                }
            }
        })
    }

    #[test]
    fn tcp_survives_loss_and_reordering_between_guest_and_stack() {
        for seed in [1u64, 7, 42] {
            eprintln!("seed {seed}");
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = std::thread::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                s.write_all(&got[..1000]).unwrap(); // an answer back through the same link
                got
            });
            let cfg = StackConfig {
                mtu: 1500,
                ..StackConfig::default()
            };
            let (stack_end, link_a) = pair();
            let (link_b, guest_end) = pair();
            let stack = crate::spawn_stack(stack_end, cfg.clone()).unwrap();
            let loss = std::env::var("LOSS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(25);
            let _link = lossy_link(link_a, link_b, seed, loss);
            let mut guest = Guest::new(guest_end, &cfg);
            let h = guest.connect(cfg.gateway(), port);
            let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
            let mut sent = 0;
            // The guest closes once its data is acknowledged, so its FIN travels alone, as a
            // Linux guest's retransmitted FIN does. (smoltcp as a sender retransmits the last
            // data segment with the FIN on it, and smoltcp as a receiver ignores a FIN on a
            // segment whose data it already has: two smoltcps can then stall a close.)
            guest.run_until(h, |s| {
                if s.can_send() && sent < payload.len() {
                    sent += s.send_slice(&payload[sent..]).unwrap();
                }
                if sent == payload.len() && s.send_queue() == 0 {
                    s.close();
                    return true;
                }
                false
            });
            let mut reply = Vec::new();
            guest.run_until(h, |s| {
                if s.can_recv() {
                    s.recv(|b| {
                        reply.extend_from_slice(b);
                        (b.len(), ())
                    })
                    .unwrap();
                }
                reply.len() == 1000
            });
            assert_eq!(server.join().unwrap(), payload, "seed {seed}: guest → host");
            assert_eq!(reply, payload[..1000], "seed {seed}: host → guest");
            stack.shutdown().unwrap();
        }
    }

    #[test]
    fn config_addresses_and_cidr_parsing() {
        let mut cfg = StackConfig::default();
        assert_eq!(cfg.gateway(), Ipv4Addr::new(10, 0, 2, 2));
        assert_eq!(cfg.dns(), Ipv4Addr::new(10, 0, 2, 3));
        cfg.cidr = (Ipv4Addr::new(10, 10, 5, 7), 24);
        assert_eq!(cfg.guest(), Ipv4Addr::new(10, 10, 5, 100));
        assert!(crate::spawn_stack(
            pair().0,
            StackConfig {
                mtu: 70000,
                ..StackConfig::default()
            }
        )
        .is_err());
    }

    #[test]
    fn syn_parsing_ignores_other_frames() {
        assert_eq!(parse_syn(&[0u8; 10]), None);
        assert_eq!(parse_syn(&[0u8; 60]), None);
    }
}
