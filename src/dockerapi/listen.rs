//! Where the API listens: a unix socket burrow binds (private directory, mode 0600), a TCP
//! address (only when asked: nothing authenticates its clients), or the listening socket a
//! service manager passed (socket activation, `LISTEN_FDS`/`LISTEN_PID` as `sd_listen_fds`
//! reads them); and accepting connections from any of them.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};

/// The first file descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tcp://{addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} is in use by a running service (stop it, or give another --listen)")]
    InUse(PathBuf),
    #[error("no runtime directory: set XDG_RUNTIME_DIR, or give --listen unix://PATH")]
    NoRuntimeDir,
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket burrow binds.
    Unix(PathBuf),
    /// A TCP address: no authentication, no encryption.
    Tcp(SocketAddr),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Why a `--listen` address is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    #[error("--listen {0}: give an absolute path (unix:///run/user/1000/burrow/docker.sock)")]
    RelativePath(String),
    #[error(
        "--listen {0}: give tcp://HOST:PORT with a numeric address, e.g. tcp://127.0.0.1:2375"
    )]
    BadTcp(String),
    #[error("--listen {0}: give unix://PATH or tcp://HOST:PORT")]
    Scheme(String),
}

impl std::str::FromStr for Listen {
    type Err = ListenError;

    fn from_str(s: &str) -> Result<Listen, ListenError> {
        if let Some(p) = s.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(ListenError::RelativePath(s.into()));
            }
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            let host_port = if a.starts_with(':') {
                format!("127.0.0.1{a}")
            } else {
                a.to_string()
            };
            return host_port
                .parse()
                .map(Listen::Tcp)
                .map_err(|_| ListenError::BadTcp(s.into()));
        }
        Err(ListenError::Scheme(s.into()))
    }
}

/// The warning a TCP listener prints on stderr (Docker's and podman's point, in burrow's words).
pub fn tcp_warning(addr: &SocketAddr, rootless: bool) -> String {
    let who = if rootless {
        "your user: every container, and through bind mounts every file you can write"
    } else {
        "root on this machine"
    };
    let reach = if addr.ip().is_loopback() {
        "every user and process on this machine"
    } else {
        "everyone who can reach this address over the network"
    };
    format!(
        "WARNING: the Docker API on tcp://{addr} has no authentication and no encryption.\n\
         WARNING: {reach} can use it, and so owns {who}.\n\
         WARNING: prefer the unix socket (the default), or reach it through `ssh -L`."
    )
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// A unix socket; `path` is removed when the service ends unless a manager owns it.
    Unix {
        inner: tokio::net::UnixListener,
        path: Option<PathBuf>,
    },
    Tcp(tokio::net::TcpListener),
}

/// An accepted connection.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

impl Listener {
    /// Binds `listen`.
    pub fn bind(listen: &Listen) -> Result<Listener, ServeError> {
        match listen {
            Listen::Unix(p) => Ok(Listener::Unix {
                inner: bind_unix(p)?,
                path: Some(p.clone()),
            }),
            Listen::Tcp(a) => {
                let std = std::net::TcpListener::bind(a)
                    .map_err(|source| ServeError::Tcp { addr: *a, source })?;
                std.set_nonblocking(true)
                    .and_then(|_| tokio::net::TcpListener::from_std(std))
                    .map(Listener::Tcp)
                    .map_err(|source| ServeError::Tcp { addr: *a, source })
            }
        }
    }

