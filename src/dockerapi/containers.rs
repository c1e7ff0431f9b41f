//! The container endpoints: create, list, inspect, start, stop, restart, kill, wait, remove,
//! rename, pause and unpause, each through the library's container operations.

use std::sync::Mutex;

use containerd_client::services::v1::Container;
use hyper::Response;
use serde_json::{json, Value};

use super::call::Call;
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::lookup::find;
use super::SharedCtx;
use super::{attach, create_body};
use crate::containers::create::{self, CreateError, CreateOptions, Note};
use crate::containers::held::{self, Held};
use crate::containers::listing::{self, ListFilter, ListOptions, Summary};
use crate::containers::record::{self, State};
use crate::containers::values::Signal;
use crate::containers::{
    exits, inspect as cinspect, labels, ops, parked, start as cstart, status, Ctx,
};
use crate::images::runnable::ImageError;

/// A container with this exact name, if any.
async fn named(ctx: &Ctx, name: &str) -> Result<Option<Container>, ApiError> {
    let all = ctx.client.list(vec![]).await.map_err(anyhow::Error::from)?;
    Ok(all
        .into_iter()
        .find(|c| c.labels.get(labels::NAME).map(String::as_str) == Some(name)))
}

/// What `create` noted, as Docker's Warnings.
fn warning(n: &Note) -> Option<String> {
    match n {
        Note::PortsDiscarded { network } => Some(format!(
            "published ports are discarded when using --network {network}"
        )),
        Note::ForeignPlatform(w) | Note::LimitDiscarded(w) => Some(w.clone()),
        _ => None,
    }
}

/// `POST /containers/create?name=`: 201 `{"Id", "Warnings"}`. An auto-removed container
/// (`docker run --rm`, whose start follows at once) gets its networks attached ahead, parked
/// for that start (see [`crate::containers::parked`]).
pub async fn create(ctx: &SharedCtx, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: create_body::Body = call.json()?;
    let image = body.image.clone();
    let mut req = create_body::request(body, call.query.get("name"))?;
    // `platform` (API 1.41): the image must be of it; when it is not here for it, 404 (the
    // client then pulls it for that platform, as with Docker).
    if let Some(p) = call.query.get("platform").filter(|p| !p.is_empty()) {
        let platform = crate::images::manifest::Platform::parse(p)
            .map_err(|e| ApiError::bad_request(format!("invalid platform {p:?}: {e}")))?;
        req.platform = Some(platform);
    }
    if let Some(name) = &req.name {
        if let Some(c) = named(ctx, name).await? {
            return Err(ApiError::name_conflict(name, &c.id));
        }
    }
    let warnings = Mutex::new(Vec::new());
    let note = |n: Note| {
        if let Some(w) = warning(&n) {
            warnings.lock().unwrap_or_else(|p| p.into_inner()).push(w);
        }
    };
    let ahead = req.host_config.auto_remove;
    let mut created = create::create(ctx, &req, CreateOptions::attach_ahead(ahead), &note)
        .await
        .map_err(|e| create_error(e, &image))?;
    if let Some(net) = created.net.take() {
        parked::park(ctx.clone(), &created.id, net).await;
    }
    Ok(http::json(
        201,
        &json!({ "Id": created.id, "Warnings": warnings.into_inner().unwrap_or_else(|p| p.into_inner()) }),
    ))
}

fn create_error(e: CreateError, image: &str) -> ApiError {
    match e {
        CreateError::Image(ImageError::NotFound(_)) => ApiError::no_such_image(image),
        CreateError::Image(e @ ImageError::PlatformMismatch { .. }) => {
            ApiError::not_found(e.to_string())
        }
        CreateError::Request(e) => ApiError::bad_request(e.to_string()),
        CreateError::Spec(e) => ApiError::bad_request(e.to_string()),
        CreateError::Mount(e) => ApiError::bad_request(e.to_string()),
        CreateError::Device(e) => ApiError::bad_request(e.to_string()),
        CreateError::Endpoint(e) => ApiError::bad_request(e.to_string()),
        CreateError::Image(e) => ApiError::from(anyhow::Error::from(e)),
        CreateError::Volume(e) => ApiError::from(anyhow::Error::from(e)),
        CreateError::Other(e) => ApiError::from(e),
    }
}

