//! The builtin port driver: listeners in the launcher's (host) network namespace, each connection
//! or UDP flow dialled inside the child's network namespace, TCP data moved with splice(2).

mod netns;
mod splice;
mod udp;

pub use netns::NetnsSockets;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use tokio::sync::watch;

use super::{PortDriver, PortDriverInfo, PortError, PortSpec, PortStatus, Proto};

/// How long `remove` waits for a port's listener and connections to close.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// The child address used when a spec has none (RootlessKit's builtin driver does the same).
const DEFAULT_CHILD_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Entry {
    status: PortStatus,
    /// Dropped on removal: every task of the port watches it and exits.
    _stop: watch::Sender<()>,
    /// Disconnects once every task of the port (listener and connections) has ended.
    done: mpsc::Receiver<()>,
}

#[derive(Default)]
struct Ports {
    next_id: u64,
    map: BTreeMap<u64, Entry>,
}

/// Everything a port's tasks need, cloned into each.
#[derive(Clone)]
pub(crate) struct PortCtx {
    pub(crate) sockets: Arc<NetnsSockets>,
    pub(crate) target: SocketAddr,
    pub(crate) udp_idle_timeout: Duration,
    /// The driver's spare splice pipes.
    pub(crate) pipes: Arc<splice::Pipes>,
    pub(crate) stop: watch::Receiver<()>,
    /// Held, never used: its drop tells `remove` this task has ended.
    pub(crate) _done: mpsc::Sender<()>,
}

impl PortCtx {
    /// Resolves when the port is removed or the driver goes away.
    pub(crate) async fn stopped(&mut self) {
        while self.stop.changed().await.is_ok() {}
    }

    /// A socket of the target's family and `ty` inside the child's network namespace.
    pub(crate) async fn child_socket(&self, ty: libc::c_int) -> io::Result<OwnedFd> {
        let domain = if self.target.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        self.sockets.socket(domain, ty).await
    }
}

/// Tunables of the builtin driver.
#[derive(Debug, Clone)]
pub struct Options {
    /// A UDP flow with no datagram in either direction for this long is closed (default 60 s).
    pub udp_idle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            udp_idle_timeout: udp::IDLE_TIMEOUT,
        }
    }
}

/// The builtin driver. Owns a small tokio runtime of its own and the namespace socket helper.
pub struct BuiltinDriver {
    rt: Option<tokio::runtime::Runtime>,
    options: Options,
    sockets: Arc<NetnsSockets>,
    pipes: Arc<splice::Pipes>,
    ports: Mutex<Ports>,
}

impl BuiltinDriver {
    /// Starts the driver for the network namespace `child_netns` (an open fd of
    /// `/proc/CHILD/ns/net` or of a detached netns). Raises the soft RLIMIT_NOFILE to the hard
    /// limit, since each forwarded TCP connection holds six fds.
    pub fn new(child_netns: OwnedFd) -> Result<Arc<BuiltinDriver>, PortError> {
        Self::with_options(child_netns, Options::default())
    }

    /// [`BuiltinDriver::new`] with non-default tunables.
    pub fn with_options(
        child_netns: OwnedFd,
        options: Options,
    ) -> Result<Arc<BuiltinDriver>, PortError> {
        raise_nofile();
        let sockets = NetnsSockets::new(&child_netns).map_err(|e| {
            PortError::Driver(format!("cannot enter the child's network namespace to dial ports: {e} (is the child still running, and does its user namespace belong to this user?)"))
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("port-builtin")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                PortError::Driver(format!("cannot start the port driver's runtime: {e}"))
            })?;
        Ok(Arc::new(BuiltinDriver {
            rt: Some(rt),
            options,
            sockets: Arc::new(sockets),
            pipes: Arc::default(),
            ports: Mutex::new(Ports {
                next_id: 1,
                map: BTreeMap::new(),
            }),
        }))
    }

    /// File descriptors the driver keeps open between connections besides its listeners: spare
    /// splice pipes (two fds each), over the namespace sockets [`NetnsSockets::STOCK_MAX`].
    pub const SPARE_PIPE_FDS: usize = 2 * splice::Pipes::MAX;

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime lives until drop")
    }
}

impl Drop for BuiltinDriver {
    fn drop(&mut self) {
        // Background shutdown is allowed from inside another runtime; it drops every task,
        // which closes every listener and connection.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!(?e, "cannot raise RLIMIT_NOFILE");
            }
        }
    }
}

