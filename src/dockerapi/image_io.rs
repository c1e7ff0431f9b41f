//! The image endpoints that move images in and out: push (`/images/{name}/push`), save
//! (`/images/{name}/get`, `/images/get`), load (`/images/load`) and history, through the
//! library's push, save, load and catalog as `burrow push/save/load/history` use them; search
//! and build answer what burrow cannot do yet.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Method, Response};
use serde_json::{json, Value};

use super::auth::registry_auth;
use super::call::Call;
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::transfer::{progress_lines, store, Transfer};
use super::SharedCtx;
use crate::containers::Ctx;
use crate::images::archive::{self, ArchiveError};
use crate::images::catalog::{self, CatalogError};
use crate::images::endpoints::registries_for;
use crate::images::manifest::Platform;
use crate::images::progress::Progress;
use crate::images::reference::{self, Reference};
use crate::images::save::{self, SaveError};
use crate::images::{push, store::Store};

/// Whether a name as a client typed it carries a tag (`repo:tag`, not `host:port/repo`).
fn has_tag(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    !name.contains('@') && last.contains(':')
}

/// The references a push of `name` with `tag` means: that tag, else every local tag of the
/// repository (Docker's push without a tag).
async fn push_targets(
    store: &Store,
    name: &str,
    tag: Option<&str>,
) -> Result<Vec<Reference>, ApiError> {
    let bad = |e: reference::ReferenceError| {
        ApiError::bad_request(format!("invalid reference format {name:?}: {e}"))
    };
    if let Some(t) = tag.filter(|t| !t.is_empty()) {
        return Ok(vec![Reference::parse(&format!("{name}:{t}")).map_err(bad)?]);
    }
    let r = Reference::parse(name).map_err(bad)?;
    if has_tag(name) {
        return Ok(vec![r]);
    }
    let records = store.images().await.map_err(anyhow::Error::from)?;
    let mut out: Vec<Reference> = records
        .iter()
        .filter_map(|i| Reference::parse(&i.name).ok())
        .filter(|o| o.repository() == r.repository() && o.tag.is_some() && o.digest.is_none())
        .collect();
    out.sort_by(|a, b| a.tag.cmp(&b.tag));
    if out.is_empty() {
        return Err(ApiError::no_such_image(name));
    }
    Ok(out)
}

/// `POST /images/{name}/push?tag=`: Docker's JSON progress stream ("The push refers to
/// repository [...]", per layer Pushing / Pushed / Layer already exists / Mounted from, then
/// "TAG: digest: sha256:... size: N" and the aux record); a failure as an error line. The
/// credentials are the request's `X-Registry-Auth`, else those of `burrow login`.
pub async fn push(ctx: &Ctx, call: &Call, name: &str) -> Result<Response<Body>, ApiError> {
    let creds = registry_auth(&call.headers)?;
    let store = store(ctx);
    let targets = push_targets(&store, name, call.query.get("tag")).await?;
    for t in &targets {
        if catalog::record(&store, &t.to_string()).await.is_err() {
            return Err(ApiError::no_such_image(&t.familiar()));
        }
    }
    let domain = targets[0].domain.clone();
    let mut reg = registries_for(&domain, false, true, &[])?.remove(0);
    if creds.is_some() {
        reg = reg.with_credentials(creds);
    }
    let (tx, body) = http::channel(None);
    let progress = Progress::Events(Box::new(progress_lines(tx.clone(), Transfer::Push)));
    let task = tokio::spawn(async move {
        let send = |v: Value| {
            let _ = tx.send(format!("{v}\r\n").into());
        };
        for t in &targets {
            match push::push(&store, &reg, t, &Platform::host(), &progress).await {
                Ok(p) => {
                    send(
                        json!({ "status": format!("{}: digest: {} size: {}", p.tag, p.digest, p.size) }),
                    );
                    send(json!({
                        "progressDetail": {},
                        "aux": { "Tag": p.tag, "Digest": p.digest, "Size": p.size },
                    }));
                }
                Err(e) => {
                    let m = format!("push {}: {:#}", t.familiar(), anyhow::Error::from(e));
                    send(json!({ "errorDetail": { "message": m }, "error": m }));
                    return;
                }
            }
        }
    });
    let mut r = Response::new(http::with_task(body, task));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}

/// `GET /images/{name}/history`: Docker's entries, newest first.
pub async fn history(ctx: &Ctx, name: &str) -> Result<Response<Body>, ApiError> {
    let store = store(ctx);
    let found = match catalog::find(&store, name, &Platform::host()).await {
        Ok(f) => f,
        Err(CatalogError::NotFound(_)) => return Err(ApiError::no_such_image(name)),
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let l = &found[0];
    let all = catalog::all(&store, &Platform::host())
        .await
        .map_err(anyhow::Error::from)?;
    let tags: Vec<String> = catalog::names_by_id(&all)
        .remove(l.id())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| !catalog::is_dangling(n) && !n.contains('@'))
        .map(|n| reference::familiar(&n))
        .collect();
    let rows: Vec<Value> = catalog::history_entries(l)
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            json!({
                "Id": h.id,
                "Created": h.created_unix(),
                "CreatedBy": h.created_by,
                "Tags": if i == 0 { json!(tags) } else { Value::Null },
                "Size": h.size,
                "Comment": h.comment,
            })
        })
        .collect();
    Ok(http::json(200, &Value::Array(rows)))
}

