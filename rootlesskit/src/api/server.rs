//! The API server: a hyper HTTP/1.1 server on a current-thread tokio runtime in its own thread,
//! hardened against malformed, oversized and slow requests.

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};

use super::{ApiError, ApiInfo, ErrorBody, Info, API_VERSION};
use crate::port::{PortError, PortSpec};

/// Largest request body accepted (a port spec is ~100 bytes).
const MAX_BODY: usize = 64 * 1024;
/// A client must send its headers, and then its body, within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection open longer than this is closed (no real client keeps one this long).
const MAX_CONN_LIFETIME: Duration = Duration::from_secs(300);
/// Connections served at once; more are closed right away.
const MAX_CONNS: usize = 128;

/// A running API server. Dropping it (or calling `shutdown`) stops it and removes the socket.
pub struct ApiServer {
    path: PathBuf,
    stop: Option<watch::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// The socket the server listens on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, closes open connections, joins the server thread and removes the socket.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Binds `sock` (mode 0600; a stale socket nobody answers on is removed first) and serves the
/// v1 API on a new thread.
pub fn serve(sock: &Path, info: ApiInfo) -> Result<ApiServer, ApiError> {
    let path = sock.to_path_buf();
    if let Ok(meta) = std::fs::symlink_metadata(sock) {
        if meta.file_type().is_socket() && std::os::unix::net::UnixStream::connect(sock).is_ok() {
            return Err(ApiError::InUse { path });
        }
        std::fs::remove_file(sock).map_err(|source| ApiError::Stale {
            path: path.clone(),
            source,
        })?;
    }
    let listener =
        std::os::unix::net::UnixListener::bind(sock).map_err(|source| ApiError::Bind {
            path: path.clone(),
            source,
        })?;
    let bind_err = |source| ApiError::Bind {
        path: path.clone(),
        source,
    };
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ApiError::Thread)?;
    let (stop_tx, stop_rx) = watch::channel(());
    let state = Arc::new(info);
    let thread = std::thread::Builder::new()
        .name("api-server".into())
        .spawn(move || rt.block_on(accept_loop(listener, state, stop_rx)))
        .map_err(ApiError::Thread)?;
    Ok(ApiServer {
        path,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: std::os::unix::net::UnixListener,
    state: Arc<ApiInfo>,
    mut stop: watch::Receiver<()>,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(?e, "cannot register the API socket");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(?e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!("too many API connections; closing a new one");
            continue;
        };
        let state = state.clone();
        conns.spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(MAX_CONN_LIFETIME, conn).await {
                Ok(Err(e)) => tracing::debug!(?e, "API connection ended with an error"),
                Err(_) => tracing::debug!("API connection closed after its maximum lifetime"),
                Ok(Ok(())) => {}
            }
        });
    }
    conns.shutdown().await;
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&ErrorBody {
        message: message.into(),
    })
    .unwrap_or_default();
    json(status, body)
}

fn ok<T: serde::Serialize>(status: StatusCode, v: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(v) {
        Ok(b) => json(status, b),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the response: {e}"),
        ),
    }
}

fn port_error_status(e: &PortError) -> StatusCode {
    match e {
        PortError::NotFound(_) => StatusCode::NOT_FOUND,
        PortError::Driver(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn handle(
    state: Arc<ApiInfo>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    tracing::debug!(%method, %path, "API request");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let resp = match (segs.as_slice(), &method) {
        (["v1", "info"], &Method::GET) => ok(StatusCode::OK, &info(&state)),
        (["v1", "ports"], &Method::GET) => match state.port_driver.clone() {
            None => no_driver(),
            Some(d) => match tokio::task::spawn_blocking(move || d.list()).await {
                Ok(list) => ok(StatusCode::OK, &list),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("listing ports failed: {e}"),
                ),
            },
        },
        (["v1", "ports"], &Method::POST) => add_port(&state, req).await,
        (["v1", "ports", id], &Method::DELETE) => match id.parse::<u64>() {
            Err(_) => error(
                StatusCode::BAD_REQUEST,
                format!("bad port id {id:?}: use a number from `rootlessctl list-ports`"),
            ),
            Ok(id) => match state.port_driver.clone() {
                None => no_driver(),
                Some(d) => match tokio::task::spawn_blocking(move || d.remove(id)).await {
                    Ok(Ok(())) => json(StatusCode::OK, Vec::new()),
                    Ok(Err(e)) => error(port_error_status(&e), e.to_string()),
                    Err(e) => error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("removing port {id} failed: {e}"),
                    ),
                },
            },
        },
        (["v1", "info"] | ["v1", "ports"] | ["v1", "ports", _], _) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not allowed on {path}"),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no such API endpoint {path}: the v1 API has /v1/info and /v1/ports"),
        ),
    };
    Ok(resp)
}

fn no_driver() -> Response<Full<Bytes>> {
    error(
        StatusCode::BAD_REQUEST,
        "no port driver is available: the launcher runs with --port-driver=none",
    )
}

fn info(state: &ApiInfo) -> Info {
    Info {
        api_version: API_VERSION.into(),
        version: state.version.clone(),
        state_dir: state.state_dir.clone(),
        child_pid: state.child_pid,
        network_driver: Some(state.network_driver.clone()),
        port_driver: state.port_driver.as_ref().map(|d| d.info()),
    }
}

async fn add_port(state: &ApiInfo, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(driver) = state.port_driver.clone() else {
        return no_driver();
    };
    let body = match tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    )
    .await
    {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            )
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_BODY} bytes"),
            )
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            )
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    let spec: PortSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid port spec JSON: {e}"),
            )
        }
    };
    match tokio::task::spawn_blocking(move || driver.add(spec)).await {
        Ok(Ok(status)) => ok(StatusCode::CREATED, &status),
        Ok(Err(e)) => error(port_error_status(&e), e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("adding the port failed: {e}"),
        ),
    }
}
