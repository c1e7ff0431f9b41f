//! `GET /events`: the library's event stream (containerd's events as Docker's, as `burrow
//! events`) sent as JSON lines, filtered, ending at `until`.

use std::time::SystemTime;

use hyper::Response;

use super::error::ApiError;
use super::http::{self, Body, Query};
use super::SharedCtx;
use crate::containers::events::{self, EventFilter, EventQuery};
use crate::containers::logquery::parse_time;

/// A since/until parameter (empty: none).
fn time(q: &Query, key: &str, now: SystemTime) -> Result<Option<SystemTime>, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(|v| parse_time(key, v, now).map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()
}

/// `GET /events?since=&until=&filters=` (type container or image, event, container, image,
/// label): Docker's event messages, one JSON document per line; the stream ends at `until`,
/// else when the client leaves. containerd keeps no history: `since` only drops events
/// older than it, nothing from before the request is replayed.
pub async fn events(ctx: SharedCtx, q: &Query) -> Result<Response<Body>, ApiError> {
    let now = SystemTime::now();
    let filter =
        EventFilter::parse(&q.filters()?).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let query = EventQuery {
        filter,
        since: time(q, "since", now)?,
        until: time(q, "until", now)?,
    };
    let (tx, body) = http::channel(None);
    let task = tokio::spawn(async move {
        let sent = events::stream(&ctx.client, &ctx.ep.namespace, &query, |e| {
            let _ = tx.send(format!("{}\n", e.to_json()).into());
        })
        .await;
        if let Err(e) = sent {
            tracing::debug!(error = %format!("{e:#}"), "events");
        }
    });
    let mut r = Response::new(http::with_task(body, task));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}