/// One container as Docker's list shows it.
pub fn summary(s: &Summary) -> Value {
    let c = &s.container;
    let labels: serde_json::Map<String, Value> = record::user_labels_of(c)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let ports: Vec<Value> = s
        .shown_ports()
        .iter()
        .map(|p| match &p.binding {
            Some(b) => json!({
                "IP": if b.host_ip.is_empty() { "0.0.0.0" } else { b.host_ip.as_str() },
                "PrivatePort": b.container_port,
                "PublicPort": b.host_port,
                "Type": b.protocol,
            }),
            None => json!({"PrivatePort": p.container_port, "Type": p.protocol}),
        })
        .collect();
    let mut text = status::status_text(&s.state, s.started);
    if let (State::Running { .. }, Some(h)) = (&s.state, s.health) {
        text = format!("{text} {}", h.ps_suffix());
    }
    let created = s
        .created
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let network = record::networks_of(c)
        .into_iter()
        .next()
        .unwrap_or_else(|| "none".into());
    let mut v = json!({
        "Id": c.id,
        "Names": [format!("/{}", s.name)],
        "Image": c.image,
        "ImageID": c.labels.get(labels::IMAGE_ID).cloned().unwrap_or_default(),
        "Command": s.command,
        "Created": created,
        "Ports": ports,
        "Labels": labels,
        "State": s.state.word(),
        "Status": text,
        "HostConfig": { "NetworkMode": network },
        "NetworkSettings": { "Networks": {} },
        "Mounts": [],
    });
    if let Some((own, total)) = s.size {
        v["SizeRw"] = own.into();
        v["SizeRootFs"] = total.into();
    }
    v
}

/// A container as the list shows it: its summary with its networks and mounts (the docker
/// CLI counts LOCAL VOLUMES from these); the list's and `system df`'s.
pub fn listed(ctx: &Ctx, s: &listing::Summary) -> Value {
    let mut v = summary(s);
    let (networks, mounts) = cinspect::list_extras(ctx, &s.container);
    v["NetworkSettings"]["Networks"] = networks;
    v["Mounts"] = mounts;
    v
}

/// `GET /containers/json?all&limit&size&filters`.
pub async fn list(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let filters = q.parsed_filters::<ListFilter>()?;
    let opts = ListOptions {
        all: q.flag("all", false)?,
        size: q.flag("size", false)?,
        last: q
            .int("limit")?
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0),
        filters,
    };
    let rows: Vec<Value> = listing::list(ctx, &opts)
        .await?
        .iter()
        .map(|s| listed(ctx, s))
        .collect();
    Ok(http::json(200, &Value::Array(rows)))
}

/// `GET /containers/{id}/json`.
pub async fn inspect(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    find(ctx, id).await?;
    let mut v = cinspect::inspect_sized(ctx, id, q.flag("size", false)?).await?;
    // Docker's daemon names containers with a leading slash (Compose strips it).
    if let Some(name) = v["Name"].as_str().filter(|n| !n.starts_with('/')) {
        v["Name"] = format!("/{name}").into();
    }
    Ok(http::json(200, &v))
}