/// The lowest port an unprivileged process may bind (the kernel's default is 1024).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Where to listen for `spec` on the host, and whether an IPv6 socket also takes IPv4. As Go's
/// `net.Listen` (and so RootlessKit): `tcp`/`udp` on an unspecified address (none, `0.0.0.0`
/// or `::`) listen on both families; `tcp4`/`udp4` and `tcp6`/`udp6` on one family only.
fn listen_addr(spec: &PortSpec) -> (SocketAddr, bool) {
    let port = spec.parent_port;
    match (spec.parent_ip, spec.proto) {
        (Some(ip), Proto::Tcp | Proto::Udp) if !ip.is_unspecified() => {
            (SocketAddr::new(ip, port), false)
        }
        (_, Proto::Tcp | Proto::Udp) => {
            (SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), false)
        }
        (Some(ip), _) => (SocketAddr::new(ip, port), true),
        (None, Proto::Tcp4 | Proto::Udp4) => {
            (SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), true)
        }
        (None, Proto::Tcp6 | Proto::Udp6) => {
            (SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), true)
        }
    }
}

/// Creates, binds and (for TCP) listens on a host socket, mapping errors to actionable ones.
pub(crate) fn bind_host(spec: &PortSpec) -> Result<OwnedFd, PortError> {
    let (mut addr, v6only) = listen_addr(spec);
    let tcp = spec.proto.is_tcp();
    let ty = if tcp {
        SockType::Stream
    } else {
        SockType::Datagram
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let listen_err = |addr: SocketAddr, e: Errno| match e {
        Errno::EADDRINUSE => PortError::AddrInUse {
            addr: addr.to_string(),
            spec: spec.to_string(),
        },
        Errno::EACCES if spec.parent_port < unprivileged_port_start() => PortError::Privileged {
            addr: addr.to_string(),
            spec: spec.to_string(),
            port: spec.parent_port,
            start: unprivileged_port_start(),
        },
        e => PortError::Listen {
            addr: addr.to_string(),
            spec: spec.to_string(),
            source: e.into(),
        },
    };
    let fd = match socket::socket(
        if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        },
        ty,
        flags,
        None,
    ) {
        Ok(fd) => fd,
        // No IPv6 on this host: an unspecified-address "tcp"/"udp" port falls back to IPv4 only.
        Err(Errno::EAFNOSUPPORT)
            if spec.parent_ip.is_none_or(|ip| ip.is_unspecified())
                && matches!(spec.proto, Proto::Tcp | Proto::Udp) =>
        {
            addr = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), spec.parent_port);
            socket::socket(AddressFamily::Inet, ty, flags, None).map_err(|e| listen_err(addr, e))?
        }
        Err(e) => return Err(listen_err(addr, e)),
    };
    if addr.is_ipv6() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &v6only).map_err(|e| listen_err(addr, e))?;
    }
    if tcp {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| listen_err(addr, e))?;
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .map_err(|e| listen_err(addr, e))?;
    if tcp {
        socket::listen(
            &fd,
            socket::Backlog::new(1024).unwrap_or(socket::Backlog::MAXCONN),
        )
        .map_err(|e| listen_err(addr, e))?;
    }
    Ok(fd)
}

impl PortDriver for BuiltinDriver {
    fn info(&self) -> PortDriverInfo {
        PortDriverInfo {
            driver: "builtin".into(),
            protos: Proto::ALL.iter().map(|p| p.as_str().to_owned()).collect(),
            disallow_loopback_child_ip: false,
        }
    }

