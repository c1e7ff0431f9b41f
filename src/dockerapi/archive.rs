//! A container's files through the API: `/containers/{id}/archive` (GET, HEAD, PUT: `docker
//! cp`), `/export` and `/changes`, through the library's `cp` helper (`copy::transfer`) and
//! `diff`, as `burrow cp`, `export` and `diff` use them.

use std::io::Write;

use base64::Engine as _;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc::Sender;

use super::call::Call;
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::lookup::find;
use crate::containers::copy::transfer::{ContainerFs, PutError};
use crate::containers::{diff, Ctx};

/// A `Write` feeding a streamed body from a blocking thread, waiting while the client is
/// behind; fails once the client has gone.
struct ChanWriter(Sender<Bytes>);

/// Chunks a streamed tar may have in flight.
const IN_FLIGHT: usize = 64;

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A blocking task's panic as a 500.
fn joined(e: tokio::task::JoinError) -> ApiError {
    ApiError::new(500, format!("the copy stopped: {e}"))
}

fn path_param(q: &Query) -> Result<String, ApiError> {
    q.get("path")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("give the path in the path parameter"))
}

async fn open(ctx: &Ctx, id: &str) -> Result<ContainerFs, ApiError> {
    find(ctx, id).await?;
    Ok(ContainerFs::open(ctx, id).await?)
}

/// `GET` (`head`: `HEAD`) `/containers/{id}/archive?path=`: a tar of the path, its stat in
/// the `X-Docker-Container-Path-Stat` header (base64 JSON); 404 when nothing is there.
pub async fn get(ctx: &Ctx, id: &str, q: &Query, head: bool) -> Result<Response<Body>, ApiError> {
    let path = path_param(q)?;
    let fs = open(ctx, id).await?;
    let p = path.clone();
    let (fs, st) = tokio::task::spawn_blocking(move || {
        let st = fs.path_stat(&p);
        (fs, st)
    })
    .await
    .map_err(joined)?;
    let st = st?.ok_or_else(|| {
        ApiError::not_found(format!("Could not find the file {path} in container {id}"))
    })?;
    let header = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&st).map_err(ApiError::from)?);
    let mut r = if head {
        http::empty(200)
    } else {
        let (tx, body) = http::bounded_channel(IN_FLIGHT);
        let task = tokio::task::spawn_blocking(move || {
            if let Err(e) = fs.archive(&path, &mut ChanWriter(tx)) {
                tracing::debug!(error = %format!("{e:#}"), "archive");
            }
        });
        Response::new(http::with_task(body, task))
    };
    let h = r.headers_mut();
    h.insert("Content-Type", "application/x-tar".parse().expect("static"));
    if let Ok(v) = header.parse() {
        h.insert("X-Docker-Container-Path-Stat", v);
    }
    Ok(r)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: the body (a tar)
/// unpacked into the directory `path`.
pub async fn put(ctx: &Ctx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let q = &call.query;
    let path = path_param(q)?;
    let no_overwrite = q.flag("noOverwriteDirNonDir", false)?;
    let keep_owners = q.flag("copyUIDGID", false)?;
    let fs = open(ctx, id).await?;
    let data = call.body.clone();
    tokio::task::spawn_blocking(move || fs.put_tar(&data, &path, keep_owners, no_overwrite))
        .await
        .map_err(joined)?
        .map_err(|e| match e {
            PutError::NotFound(..) => ApiError::not_found(e.to_string()),
            PutError::NotDir(_) | PutError::DirNonDir(_) => ApiError::bad_request(e.to_string()),
            PutError::Other(e) => ApiError::from(e),
        })?;
    Ok(http::empty(200))
}

/// `GET /containers/{id}/export`: the container's whole filesystem as a tar stream.
pub async fn export(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let fs = open(ctx, id).await?;
    fs.exportable()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (tx, body) = http::bounded_channel(IN_FLIGHT);
    let task = tokio::task::spawn_blocking(move || {
        if let Err(e) = fs.export(&mut ChanWriter(tx)) {
            tracing::debug!(error = %format!("{e:#}"), "export");
        }
    });
    let mut r = Response::new(http::with_task(body, task));
    r.headers_mut()
        .insert("Content-Type", "application/x-tar".parse().expect("static"));
    Ok(r)
}

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`, Kind 0 changed, 1 added, 2 deleted.
pub async fn changes(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    find(ctx, id).await?;
    let found = diff::diff(ctx, id).await?;
    let rows: Vec<Value> = found
        .iter()
        .map(|c| {
            let kind = match c.kind {
                'A' => 1,
                'D' => 2,
                _ => 0,
            };
            json!({ "Path": c.path, "Kind": kind })
        })
        .collect();
    Ok(http::json(200, &Value::Array(rows)))
}