/// Starts `c` as the CLI's `start` would: with a TTY, open stdin, AutoRemove or an attach
/// waiting, its stdio held by a background reader (attach clients join it; it removes an
/// auto-removed container when it exits); otherwise its output to the log driver. Its exit
/// is published for `wait`.
async fn start_container(ctx: &Ctx, c: &Container) -> anyhow::Result<()> {
    let on = |k: &str| c.labels.get(k).is_some_and(|v| v == "true");
    let waiting = attach::take_waiting(&c.id);
    let tty = record::process_of(c).terminal;
    let held = Held {
        stdin: on(labels::STDIN_OPEN),
        tty,
        rm: record::auto_removed(c),
        // Docker closes stdin at the end of the attached input only without a TTY.
        stdin_once: on(labels::STDIN_ONCE) && !tty && waiting.iter().any(|w| w.stdin),
    };
    if waiting.is_empty() && !held.stdin && !held.tty && !held.rm {
        let log_uri = c.labels.get(labels::LOG_URI).cloned();
        cstart::start_existing(ctx, c, log_uri).await?;
    } else {
        let rootfs = cstart::prepare_existing(ctx, c).await?;
        let ahead = parked::take(ctx, &c.id).await;
        let started = held::start_held(ctx, &c.id, held, rootfs, attach::let_in(waiting)).await;
        if let Some(net) = ahead {
            // The task holds the namespace (or failed, and its teardown ran): let go.
            let helper = net.settle(ctx, &c.id).await;
            tokio::task::spawn_blocking(move || helper.release(true));
        }
        started?;
    }
    exits::watch_task(ctx.client.clone(), &c.id);
    cstart::watch_exit(ctx, c).await
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already.
pub async fn start(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    if record::state(ctx, &c.id).await?.is_running() {
        return Ok(http::empty(304));
    }
    if let Err(e) = start_container(ctx, &c).await {
        // As Docker's daemon: an auto-removed container that cannot start goes (`docker run
        // --rm` waits for its removal, and has Docker's exit code for the failure).
        if record::auto_removed(&c) {
            exits::publish(&c.id, crate::containers::lifecycle::failed_start_code(&e));
            if let Err(err) = ops::remove_after_run(ctx, &c.id, async {}).await {
                tracing::warn!(%err, "removing an auto-removed container that did not start");
            }
        }
        return Err(e.into());
    }
    Ok(http::empty(204))
}

fn timeout(q: &Query) -> Result<Option<u64>, ApiError> {
    Ok(q.int("t")?.and_then(|t| u64::try_from(t).ok()))
}

/// The `signal` of stop and restart (API 1.42): instead of the container's stop signal.
fn stop_signal(q: &Query) -> Result<Option<Signal>, ApiError> {
    q.get("signal")
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|e| ApiError::bad_request(format!("invalid signal {s:?}: {e}")))
        })
        .transpose()
}

/// `POST /containers/{id}/stop?t=&signal=`: 204, or 304 when it is not running.
pub async fn stop(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let signal = stop_signal(q)?;
    if !record::state(ctx, &c.id).await?.is_running() {
        return Ok(http::empty(304));
    }
    ops::stop_with(ctx, &c, signal, timeout(q)?).await?;
    Ok(http::empty(204))
}

/// `POST /containers/{id}/restart?t=&signal=`.
pub async fn restart(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let signal = stop_signal(q)?;
    if record::state(ctx, &c.id).await?.is_running() {
        ops::stop_with(ctx, &c, signal, timeout(q)?).await?;
    }
    let c = find(ctx, &c.id).await?;
    start_container(ctx, &c).await?;
    crate::containers::notify::container(ctx, "restart", &c.id, None).await;
    Ok(http::empty(204))
}

/// `POST /containers/{id}/kill?signal=`.
pub async fn kill(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let sig = q.get("signal").filter(|s| !s.is_empty()).unwrap_or("KILL");
    let sig: Signal = sig
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid signal {sig:?}: {e}")))?;
    if !record::state(ctx, &c.id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "Cannot kill container: {id}: Container {} is not running",
            c.id
        )));
    }
    ops::kill(ctx, &c, sig).await?;
    Ok(http::empty(204))
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

