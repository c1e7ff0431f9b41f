//! `/containers/{id}/top` and `/containers/{id}/stats`: the processes (the library's `top`, as
//! `burrow top`) and resource usage (the library's `stats` counters, as `burrow stats`) of a
//! container, the usage in Docker's stats JSON, one-shot or streamed every second.

use std::time::{Duration, SystemTime};

use hyper::Response;
use serde_json::{json, Value};

use super::error::ApiError;
use super::http::{self, Body, Query};
use super::lookup::find;
use super::SharedCtx;
use crate::containers::stats::{self, Sample, Target};
use crate::containers::{top, Ctx};
use crate::images::time::rfc3339_nano;

/// `GET /containers/{id}/top?ps_args=`: `{"Titles", "Processes"}`; 409 when it is not running.
pub async fn top(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    if !crate::containers::record::state(ctx, &c.id)
        .await?
        .is_running()
    {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let args: Vec<String> = q
        .get("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let t = top::top(ctx, &c, &args).await.map_err(|e| {
        if e.downcast_ref::<top::TopError>().is_some() {
            ApiError::bad_request(format!("{e:#}"))
        } else {
            ApiError::from(e)
        }
    })?;
    Ok(http::json(200, &serde_json::to_value(&t)?))
}

/// One reading: the container's counters and the host's CPU time, at a time.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: SystemTime,
    sample: Sample,
    system_ns: u64,
}

impl Reading {
    fn take(t: &Target) -> Reading {
        Reading {
            at: SystemTime::now(),
            sample: t.sample_now(),
            system_ns: stats::host_cpu_ns(),
        }
    }
}

fn cpu_stats(r: Option<&Reading>, cpus: u32) -> Value {
    let (total, system) = r.map_or((0, 0), |r| (r.sample.cpu_ns, r.system_ns));
    json!({
        "cpu_usage": {
            "total_usage": total,
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        "system_cpu_usage": system,
        "online_cpus": if r.is_some() { cpus } else { 0 },
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

/// Docker's stats document for `now` (and the reading before, the base of CPU percentages).
fn document(t: &Target, pre: Option<&Reading>, now: &Reading) -> Value {
    let s = &now.sample;
    let zero = crate::images::time::ZERO.to_string();
    let blkio = |op: &str, v: u64| json!({ "major": 0, "minor": 0, "op": op, "value": v });
    let cpus = stats::online_cpus();
    let mut doc = json!({
        "read": if t.running() { rfc3339_nano(now.at) } else { zero.clone() },
        "preread": pre.map(|p| rfc3339_nano(p.at)).unwrap_or(zero),
        "id": t.id,
        "name": format!("/{}", t.name),
        "num_procs": 0,
        "pids_stats": { "current": s.pids },
        "cpu_stats": cpu_stats(Some(now), cpus),
        "precpu_stats": cpu_stats(pre, cpus),
        "memory_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": [blkio("read", s.read), blkio("write", s.write)],
        },
        "storage_stats": {},
    });
    if t.running() {
        // The library's usage already leaves the inactive page cache out (as Docker's
        // clients would), so there is nothing in `stats` for them to subtract.
        doc["memory_stats"] = json!({ "usage": s.mem, "limit": s.limit, "stats": {} });
        doc["networks"] = json!({
            "eth0": {
                "rx_bytes": s.rx, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                "tx_bytes": s.tx, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
            }
        });
    }
    doc
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: streamed every second (the default), or
/// one document: after a half-second (so that CPU percentages have a base) or, with
/// `one-shot`, at once without a base.
pub async fn stats(ctx: SharedCtx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(&ctx, id).await?;
    stats::check_cgroups(&ctx).map_err(|e| ApiError::conflict(e.to_string()))?;
    let stream = q.flag("stream", true)?;
    let one_shot = q.flag("one-shot", false)?;
    if one_shot && stream {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let target = stats::targets(&ctx, std::slice::from_ref(&c.id), true)
        .await?
        .pop()
        .ok_or_else(|| ApiError::no_such_container(id))?;
    let first = Reading::take(&target);
    let mut r = if !stream {
        let doc = if one_shot {
            document(&target, None, &first)
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            document(&target, Some(&first), &Reading::take(&target))
        };
        http::json(200, &doc)
    } else {
        let (tx, body) = http::channel(None);
        let task = tokio::spawn(async move {
            let mut pre = first;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = Reading::take(&target);
                let line = format!("{}\n", document(&target, Some(&pre), &now));
                if tx.send(line.into()).is_err() {
                    return;
                }
                pre = now;
            }
        });
        Response::new(http::with_task(body, task))
    };
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_dockers_fields() {
        let s = Sample {
            cpu_ns: 5,
            mem: 100,
            limit: 1000,
            rx: 7,
            tx: 8,
            read: 1,
            write: 2,
            pids: 3,
        };
        let r = Reading {
            at: SystemTime::now(),
            sample: s,
            system_ns: 50,
        };
        let t = Target::for_test("abc", "web", true);
        let d = document(&t, Some(&r), &r);
        assert_eq!(d["name"], "/web");
        assert_eq!(d["cpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(d["precpu_stats"]["system_cpu_usage"], 50);
        assert_eq!(d["memory_stats"]["usage"], 100);
        assert_eq!(d["networks"]["eth0"]["tx_bytes"], 8);
        assert_eq!(d["pids_stats"]["current"], 3);
        assert_eq!(
            d["blkio_stats"]["io_service_bytes_recursive"][1]["value"],
            2
        );
        let none = document(&t, None, &r);
        assert_eq!(none["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(none["precpu_stats"]["online_cpus"], 0);
    }
}
