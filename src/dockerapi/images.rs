//! The image endpoints: list, inspect, pull and import (`/images/create`), tag and remove,
//! through the library's catalog, pull, import, tag and remove; push, save, load and history
//! are in [`super::image_io`].

use std::sync::Arc;

use hyper::Response;
use serde_json::{json, Value};

use super::auth::registry_auth;
use super::call::{unimplemented, Call};
use super::error::ApiError;
use super::http::{self, Body};
use super::image_io;
use super::transfer::{progress_lines, store, Transfer};
use crate::containers::Ctx;
use crate::images::endpoints::{pull_any, registries_for};
use crate::images::manifest::Platform;
use crate::images::progress::Progress;
use crate::images::reference::Reference;
use crate::images::{catalog, pull, remove, userdb};

/// Dispatches `/images...`; `rest` is the path after `/images` (names may hold slashes).
pub async fn route(ctx: &Ctx, call: &Call, rest: &str) -> Result<Response<Body>, ApiError> {
    let m = call.method.as_str();
    match (m, rest.trim_end_matches('/')) {
        ("GET", "/json") => list(ctx, call).await,
        ("POST", "/create") => create(ctx, call).await,
        ("GET", "/search") => image_io::search(&call.query).await,
        ("GET", "/get") => image_io::save(ctx, names(call)).await,
        ("POST", "/prune") => super::space::prune_images(ctx, &call.query).await,
        ("GET", p) if p.ends_with("/json") => inspect(ctx, name(p, "/json")).await,
        ("GET", p) if p.ends_with("/history") => image_io::history(ctx, name(p, "/history")).await,
        ("GET", p) if p.ends_with("/get") => {
            image_io::save(ctx, vec![name(p, "/get").to_string()]).await
        }
        ("POST", p) if p.ends_with("/push") => image_io::push(ctx, call, name(p, "/push")).await,
        ("POST", p) if p.ends_with("/tag") => tag(ctx, call, name(p, "/tag")).await,
        ("DELETE", p) if p.len() > 1 => delete(ctx, call, &p[1..]).await,
        _ => Err(unimplemented(call)),
    }
}

/// `GET /distribution/{name}/json`: what the registry holds under `name` (its descriptor and
/// platforms), asked with the `X-Registry-Auth` credentials or the user's stored ones.
pub async fn distribution(call: &Call, name: &str) -> Result<Response<Body>, ApiError> {
    use crate::images::manifestlist::ListError;
    let reference = Reference::parse(name)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format {name:?}: {e}")))?;
    let creds = registry_auth(&call.headers)?;
    let mut reg = registries_for(&reference.domain, false, false, &[])?.remove(0);
    if creds.is_some() {
        reg = reg.with_credentials(creds);
    }
    let v = crate::images::manifestlist::distribution(&reg, name)
        .await
        .map_err(|e| match e {
            // The registry's refusal (its type inside, for the status).
            ListError::Registry(e) => ApiError::new(super::error::status_of(&e), format!("{e:#}")),
            ListError::Name { .. } => ApiError::bad_request(e.to_string()),
            e => ApiError::from(anyhow::Error::from(e)),
        })?;
    Ok(http::json(200, &v))
}

/// The `names` of `GET /images/get` (repeated, or comma-separated by older clients).
fn names(call: &Call) -> Vec<String> {
    call.query
        .all("names")
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

/// The image name between `/` and `suffix`.
fn name<'a>(p: &'a str, suffix: &str) -> &'a str {
    p.trim_start_matches('/').strip_suffix(suffix).unwrap_or(p)
}

