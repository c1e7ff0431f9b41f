//! `POST /commit` (a container's changes as an image: the library's `commit`, as `burrow
//! commit`) and `POST /containers/{id}/update` (restart policy and limits: the library's
//! `ops::update`, as `burrow update`).

use hyper::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::create_body::RestartBody;
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::lookup::find;
use crate::containers::commit::{commit as ccommit, Options};
use crate::containers::spec::Limits;
use crate::containers::values::RestartPolicy;
use crate::containers::{ops, record, start as cstart, Ctx};
use crate::dockerfile::parse_changes;

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`: 201 `{"Id"}`.
/// A container config in the body is the new image's (the `changes` applied to it, the
/// container's config filling what it leaves empty, as Docker); none: the container's.
pub async fn commit(ctx: &Ctx, call: &Call) -> Result<Response<Body>, ApiError> {
    let q = &call.query;
    let body: Option<Map<String, Value>> = if call.body.is_empty() {
        None
    } else {
        serde_json::from_slice(&call.body)?
    };
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("give the container in the container parameter"))?;
    find(ctx, container).await?;
    let name = image_name(q);
    let changes = changes(q);
    let opts = Options {
        message: q
            .get("comment")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        author: q
            .get("author")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        pause: q.flag("pause", true)?,
        changes: parse_changes(&changes).map_err(|e| ApiError::bad_request(e.to_string()))?,
        config: body.map(Value::Object),
    };
    let made = ccommit(ctx, container, name.as_deref(), &opts)
        .await
        .map_err(|e| {
            let text = format!("{e:#}");
            if text.starts_with("invalid reference format") {
                ApiError::bad_request(text)
            } else {
                ApiError::from(e)
            }
        })?;
    Ok(http::json(201, &json!({ "Id": made.image.id })))
}

/// Whether a JSON value is Go's zero value (what clients send for fields they do not set).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

/// Docker's UpdateConfig: the resources burrow can change, the restart policy.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    nano_cpus: i64,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartBody>,
    #[serde(flatten)]
    tuning: super::create_body::TuningBody,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// `POST /containers/{id}/update`: Memory, NanoCpus, PidsLimit, the CPU shares, period, quota
/// and sets, MemoryReservation, MemorySwap, BlkioWeight, RestartPolicy; any other resource set
/// answers 501 naming it. `{"Warnings": []}`.
pub async fn update(ctx: &Ctx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let body: UpdateBody = call.json()?;
    let c = find(ctx, id).await?;
    if let Some(field) = body.rest.iter().find(|(_, v)| !is_empty(v)).map(|(k, _)| k) {
        return Err(ApiError::not_implemented(format!(
            "burrow does not implement {field} on POST /containers/{{id}}/update (it changes Memory, NanoCpus, PidsLimit, CpuShares, CpuPeriod, CpuQuota, CpusetCpus, CpusetMems, MemoryReservation, MemorySwap, MemorySwappiness, OomKillDisable, BlkioWeight and RestartPolicy)"
        )));
    }
    let restart = match body.restart_policy.filter(|p| !p.name.is_empty()) {
        None => None,
        Some(p) => {
            let text = match (p.name.as_str(), p.maximum_retry_count) {
                ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
                (name, _) => name.to_string(),
            };
            Some(text.parse::<RestartPolicy>().map_err(|e| {
                ApiError::bad_request(format!("invalid RestartPolicy {text:?}: {e}"))
            })?)
        }
    };
    let limits = Limits {
        memory_bytes: (body.memory > 0).then_some(body.memory),
        cpus: (body.nano_cpus > 0).then(|| body.nano_cpus as f64 / 1e9),
        pids: body.pids_limit.filter(|&p| p != 0),
        tuning: body.tuning.tuning()?,
    };
    let u = ops::Update { restart, limits };
    let warnings = ops::update(ctx, &c, &u).await.map_err(|e| {
        let text = format!("{e:#}");
        if text.starts_with("cannot update the limits") {
            ApiError::conflict(text)
        } else if e
            .downcast_ref::<crate::containers::limits::LimitsError>()
            .is_some()
        {
            ApiError::bad_request(text)
        } else {
            ApiError::from(e)
        }
    })?;
    // A running container with a policy now needs its monitor, as `burrow update` starts.
    if u.restart.is_some_and(|p| p != RestartPolicy::No)
        && record::state(ctx, &c.id).await?.is_running()
    {
        cstart::spawn_exit_monitor(ctx, &c.id).await?;
    }
    Ok(http::json(200, &json!({ "Warnings": warnings })))
}

/// The `repo` and `tag` parameters as one image name (none without a repo): commit's and
/// import's.
pub(super) fn image_name(q: &Query) -> Option<String> {
    match (q.get("repo").unwrap_or(""), q.get("tag").unwrap_or("")) {
        ("", _) => None,
        (repo, "") => Some(repo.to_string()),
        (repo, tag) => Some(format!("{repo}:{tag}")),
    }
}

/// The `changes` parameters (Dockerfile instructions, repeated): commit's and import's.
pub(super) fn changes(q: &Query) -> Vec<String> {
    q.all("changes")
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}