/// `GET /images/{name}/get` and `GET /images/get?names=A&names=B`: one tar that is both a
/// docker-archive and an OCI archive (`burrow save`'s), written to a private temporary file
/// first, so a missing image is a 404 and not a broken stream.
pub async fn save(ctx: &Ctx, names: Vec<String>) -> Result<Response<Body>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("give the images to save: names=NAME"));
    }
    let file = tempfile::tempfile()
        .map_err(|e| ApiError::new(500, format!("cannot create a temporary file: {e}")))?;
    let store = store(ctx);
    let written = save::save_buffered(&store, &names, &Platform::host(), &file).await;
    if let Err(e) = written {
        return Err(match e {
            SaveError::Catalog(CatalogError::NotFound(n)) => ApiError::no_such_image(&n),
            e => anyhow::Error::from(e).into(),
        });
    }
    let mut file = file;
    file.rewind()
        .map_err(|e| ApiError::new(500, format!("cannot read the saved archive: {e}")))?;
    let mut r = Response::new(FileBody(file).boxed_unsync());
    r.headers_mut()
        .insert("Content-Type", "application/x-tar".parse().expect("static"));
    Ok(r)
}

/// Whether a request uploads an archive (`POST /images/load`, `POST /build`): its body is
/// read as it arrives by [`upload`], not collected in memory.
pub fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path, "/images/load" | "/build")
}

/// Answers an upload from the body spooled to a private temporary file: `/images/load`, or
/// `/build` (the context, through [`super::build`]).
pub async fn upload(
    ctx: &SharedCtx,
    path: &str,
    query: &Query,
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    if path == "/build" {
        let context = spool(body, "build context").await?;
        return super::build::build(ctx, query, headers, context).await;
    }
    // Accepted either way: burrow's load prints no progress to leave out.
    query.flag("quiet", false)?;
    let tmp = spool(body, "archive").await?;
    load(ctx, tmp.path()).await
}

/// A request body written to a private temporary file as it arrives (`what` names it).
async fn spool(mut body: Incoming, what: &str) -> Result<tempfile::NamedTempFile, ApiError> {
    let tmp_err = |e: std::io::Error| ApiError::new(500, format!("cannot buffer the {what}: {e}"));
    let mut tmp = tempfile::NamedTempFile::new().map_err(tmp_err)?;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("the {what} did not arrive whole: {e}")))?;
        if let Ok(data) = frame.into_data() {
            tmp.write_all(&data).map_err(tmp_err)?;
        }
    }
    tmp.flush().map_err(tmp_err)?;
    Ok(tmp)
}

/// `POST /images/load`: the archive (docker-archive or OCI archive, plain or gzip) into the
/// store; Docker's `{"stream": "Loaded image: NAME\n"}` lines.
async fn load(ctx: &Ctx, archive_path: &Path) -> Result<Response<Body>, ApiError> {
    let opts = archive::LoadOptions {
        platform: Platform::host(),
        all_platforms: false,
    };
    let loaded = archive::load(&store(ctx), Some(archive_path), &opts)
        .await
        .map_err(|e| match e {
            ArchiveError::Store(_) | ArchiveError::Local(_) => {
                ApiError::from(anyhow::Error::from(e))
            }
            // The rest is about the archive the client sent.
            e => ApiError::bad_request(
                format!("{:#}", anyhow::Error::from(e))
                    .replace(&archive_path.display().to_string(), "the archive"),
            ),
        })?;
    let mut out = String::new();
    for l in loaded {
        let lines: Vec<String> = if l.names.is_empty() {
            vec![format!("Loaded image ID: {}\n", l.id)]
        } else {
            l.names
                .iter()
                .map(|n| format!("Loaded image: {}\n", reference::familiar(n)))
                .collect()
        };
        for s in lines {
            out.push_str(&json!({ "stream": s }).to_string());
            out.push_str("\r\n");
        }
    }
    let mut r = Response::new(http::full(out));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}

/// `GET /images/search?term&limit&filters`: Docker Hub's search, or a registry's catalog for
/// `REGISTRY/TERM` ([`crate::images::search`]), in Docker's shape.
pub async fn search(q: &super::http::Query) -> Result<Response<Body>, ApiError> {
    use crate::images::search::{self as find, Filters, SearchError};
    let term = q
        .get("term")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("term: give what to search for"))?;
    let limit = q.int("limit")?.unwrap_or(0);
    let limit = usize::try_from(limit)
        .map_err(|_| ApiError::bad_request(format!("invalid limit {limit}: give 1 to 100")))?;
    let filters =
        Filters::parse(&q.filters()?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let found = find::search(term, limit, &filters)
        .await
        .map_err(|e| match e {
            SearchError::Registry(e) => ApiError::from(e),
            other => ApiError::bad_request(other.to_string()),
        })?;
    let rows: Vec<serde_json::Value> = found
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "description": f.description,
                "star_count": f.star_count,
                "is_official": f.is_official,
                "is_automated": f.is_automated,
            })
        })
        .collect();
    Ok(super::http::json(200, &serde_json::Value::Array(rows)))
}

/// A response body read from a file in 64 KiB pieces (a saved archive).
struct FileBody(std::fs::File);

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut buf = vec![0u8; 64 * 1024];
        match self.0.read(&mut buf) {
            Ok(0) => Poll::Ready(None),
            Ok(n) => {
                buf.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(buf)))))
            }
            Err(e) => {
                // The headers are sent: ending early is all that is left to do.
                tracing::warn!(%e, "reading the saved archive");
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_names_as_docker_reads_them() {
        assert!(has_tag("busybox:1"));
        assert!(has_tag("127.0.0.1:5000/a/b:1"));
        assert!(!has_tag("127.0.0.1:5000/a/b"));
        assert!(!has_tag("busybox"));
        assert!(!has_tag("busybox@sha256:abc"));
    }
}
