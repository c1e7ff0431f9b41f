//! The listener socket runc connects to: one thread per container serves its trapped calls, and
//! containers' listeners are kept in systemd's fd store across restarts of the service.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::container::{Container, Stats};
use crate::fdstore::{self, FdStore};
use crate::handler;
use crate::policy::{Metadata, Policy};
use crate::proto;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another burrow-bypass already listens on {0} (stop it first)")]
    InUse(PathBuf),
    #[error("cannot listen on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("this kernel has no seccomp user notification with ADDFD (needs Linux 5.9 or newer; this is {0})")]
    Kernel(String),
}

/// The socket's default place: `$XDG_RUNTIME_DIR/burrow/bypass.sock`.
pub fn default_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("burrow/bypass.sock"))
}

/// Serves one container's listener with its metadata until the container is gone.
fn serve_one(name: &str, fd: OwnedFd, metadata: &str, stats: &Arc<Stats>) {
    let meta: Metadata = match serde_json::from_str(metadata) {
        Ok(m) => m,
        Err(e) => {
            // Without the container's networks nothing can be bypassed safely.
            tracing::warn!(name, "bad listenerMetadata ({e}): nothing is bypassed");
            Metadata {
                networks: vec!["0.0.0.0/0".into(), "::/0".into()],
                ..Metadata::default()
            }
        }
    };
    handler::serve(Container::new(fd, Policy::new(&meta), Arc::clone(stats)));
    tracing::info!(
        name,
        trapped = stats.trapped.load(Ordering::Relaxed),
        bypassed = stats.bypassed.load(Ordering::Relaxed),
        "container gone"
    );
}

/// Checks the kernel version for SECCOMP_IOCTL_NOTIF_ADDFD (5.9).
pub fn check_kernel() -> Result<(), ServiceError> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    if (major, minor) < (5, 9) {
        return Err(ServiceError::Kernel(release));
    }
    Ok(())
}

/// Binds the socket (private to the user) and serves until the process is killed.
pub fn run(socket: &Path) -> Result<(), ServiceError> {
    check_kernel()?;
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| ServiceError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    if std::os::unix::net::UnixStream::connect(socket).is_ok() {
        return Err(ServiceError::InUse(socket.to_path_buf()));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(|source| ServiceError::Listen {
        path: socket.to_path_buf(),
        source,
    })?;
    let _ = std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600));
    tracing::info!(socket = %socket.display(), "burrow-bypass listening");
    let stats = Arc::new(Stats::default());
    let store = FdStore::from_env(socket);
    // Containers served by the instance before this one (killed or crashed): their listeners
    // waited in systemd's fd store, their trapped calls blocked meanwhile.
    for kept in store.recover() {
        tracing::info!(name = %kept.name, "serving a container again after a restart");
        let (stats, store) = (Arc::clone(&stats), store.clone());
        let spawned = std::thread::Builder::new()
            .name("bypass-container".into())
            .spawn(move || {
                serve_one(&kept.name, kept.fd, &kept.metadata, &stats);
                store.forget(&kept.name);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread for a container: {e}");
        }
    }
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        let (stats, store) = (Arc::clone(&stats), store.clone());
        let spawned = std::thread::Builder::new()
            .name("bypass-container".into())
            .spawn(move || {
                let (state, fd) = match proto::receive(conn) {
                    Ok(v) => v,
                    Err(proto::ProtoError::Empty) => return,
                    Err(e) => {
                        tracing::warn!("a container's listener: {e}");
                        return;
                    }
                };
                let id = state
                    .state
                    .as_ref()
                    .map(|s| s.id.clone())
                    .unwrap_or_default();
                let name = fdstore::name_for(&id, state.pid);
                tracing::info!(container = %id, pid = state.pid, "serving a container");
                store.keep(&name, fd.as_fd(), &state.metadata);
                serve_one(&name, fd, &state.metadata, &stats);
                store.forget(&name);
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start a thread for a container: {e}");
        }
    }
    Ok(())
}
