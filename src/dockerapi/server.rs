//! The API's socket and connections: a private directory (0700) holding the socket (0600),
//! HTTP/1.1 connections served concurrently on the current thread (hyper), and the idle
//! timeout that ends the service once no client has been connected for that long.

use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::SharedCtx;
use crate::connection::{Mode, UserEnv};
use crate::containers::Ctx;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The socket's path.
    pub socket: PathBuf,
    /// End the service after this long without a connected client (None: never).
    pub idle_timeout: Option<Duration>,
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is in use by a running service (stop it, or give another --listen)")]
    InUse(PathBuf),
    #[error("no runtime directory: set XDG_RUNTIME_DIR, or give --listen unix://PATH")]
    NoRuntimeDir,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The default socket: `$XDG_RUNTIME_DIR/burrow/docker.sock` (else `/run/user/UID/...`) for
/// rootless containerd,
/// `/run/burrow/docker.sock` for the rootful one.
pub fn default_socket(mode: Mode, env: &UserEnv) -> Result<PathBuf, ServeError> {
    match mode {
        Mode::Rootful => Ok(PathBuf::from("/run/burrow/docker.sock")),
        Mode::Rootless => crate::connection::effective_runtime_dir(env)
            .map(|d| d.join("burrow/docker.sock"))
            .ok_or(ServeError::NoRuntimeDir),
    }
}

/// Creates the socket's directory private (0700) when missing (an existing one, which burrow's
/// other sockets share, is left as it is) and binds the socket private (0600) from the start,
/// replacing a stale one no service answers on.
fn bind(socket: &Path) -> Result<UnixListener, ServeError> {
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
    let bound = UnixListener::bind(socket);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io(socket))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io(socket))?;
    Ok(listener)
}

/// Serves the API on `opts.socket` until the idle timeout passes (or forever). Runs its
/// connections as local tasks of the current thread.
pub async fn serve(ctx: Ctx, opts: ServeOptions) -> Result<(), ServeError> {
    let listener = bind(&opts.socket)?;
    tracing::info!(socket = %opts.socket.display(), "serving the Docker API");
    let local = tokio::task::LocalSet::new();
    local
        .run_until(accept_loop(SharedCtx::new(ctx), listener, opts))
        .await
}

async fn accept_loop(
    ctx: SharedCtx,
    listener: UnixListener,
    opts: ServeOptions,
) -> Result<(), ServeError> {
    let active = Rc::new(Cell::new(0usize));
    let mut idle_since = Instant::now();
    let tick = opts
        .idle_timeout
        .map(|t| {
            t.min(Duration::from_secs(1))
                .max(Duration::from_millis(100))
        })
        .unwrap_or(Duration::from_secs(3600));
    loop {
        let accepted = tokio::time::timeout(tick, listener.accept()).await;
        let stream = match accepted {
            Err(_) => {
                if active.get() > 0 {
                    idle_since = Instant::now();
                } else if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                    tracing::info!("no client for the idle timeout: the service ends");
                    let _ = std::fs::remove_file(&opts.socket);
                    return Ok(());
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(%e, "accepting a connection");
                continue;
            }
            Ok(Ok((stream, _))) => stream,
        };
        active.set(active.get() + 1);
        let (ctx, active) = (ctx.clone(), active.clone());
        tokio::task::spawn_local(async move {
            let service = service_fn(move |req| super::router::handle(ctx.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                tracing::debug!(%e, "connection ended");
            }
            active.set(active.get() - 1);
        });
        idle_since = Instant::now();
    }
}