    /// The next connection.
    pub async fn accept(&self) -> std::io::Result<Box<dyn Conn>> {
        Ok(match self {
            Listener::Unix { inner, .. } => Box::new(inner.accept().await?.0),
            Listener::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Box::new(s)
            }
        })
    }

    /// Removes the socket file burrow made (not one a service manager owns).
    pub fn remove(&self) {
        if let Listener::Unix { path: Some(p), .. } = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The listening unix socket a service manager passed to this process, if any.
/// Reads and clears `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`; call it while the process
/// has one thread (before the runtime starts).
pub fn activated() -> Result<Option<std::os::unix::net::UnixListener>, ActivationError> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    let n: i32 = fds
        .trim()
        .parse()
        .map_err(|_| ActivationError::Count(fds.clone()))?;
    if n != 1 {
        return Err(ActivationError::Count(fds));
    }
    let fd = LISTEN_FDS_START;
    nix::fcntl::fcntl(
        // SAFETY: fd 3 is open for the duration of this call (the manager passed it).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| ActivationError::Fd(e.to_string()))?;
    // SAFETY: the manager passed fd 3 to this process (LISTEN_PID is ours) and nothing else in
    // burrow uses it; the variables are cleared above, so it is taken once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let listener = std::os::unix::net::UnixListener::from(owned);
    listener
        .local_addr()
        .map_err(|e| ActivationError::Fd(format!("{e} (burrow takes a unix stream socket)")))?;
    Ok(Some(listener))
}

/// A passed socket burrow cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("socket activation passed LISTEN_FDS={0}: burrow's unit passes exactly one socket (ListenStream=)")]
    Count(String),
    #[error("the socket passed as fd 3: {0}")]
    Fd(String),
}

impl Listener {
    /// The passed socket as a listener (the manager owns its file).
    pub fn from_activated(l: std::os::unix::net::UnixListener) -> Result<Listener, ServeError> {
        let io = |source| ServeError::Io {
            path: PathBuf::from("fd 3"),
            source,
        };
        l.set_nonblocking(true).map_err(io)?;
        Ok(Listener::Unix {
            inner: tokio::net::UnixListener::from_std(l).map_err(io)?,
            path: None,
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the socket's directory private (0700) when missing (an existing one, which burrow's
/// other sockets share, is left as it is) and binds the socket private (0600) from the start,
/// replacing a stale one no service answers on.
fn bind_unix(socket: &Path) -> Result<tokio::net::UnixListener, ServeError> {
    if let Some(dir) = socket.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(dir))?;
        }
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(ServeError::InUse(socket.to_path_buf()));
        }
        std::fs::remove_file(socket).map_err(io(socket))?;
    }
    // Bound under a umask that leaves it private from the start.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = tokio::net::UnixListener::bind(socket);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io(socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io(socket))?;
    Ok(listener)
}

/// `__SO_ACCEPTCON`: the flag /proc/net/unix shows for a listening socket.
const ACCEPTCON: &str = "00010000";

/// Whether something listens on the unix socket `path`, read from /proc/net/unix: unlike a
/// connection, this does not start a socket-activated service.
pub fn listening(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return crate::connection::probe_socket(path).is_none();
    };
    listening_in(&table, path)
}

fn listening_in(table: &str, path: &Path) -> bool {
    let want = path.to_string_lossy();
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8 && f[3] == ACCEPTCON && f[7] == want
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_proc_net_unix() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 1234 /run/user/1000/burrow/docker.sock\n\
            0000000000000000: 00000003 00000000 00000000 0001 03 1235 /run/user/1000/other.sock\n";
        assert!(listening_in(
            table,
            Path::new("/run/user/1000/burrow/docker.sock")
        ));
        assert!(!listening_in(table, Path::new("/run/user/1000/other.sock")));
        assert!(!listening_in(table, Path::new("/nowhere")));
        let dir = std::env::temp_dir().join(format!("burrow-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(listening(&sock));
        drop(l);
        assert!(!listening(&sock));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn listen_addresses_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(
            "unix:///tmp/d.sock".parse::<Listen>().unwrap(),
            Listen::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            "tcp://127.0.0.1:2375".parse::<Listen>().unwrap(),
            Listen::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert_eq!(
            "tcp://:2375".parse::<Listen>().unwrap(),
            Listen::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert!(matches!(
            "unix://rel.sock".parse::<Listen>(),
            Err(ListenError::RelativePath(_))
        ));
        assert!(matches!(
            "tcp://localhost".parse::<Listen>(),
            Err(ListenError::BadTcp(_))
        ));
        assert!(matches!(
            "http://x".parse::<Listen>(),
            Err(ListenError::Scheme(_))
        ));
        let w = tcp_warning(&"0.0.0.0:2375".parse().unwrap(), true);
        assert!(
            w.contains("no authentication") && w.contains("network"),
            "{w}"
        );
    }
}
