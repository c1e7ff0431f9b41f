//! Dispatch: the API version a path asks for (`/v1.43/...` or none), then the endpoint by
//! method and path; anything else answers 501 naming the endpoint. Every response carries
//! Docker's `API-Version`, `OSType` and `Server` headers.

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response};

use super::call::{unimplemented, Call};
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::SharedCtx;
use super::{archive, attach, commit, events, exec, space, stats};
use super::{auth, build, containers, image_io, images, logs, networks, system, volumes};
use super::{API_VERSION, MIN_API_VERSION};

/// Answers one request.
pub async fn handle(ctx: SharedCtx, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let upgrade = parts.extensions.remove::<OnUpgrade>();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let wants_upgrade = header("connection").contains("upgrade") && !header("upgrade").is_empty();
    let mut resp = match split_version(parts.uri.path()) {
        Err(e) => http::error(&e),
        // Archives clients upload are spooled to disk (or dropped), not held in memory.
        Ok(path) if image_io::is_upload(&parts.method, path) => {
            tracing::debug!(method = %parts.method, path, "request (upload)");
            let query = Query::parse(parts.uri.query());
            image_io::upload(&ctx, path, &query, &parts.headers, body)
                .await
                .unwrap_or_else(|e| http::error(&e))
        }
        Ok(path) => {
            let body = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => Bytes::from(format!("{e}")),
            };
            let call = Call {
                method: parts.method.clone(),
                path: path.to_string(),
                query: Query::parse(parts.uri.query()),
                body,
                headers: parts.headers.clone(),
                wants_upgrade,
                upgrade: std::sync::Mutex::new(upgrade),
            };
            tracing::debug!(method = %call.method, path = %call.path, "request");
            match route(&ctx, &call).await {
                Ok(r) => r,
                Err(e) => http::error(&e),
            }
        }
    };
    let h = resp.headers_mut();
    h.insert("API-Version", API_VERSION.parse().expect("static"));
    h.insert("OSType", "linux".parse().expect("static"));
    h.insert("Docker-Experimental", "false".parse().expect("static"));
    let server = format!("Burrow/{} (linux)", env!("CARGO_PKG_VERSION"));
    if let Ok(v) = server.parse() {
        h.insert("Server", v);
    }
    Ok(resp)
}

/// A version as (major, minor).
fn version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The path without a `/v1.N` prefix, refusing versions burrow does not speak.
pub fn split_version(path: &str) -> Result<&str, ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (v, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some(asked) = version(v) else {
        return Ok(path);
    };
    let (min, max) = (version(MIN_API_VERSION), version(API_VERSION));
    if Some(asked) > max {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if Some(asked) < min {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok(if tail.is_empty() { "/" } else { tail })
}

async fn route(ctx: &SharedCtx, call: &Call) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = call.path.trim_matches('/').split('/').collect();
    let m = &call.method;
    match (m.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => Ok(system::ping(m)),
        ("GET", ["version"]) => system::version(ctx).map(|v| http::json(200, &v)),
        ("GET", ["info"]) => system::info(ctx).await.map(|v| http::json(200, &v)),
        ("GET", ["events"]) => events::events(ctx.clone(), &call.query).await,
        ("GET", ["system", "df"]) => space::df(ctx).await,
        ("POST", ["commit"]) => commit::commit(ctx, call).await,
        (_, ["containers", ..]) => route_containers(ctx, call, &segs[1..]).await,
        (_, ["exec", ..]) => exec::route(ctx, call, &segs[1..]).await,
        (_, ["images", ..]) => images::route(ctx, call, &call.path["/images".len()..]).await,
        ("GET", ["distribution", name @ .., "json"]) if !name.is_empty() => {
            images::distribution(call, &name.join("/")).await
        }
        (_, ["volumes", ..]) => volumes::route(ctx, call, &segs[1..]).await,
        (_, ["networks", ..]) => networks::route(ctx, call, &segs[1..]).await,
        // No plugins: an empty list, and a name is not found (`docker inspect NAME` asks for
        // a plugin after a container, image, volume and network, and needs the 404 to say
        // "No such object").
        ("GET", ["plugins"]) => Ok(http::json(200, &serde_json::json!([]))),
        ("GET", ["plugins", name @ .., "json"]) if !name.is_empty() => Err(ApiError::not_found(
            format!("plugin \"{}\" not found", name.join("/")),
        )),
        ("POST", ["auth"]) => auth::login(call).await,
        ("POST", ["build", "prune"]) => build::prune(ctx, &call.query).await,
        (_, ["session"]) => Err(build::session()),
        _ => Err(unimplemented(call)),
    }
}

async fn route_containers(
    ctx: &SharedCtx,
    call: &Call,
    segs: &[&str],
) -> Result<Response<Body>, ApiError> {
    let q = &call.query;
    match (call.method.as_str(), segs) {
        ("POST", ["create"]) => containers::create(ctx, call).await,
        ("GET", ["json"]) => containers::list(ctx, q).await,
        ("GET", [id, "json"]) => containers::inspect(ctx, id, q).await,
        ("POST", [id, "start"]) => containers::start(ctx, id).await,
        ("POST", [id, "stop"]) => containers::stop(ctx, id, q).await,
        ("POST", [id, "restart"]) => containers::restart(ctx, id, q).await,
        ("POST", [id, "kill"]) => containers::kill(ctx, id, q).await,
        ("POST", [id, "wait"]) => containers::wait(ctx.clone(), id, q).await,
        ("DELETE", [id]) => containers::remove(ctx, id, q).await,
        // `docker inspect NAME` asks for a container first: an image name with slashes is none.
        ("GET", [name @ .., "json"]) if name.len() > 1 => {
            Err(ApiError::no_such_container(&name.join("/")))
        }
        ("GET", [id, "logs"]) => logs::logs(ctx.clone(), id, q).await,
        ("POST", [id, "rename"]) => containers::rename(ctx, id, q).await,
        ("POST", [id, "pause"]) => containers::pause(ctx, id, false).await,
        ("POST", [id, "unpause"]) => containers::pause(ctx, id, true).await,
        ("POST", ["prune"]) => space::prune_containers(ctx, q).await,
        ("GET", [id, "top"]) => stats::top(ctx, id, q).await,
        ("GET", [id, "stats"]) => stats::stats(ctx.clone(), id, q).await,
        ("GET", [id, "archive"]) => archive::get(ctx, id, q, false).await,
        ("HEAD", [id, "archive"]) => archive::get(ctx, id, q, true).await,
        ("PUT", [id, "archive"]) => archive::put(ctx, id, call).await,
        ("GET", [id, "export"]) => archive::export(ctx, id).await,
        ("GET", [id, "changes"]) => archive::changes(ctx, id).await,
        ("POST", [id, "update"]) => commit::update(ctx, id, call).await,
        ("POST", [id, "attach"]) => attach::attach(ctx.clone(), id, call).await,
        ("POST", [id, "resize"]) => attach::resize(ctx, id, q).await,
        ("POST", [id, "exec"]) => exec::create(ctx, id, call).await,
        _ => Err(unimplemented(call)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_paths() {
        assert_eq!(
            split_version("/v1.43/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(split_version("/v1.24/_ping").unwrap(), "/_ping");
        assert_eq!(
            split_version("/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(split_version("/volumes").unwrap(), "/volumes");
        let e = split_version("/v1.51/version").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("too new"), "{e}");
        assert!(split_version("/v1.12/version")
            .unwrap_err()
            .message
            .contains("too old"));
    }
}