/// `GET /images/json`: one entry per image ID, with its names that the `filters` (reference,
/// dangling, label, before, since, until) keep; not the build cache's records. `all` (intermediate images) changes
/// nothing: burrow keeps none.
async fn list(ctx: &Ctx, call: &Call) -> Result<Response<Body>, ApiError> {
    let filters = crate::images::list::parse_filters(&call.query.filters()?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let filters = crate::images::list::resolve(&store(ctx), filters)
        .await
        .map_err(anyhow::Error::from)?;
    let all = crate::images::list::matching(&store(ctx), &filters)
        .await
        .map_err(anyhow::Error::from)?;
    let names = catalog::names_by_id(&all);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for l in &all {
        if !seen.insert(l.id().to_string()) {
            continue;
        }
        let all_names = names
            .get(l.id())
            .cloned()
            .unwrap_or_else(|| vec![l.name.clone()]);
        let doc = catalog::inspect(l, &all_names);
        out.push(summary(&doc, catalog::created(l).unwrap_or(0)));
    }
    // The shared store's images not here yet, as `burrow images` lists them (a create starts
    // them without a pull); one with the ID of a local image adds its name to that entry.
    let have: Vec<String> = all.iter().map(|l| l.name.clone()).collect();
    for doc in crate::containers::stored_images::inspect_not_here(&have) {
        let created = doc["Created"]
            .as_str()
            .and_then(crate::images::time::parse_rfc3339);
        let c = crate::images::list::Candidate {
            name: doc["RepoTags"][0].as_str().unwrap_or_default(),
            labels: &doc["Config"]["Labels"],
            created,
        };
        if !crate::images::list::keeps_all(&filters, &c) {
            continue;
        }
        if let Some(o) = out.iter_mut().find(|o| o["Id"] == doc["Id"]) {
            if let (Some(tags), Some(more)) =
                (o["RepoTags"].as_array_mut(), doc["RepoTags"].as_array())
            {
                tags.extend(more.iter().cloned());
            }
            continue;
        }
        out.push(summary(&doc, created.unwrap_or(0)));
    }
    Ok(http::json(200, &Value::Array(out)))
}

/// The list entry of an image, from its inspect document and creation time (Unix seconds).
fn summary(doc: &Value, created: i64) -> Value {
    let labels = doc["Config"]["Labels"].clone();
    json!({
        "Id": doc["Id"],
        "ParentId": "",
        "RepoTags": doc["RepoTags"],
        "RepoDigests": doc["RepoDigests"],
        "Created": created,
        "Size": doc["Size"],
        "SharedSize": -1,
        "VirtualSize": doc["Size"],
        "Labels": if labels.is_null() { json!({}) } else { labels },
        "Containers": -1,
    })
}

/// `GET /images/{name}/json`: a local image, else the shared store's image of that name (which
/// a create starts from without a pull, so a client that checks before pulling need not pull).
async fn inspect(ctx: &Ctx, name: &str) -> Result<Response<Body>, ApiError> {
    match crate::containers::stored_images::inspect(&store(ctx), name, &Platform::host()).await {
        Ok(v) => Ok(http::json(200, &v)),
        Err(catalog::CatalogError::NotFound(_)) => Err(ApiError::no_such_image(name)),
        Err(e) => Err(anyhow::Error::from(e).into()),
    }
}

/// The reference `fromImage` and `tag` name together (Docker's rule: a digest tag joins with @).
fn pull_reference(from: &str, tag: Option<&str>) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    }
}

/// `POST /images/create?fromImage=&tag=&platform=`: the pull, streamed as Docker's JSON
/// progress lines (per layer: Pulling fs layer, Downloading with progressDetail, Pull
/// complete / Already exists), ending with the digest and status, or an error line.
async fn create(ctx: &Ctx, call: &Call) -> Result<Response<Body>, ApiError> {
    let q = &call.query;
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        return import(ctx, call, src).await;
    }
    let from = q
        .get("fromImage")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::bad_request("give fromImage (the image to pull)"))?;
    let typed = pull_reference(from, q.get("tag"));
    let reference = Reference::parse(&typed)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format {typed:?}: {e}")))?;
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(ApiError::bad_request)?,
        None => Platform::host(),
    };
    let opts = pull::PullOptions {
        strict_platform: q.get("platform").is_some_and(|p| !p.is_empty()),
        platform,
        all_platforms: false,
        unpack: true,
    };
    let creds = registry_auth(&call.headers)?;
    let mut regs = registries_for(&reference.domain, false, false, &[])?;
    if creds.is_some() {
        regs = regs
            .into_iter()
            .map(|r| r.with_credentials(creds.clone()))
            .collect();
    }
    let store = store(ctx);
    // The pull reports into `lines`; until it has said something, a failure is the answer's
    // status (as Docker's: a client such as docker-py raises on it), after that an error line.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<hyper::body::Bytes>();
    let progress = Arc::new(Progress::Events(Box::new(progress_lines(
        lines_tx.clone(),
        Transfer::Pull,
    ))));
    let mut pulling =
        tokio::spawn(async move { pull_any(&store, regs, &reference, &opts, progress).await });
    // A client that goes away ends the pull (which then undoes what it began).
    let abort = AbortOnDrop(pulling.abort_handle());
    let first = tokio::select! {
        line = lines.recv() => line,
        ended = &mut pulling => {
            let pulled = ended.map_err(|e| ApiError::from(anyhow::anyhow!("the pull failed: {e}")))?;
            if let Err(e) = &pulled {
                return Err(ApiError::new(super::error::status_of(e), format!("{e:#}")));
            }
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            send_outcome(&tx, &typed, pulled);
            drop(tx);
            let mut text = Vec::new();
            while let Some(l) = rx.recv().await {
                text.extend_from_slice(&l);
            }
            return Ok(json_answer(http::full(text)));
        }
    };
    let (tx, body) = http::channel(None);
    let task = tokio::spawn(async move {
        let _abort = abort;
        let forward = async {
            if let Some(l) = first {
                let _ = tx.send(l);
            }
            while let Some(l) = lines.recv().await {
                let _ = tx.send(l);
            }
        };
        drop(lines_tx);
        let (pulled, ()) = tokio::join!(pulling, forward);
        match pulled {
            Ok(p) => send_outcome(&tx, &typed, p),
            Err(e) => send_line(&tx, json!({ "error": format!("the pull failed: {e}") })),
        }
    });
    Ok(json_answer(http::with_task(body, task)))
}