    fn add(&self, spec: PortSpec) -> Result<PortStatus, PortError> {
        spec.validate()?;
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, _)) = ports
            .map
            .iter()
            .find(|(_, e)| e.status.spec.same_parent(&spec))
        {
            return Err(PortError::Conflict {
                id: *id,
                spec: spec.to_string(),
            });
        }
        let fd = bind_host(&spec)?;
        let (stop_tx, stop_rx) = watch::channel(());
        let (done_tx, done_rx) = mpsc::channel();
        let ctx = PortCtx {
            sockets: self.sockets.clone(),
            target: SocketAddr::new(spec.child_ip.unwrap_or(DEFAULT_CHILD_IP), spec.child_port),
            udp_idle_timeout: self.options.udp_idle_timeout,
            pipes: self.pipes.clone(),
            stop: stop_rx,
            _done: done_tx,
        };
        let _guard = self.rt().enter();
        if spec.proto.is_tcp() {
            let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
                .map_err(|e| {
                    PortError::Driver(format!("cannot register the listener for {spec}: {e}"))
                })?;
            self.rt().spawn(tcp_accept(listener, ctx));
        } else {
            let sock =
                tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)).map_err(|e| {
                    PortError::Driver(format!("cannot register the socket for {spec}: {e}"))
                })?;
            self.rt().spawn(udp::serve(Arc::new(sock), ctx));
        }
        let id = ports.next_id;
        ports.next_id += 1;
        let status = PortStatus { id, spec };
        tracing::debug!(id, spec = %status.spec, "port added");
        ports.map.insert(
            id,
            Entry {
                status: status.clone(),
                _stop: stop_tx,
                done: done_rx,
            },
        );
        Ok(status)
    }

    fn list(&self) -> Vec<PortStatus> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.map.values().map(|e| e.status.clone()).collect()
    }

    fn remove(&self, id: u64) -> Result<(), PortError> {
        let entry = self
            .ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .remove(&id)
            .ok_or(PortError::NotFound(id))?;
        let Entry {
            status,
            _stop,
            done,
        } = entry;
        drop(_stop);
        // Nothing is ever sent on `done`: it disconnects once the listener and every connection
        // of the port have closed.
        if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(REMOVE_WAIT) {
            tracing::warn!(
                id,
                "port removed, but some of its connections are still closing"
            );
        }
        tracing::debug!(id, spec = %status.spec, "port removed");
        Ok(())
    }
}

async fn tcp_accept(listener: tokio::net::TcpListener, mut ctx: PortCtx) {
    loop {
        let accepted = tokio::select! {
            _ = ctx.stopped() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((conn, peer)) => {
                tokio::spawn(tcp_conn(conn, peer, ctx.clone()));
            }
            Err(e) => {
                tracing::warn!(?e, "accept failed on a published port");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn tcp_conn(conn: tokio::net::TcpStream, peer: SocketAddr, mut ctx: PortCtx) {
    let _ = conn.set_nodelay(true);
    let dial = ctx.clone();
    let work = async move {
        let fd = dial.child_socket(libc::SOCK_STREAM).await?;
        let child = connect_child(fd, dial.target).await?;
        let _ = child.set_nodelay(true);
        Ok::<_, io::Error>(child)
    };
    let target = ctx.target;
    let child = tokio::select! {
        _ = ctx.stopped() => return,
        r = work => r,
    };
    match child {
        Ok(child) => {
            let pipes = ctx.pipes.clone();
            tokio::select! {
                _ = ctx.stopped() => {}
                _ = splice::relay(conn, child, &pipes) => {}
            }
        }
        Err(e) => {
            tracing::debug!(?e, %peer, %target, "cannot connect to the child; closing the client connection")
        }
    }
}

/// Connects the namespace socket `fd` to `target`. A connection inside one host usually
/// completes within connect(2) itself, so it is checked at once; only one still in progress
/// waits for the runtime to report it (saving a wakeup per connection in the common case).
async fn connect_child(fd: OwnedFd, target: SocketAddr) -> io::Result<tokio::net::TcpStream> {
    use nix::sys::socket::{connect, getpeername};
    use std::os::fd::AsRawFd;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(target)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) => {
            if getpeername::<SockaddrStorage>(fd.as_raw_fd()).is_err() {
                let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd))?;
                stream.writable().await?;
                if let Some(e) = stream.take_error()? {
                    return Err(e);
                }
                stream.peer_addr()?;
                return Ok(stream);
            }
        }
        Err(e) => return Err(e.into()),
    }
    tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(spec: &str) -> (String, bool) {
        let (a, v6only) = listen_addr(&spec.parse().unwrap());
        (a.to_string(), v6only)
    }

    #[test]
    fn unspecified_tcp_and_udp_listen_on_both_families_as_go_does() {
        for spec in ["8080:80/tcp", "0.0.0.0:8080:80/tcp", "[::]:8080:80/udp"] {
            assert_eq!(addr(spec), ("[::]:8080".into(), false), "{spec}");
        }
        assert_eq!(
            addr("127.0.0.1:8080:80/tcp"),
            ("127.0.0.1:8080".into(), false)
        );
        assert_eq!(addr("0.0.0.0:8080:80/tcp4"), ("0.0.0.0:8080".into(), true));
        assert_eq!(addr("8080:80/tcp4"), ("0.0.0.0:8080".into(), true));
        assert_eq!(addr("8080:80/tcp6"), ("[::]:8080".into(), true));
        assert_eq!(addr("[::1]:8080:80/udp6"), ("[::1]:8080".into(), true));
    }
}