/// The exit code once `c` meets `cond`.
async fn wait_for(ctx: &Ctx, c: &Container, cond: Condition) -> anyhow::Result<u32> {
    // Subscribed before looking: an exit between the look and the wait is not missed (the
    // service's own starts publish on the board; containerd's events tell the others).
    let next = exits::subscribe(&c.id);
    let exit = exits::next_task_exit(&ctx.client, &ctx.ep.namespace, &c.id).await;
    let code = match (record::state(ctx, &c.id).await?, cond) {
        (State::Exited { code, .. }, Condition::NotRunning | Condition::Removed) => code,
        (State::Created, Condition::NotRunning) => 0,
        (s, _) if s.is_running() => ops::wait(ctx, c).await?,
        _ => next_exit(ctx, c, next, exit).await?,
    };
    if cond == Condition::Removed {
        if record::auto_removed(c) {
            // As Docker's daemon, at the exit: the background reader's follow-up would do it
            // too, a process start and a connection later (whichever comes second finds it gone).
            if let Err(err) = ops::auto_remove(ctx, &c.id).await {
                tracing::warn!(%err, "removing an auto-removed container after its exit");
            }
        }
        exits::removed(&ctx.client, &ctx.ep.namespace, &c.id).await;
    }
    Ok(code)
}

/// The status of `c`'s next exit: as the service's start publishes it, as containerd's event
/// says, or by waiting on a task started by someone else that is seen running.
async fn next_exit(
    ctx: &Ctx,
    c: &Container,
    mut next: tokio::sync::watch::Receiver<Option<u32>>,
    mut exit: tokio::sync::oneshot::Receiver<u32>,
) -> anyhow::Result<u32> {
    let (mut board_open, mut events_open) = (true, true);
    loop {
        tokio::select! {
            changed = next.changed(), if board_open => match changed {
                Ok(()) => {
                    if let Some(code) = *next.borrow() {
                        return Ok(code);
                    }
                }
                Err(_) => board_open = false,
            },
            code = &mut exit, if events_open => match code {
                Ok(code) => return Ok(code),
                Err(_) => events_open = false,
            },
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if record::state(ctx, &c.id).await?.is_running() {
                    return ops::wait(ctx, c).await;
                }
                if ctx.client.get(&c.id).await.is_err() {
                    // Gone: its exit came before the subscription, or is in the channel.
                    if let Ok(code) = exit.try_recv() {
                        return Ok(code);
                    }
                    anyhow::bail!(
                        "container {} was removed before burrow saw it exit, so its exit code is lost (start it without AutoRemove, or wait for it before it ends)",
                        c.id
                    );
                }
            }
        }
    }
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: the headers at once
/// (clients start the container only then), `{"StatusCode": N}` when the condition is met.
pub async fn wait(ctx: SharedCtx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(&ctx, id).await?;
    let cond = match q.get("condition").unwrap_or("") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition {other:?}: give not-running, next-exit or removed"
            )))
        }
    };
    let (tx, body) = http::channel(None);
    let task = tokio::spawn(async move {
        let doc = match wait_for(&ctx, &c, cond).await {
            Ok(code) => json!({ "StatusCode": code, "Error": null }),
            Err(e) => json!({ "StatusCode": -1, "Error": { "Message": format!("{e:#}") } }),
        };
        let _ = tx.send(doc.to_string().into());
    });
    let mut r = Response::new(http::with_task(body, task));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}

/// `DELETE /containers/{id}?force&v`.
pub async fn remove(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let force = q.flag("force", false)?;
    if !force && record::state(ctx, &c.id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
            c.id
        )));
    }
    ops::remove(ctx, &c, force, q.flag("v", false)?).await?;
    Ok(http::empty(204))
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("rename: give the new name in the name parameter"))?;
    let name = name.trim_start_matches('/');
    if let Some(other) = named(ctx, name).await? {
        return Err(ApiError::name_conflict(name, &other.id));
    }
    ops::rename(ctx, &c, name).await?;
    Ok(http::empty(204))
}

/// `POST /containers/{id}/pause` (`resume`: unpause).
pub async fn pause(ctx: &Ctx, id: &str, resume: bool) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    if !record::state(ctx, &c.id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    ops::pause(ctx, &c, resume).await?;
    Ok(http::empty(204))
}