/// `POST /images/create?fromSrc=-|URL&repo=&tag=&message=&changes=&platform=`: the tarball in
/// the body (`-`) or at an http(s) URL as a one-layer image ([`crate::images::import`]);
/// Docker's answer, one `{"status": ID}` line.
async fn import(ctx: &Ctx, call: &Call, src: &str) -> Result<Response<Body>, ApiError> {
    let q = &call.query;
    let data = if src == "-" {
        call.body.to_vec()
    } else if crate::build::fetch::is_url(src) {
        crate::images::import::fetch_url(src)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot download {src}: {e:#}")))?
    } else {
        return Err(ApiError::bad_request(format!(
            "fromSrc {src:?}: give - (the tarball in the body) or an http(s) URL"
        )));
    };
    if data.is_empty() {
        return Err(ApiError::bad_request(
            "fromSrc=- but the body is empty: send the tarball as the request's body",
        ));
    }
    let name = super::commit::image_name(q);
    let changes = crate::dockerfile::parse_changes(&super::commit::changes(q))
        .map_err(|e| ApiError::bad_request(format!("changes: {e}")))?;
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(Platform::parse)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let comment = match q.get("message").filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => format!("Imported from {src}"),
    };
    let made = crate::images::import::import(
        &store(ctx),
        data,
        name.as_deref(),
        &comment,
        &changes,
        platform.as_ref(),
    )
    .await
    .map_err(|e| {
        // What the tarball or the name got wrong is the client's; the rest is the store's.
        if e.chain()
            .any(|c| c.is::<crate::images::import::ImportError>())
        {
            ApiError::bad_request(crate::errors::text(&e))
        } else {
            ApiError::from(e)
        }
    })?;
    let mut line = json!({ "status": made.id }).to_string();
    line.push_str("\r\n");
    Ok(json_answer(http::full(line)))
}

/// Aborts a task when dropped (unless it finished).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn send_line(tx: &tokio::sync::mpsc::UnboundedSender<hyper::body::Bytes>, v: Value) {
    let _ = tx.send(format!("{v}\r\n").into());
}

/// The pull's last lines: its digest and status, or its error.
fn send_outcome(
    tx: &tokio::sync::mpsc::UnboundedSender<hyper::body::Bytes>,
    typed: &str,
    pulled: anyhow::Result<pull::Pulled>,
) {
    match pulled {
        Ok(pulled) => {
            let status = if pulled.updated {
                "Downloaded newer image for"
            } else {
                "Image is up to date for"
            };
            let familiar = Reference::parse(typed)
                .map(|r| r.familiar())
                .unwrap_or_default();
            send_line(
                tx,
                json!({ "status": format!("Digest: {}", pulled.digest) }),
            );
            send_line(
                tx,
                json!({ "status": format!("Status: {status} {familiar}") }),
            );
        }
        Err(e) => {
            let m = format!("{e:#}");
            send_line(tx, json!({ "errorDetail": { "message": m }, "error": m }));
        }
    }
}

/// A 200 answer of JSON lines.
fn json_answer(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    r
}

/// `POST /images/{name}/tag?repo=&tag=`: 201.
async fn tag(ctx: &Ctx, call: &Call, source: &str) -> Result<Response<Body>, ApiError> {
    let repo = call
        .query
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("give repo (the new name)"))?;
    let target = pull_reference(repo, call.query.get("tag"));
    let target = Reference::parse(&target)
        .map_err(|e| ApiError::bad_request(format!("invalid reference format {target:?}: {e}")))?;
    crate::images::tag::tag(&store(ctx), source, &target)
        .await
        .map_err(|e| match super::error::status_of(&e) {
            404 => ApiError::no_such_image(source),
            _ => e.into(),
        })?;
    Ok(http::empty(201))
}

/// `DELETE /images/{name}?force`: `[{"Untagged": ...}, {"Deleted": ...}]`.
async fn delete(ctx: &Ctx, call: &Call, name: &str) -> Result<Response<Body>, ApiError> {
    let force = call.query.flag("force", false)?;
    let store = store(ctx);
    if catalog::find(&store, name, &Platform::host())
        .await
        .is_err()
    {
        return Err(ApiError::no_such_image(name));
    }
    let cache = userdb::cache_dir(&ctx.ep.data_root);
    let removed = remove::remove(&store, &cache, name, force)
        .await
        .map_err(|e| {
            let text = format!("{e:#}");
            // The library's refusals, in Docker's words, start so.
            if text.starts_with("conflict:") {
                ApiError::conflict(text)
            } else {
                e.into()
            }
        })?;
    let mut out: Vec<Value> = removed
        .untagged
        .iter()
        .map(|n| json!({ "Untagged": n }))
        .collect();
    out.extend(removed.deleted.iter().map(|d| json!({ "Deleted": d })));
    Ok(http::json(200, &Value::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_join_as_dockers() {
        assert_eq!(pull_reference("busybox", Some("1.36")), "busybox:1.36");
        assert_eq!(pull_reference("busybox", None), "busybox");
        assert_eq!(
            pull_reference("busybox", Some("sha256:abc")),
            "busybox@sha256:abc"
        );
        assert_eq!(
            name("/127.0.0.1:5000/a/b:1/json", "/json"),
            "127.0.0.1:5000/a/b:1"
        );
    }
}
