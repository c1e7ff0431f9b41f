//! The API's connections: HTTP/1.1 (hyper) served concurrently, one task per connection on the
//! runtime's worker threads, and the idle timeout that ends the service once no client has been
//! connected for that long.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::listen::{self, Listen, Listener, ServeError};
use super::SharedCtx;
use crate::connection::{Mode, UserEnv};
use crate::containers::Ctx;

/// How to serve.
#[derive(Debug)]
pub struct ServeOptions {
    /// The bound listener ([`Listener::bind`], or the socket a service manager passed).
    pub listener: Listener,
    /// End the service after this long without a connected client (None: never).
    pub idle_timeout: Option<Duration>,
}

/// The default socket: `$XDG_RUNTIME_DIR/burrow/docker.sock` (else `/run/user/UID/...`) for
/// rootless containerd, `/run/burrow/docker.sock` for the rootful one.
pub fn default_socket(mode: Mode, env: &UserEnv) -> Result<PathBuf, ServeError> {
    match mode {
        Mode::Rootful => Ok(PathBuf::from("/run/burrow/docker.sock")),
        Mode::Rootless => crate::connection::effective_runtime_dir(env)
            .map(|d| d.join("burrow/docker.sock"))
            .ok_or(ServeError::NoRuntimeDir),
    }
}

/// Where a service listens, how to show it, and for TCP the warning to print.
#[derive(Debug)]
pub struct Chosen {
    pub listener: Listener,
    /// As DOCKER_HOST takes it.
    pub shown: String,
    pub warning: Option<String>,
}

/// Where `burrow system service` listens: the socket a service manager passed (socket
/// activation), else `listen`, else [`default_socket`] for `mode`.
pub fn choose(
    passed: Option<std::os::unix::net::UnixListener>,
    listen: Option<Listen>,
    mode: Mode,
) -> Result<Chosen, ServeError> {
    if let Some(l) = passed {
        let shown = l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| format!("unix://{}", p.display())))
            .unwrap_or_else(|| "the socket passed as fd 3".into());
        return Ok(Chosen {
            listener: Listener::from_activated(l)?,
            shown,
            warning: None,
        });
    }
    let listen = match listen {
        Some(l) => l,
        None => Listen::Unix(default_socket(mode, &UserEnv::current())?),
    };
    let warning = match &listen {
        Listen::Tcp(addr) => Some(listen::tcp_warning(addr, mode == Mode::Rootless)),
        Listen::Unix(_) => None,
    };
    Ok(Chosen {
        listener: Listener::bind(&listen)?,
        shown: listen.to_string(),
        warning,
    })
}

/// Serves the API on `opts.listener` until the idle timeout passes (or forever). Each
/// connection is a task of its own, so a slow request never holds up another client.
pub async fn serve(ctx: Ctx, opts: ServeOptions) -> Result<(), ServeError> {
    tracing::info!("serving the Docker API");
    let ctx = SharedCtx::new(ctx);
    super::events::start_recording(&ctx);
    let listener = &opts.listener;
    let active = Arc::new(AtomicUsize::new(0));
    let mut idle_since = Instant::now();
    let tick = opts
        .idle_timeout
        .map(|t| {
            t.min(Duration::from_secs(1))
                .max(Duration::from_millis(100))
        })
        .unwrap_or(Duration::from_secs(3600));
    // SIGTERM (a service manager's stop) and SIGINT end the service with its socket removed.
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    loop {
        let stop = async {
            match (term.as_mut(), int.as_mut()) {
                (Some(t), Some(i)) => tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                },
                _ => std::future::pending().await,
            }
        };
        let accepted = tokio::select! {
            a = tokio::time::timeout(tick, listener.accept()) => a,
            _ = stop => {
                tracing::info!("stopped by a signal: the service ends");
                listener.remove();
                return Ok(());
            }
        };
        let stream = match accepted {
            Err(_) => {
                if active.load(Ordering::SeqCst) > 0 {
                    idle_since = Instant::now();
                } else if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                    tracing::info!("no client for the idle timeout: the service ends");
                    listener.remove();
                    return Ok(());
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(%e, "accepting a connection");
                continue;
            }
            Ok(Ok(stream)) => stream,
        };
        active.fetch_add(1, Ordering::SeqCst);
        let (ctx, active) = (ctx.clone(), active.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| super::router::handle(ctx.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await
            {
                tracing::debug!(%e, "connection ended");
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
        idle_since = Instant::now();
    }
}
