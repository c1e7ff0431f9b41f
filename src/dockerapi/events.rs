//! `GET /events`: the library's event stream (containerd's events as Docker's, as `burrow
//! events`) sent as JSON lines, filtered, ending at `until`; the events the service has seen
//! since it started are kept ([`History`]) and replayed for a `since` or `until` in the past.

use std::time::SystemTime;

use hyper::Response;

use super::error::ApiError;
use super::http::{self, Body, Query};
use super::SharedCtx;
use crate::containers::event_history::History;
use crate::containers::events::{self, EventFilter, EventQuery};
use crate::containers::logquery::parse_time;

/// A since/until parameter (empty: none).
fn time(q: &Query, key: &str, now: SystemTime) -> Result<Option<SystemTime>, ApiError> {
    q.get(key)
        .filter(|v| !v.is_empty())
        .map(|v| parse_time(key, v, now).map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()
}

/// The events this service has seen (set when it starts serving).
static HISTORY: std::sync::OnceLock<History> = std::sync::OnceLock::new();

/// Starts keeping the events of `ctx`'s namespace for the life of the service.
pub fn start_recording(ctx: &SharedCtx) {
    // One recorder per process (a second service in it shares the first's history).
    let mut fresh = false;
    let history = HISTORY
        .get_or_init(|| {
            fresh = true;
            History::default()
        })
        .clone();
    if fresh {
        let (client, namespace) = (ctx.client.clone(), ctx.ep.namespace.clone());
        tokio::spawn(async move { history.record(client, namespace).await });
    }
}

/// `GET /events?since=&until=&filters=` (type container, image, network or volume, event,
/// container, image, label, ...): Docker's event messages, one JSON document per line; with
/// `since` or `until`, first those the service kept (its last 1024, since it started) from
/// `since` up to `until`; the stream ends at `until`, else when the client leaves.
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
        let emit = |e: &events::Event| {
            let _ = tx.send(format!("{}\n", e.to_json()).into());
        };
        if let Some(history) = HISTORY.get() {
            history.replay(&query, emit).await;
            return;
        }
        let sent = events::stream(&ctx.client, &ctx.ep.namespace, &query, emit).await;
        if let Err(e) = sent {
            tracing::debug!(error = %format!("{e:#}"), "events");
        }
    });
    let mut r = Response::new(http::with_task(body, task));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}
