//! `GET /containers/{id}/logs`: the log driver's records (the CLI's `logs` reader), in
//! Docker's 8-byte multiplexed framing when the container has no TTY, streamed with `follow`.

use std::time::SystemTime;

use hyper::body::Bytes;
use hyper::Response;

use super::error::ApiError;
use super::http::{self, Body, Query};
use super::lookup::find;
use super::SharedCtx;
use crate::containers::logdriver::Record;
use crate::containers::logquery::{self, LogQuery};
use crate::containers::record;

/// Which streams to send, and how.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub(super) stdout: bool,
    pub(super) stderr: bool,
    pub(super) timestamps: bool,
    /// Docker's multiplexed framing (no TTY).
    pub(super) framed: bool,
}

/// One record as the API sends it, or None when its stream was not asked for.
pub(super) fn frame(r: &Record, s: Shape) -> Option<Bytes> {
    let stream: u8 = if r.stream == "stderr" { 2 } else { 1 };
    if (stream == 1 && !s.stdout) || (stream == 2 && !s.stderr) {
        return None;
    }
    let mut payload = Vec::new();
    if s.timestamps {
        payload.extend_from_slice(r.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(r.log.as_bytes());
    if !s.framed {
        return Some(Bytes::from(payload));
    }
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    Some(Bytes::from(out))
}

/// A since/until parameter ("0" or empty: none).
fn bound(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !v.is_empty() && *v != "0")
}

/// `GET /containers/{id}/logs?stdout&stderr&follow&tail&timestamps&since&until`.
pub async fn logs(ctx: SharedCtx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(&ctx, id).await?;
    let tty = record::process_of(&c).terminal;
    let shape = Shape {
        stdout: q.flag("stdout", false)?,
        stderr: q.flag("stderr", false)?,
        timestamps: q.flag("timestamps", false)?,
        framed: !tty,
    };
    if !shape.stdout && !shape.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let follow = q.flag("follow", false)?;
    let tail = q.get("tail").filter(|t| !t.is_empty()).unwrap_or("all");
    let query = LogQuery::parse(
        bound(q.get("since")),
        bound(q.get("until")),
        tail,
        follow,
        SystemTime::now(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let body = if follow {
        let (tx, rx_body) = http::channel(None);
        let id = c.id.clone();
        let task = tokio::spawn(async move {
            let sent = logquery::read(&ctx, &id, &query, |r| {
                if let Some(b) = frame(r, shape) {
                    let _ = tx.send(b);
                }
            })
            .await;
            if let Err(e) = sent {
                tracing::debug!(%e, "following a log");
            }
        });
        // The reader ends with the container; a client that leaves ends it sooner.
        http::with_task(rx_body, task)
    } else {
        let mut out = Vec::new();
        logquery::read(&ctx, &c.id, &query, |r| {
            if let Some(b) = frame(r, shape) {
                out.extend_from_slice(&b);
            }
        })
        .await
        .map_err(ApiError::from)?;
        http::full(out)
    };
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("Content-Type", content_type.parse().expect("static"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_framed_as_dockers_stdcopy() {
        let r = Record {
            log: "hi\n".into(),
            stream: "stderr".into(),
            attrs: Default::default(),
            time: "2026-01-01T00:00:00Z".into(),
        };
        let s = Shape {
            stdout: true,
            stderr: true,
            timestamps: false,
            framed: true,
        };
        assert_eq!(&frame(&r, s).unwrap()[..], b"\x02\0\0\0\0\0\0\x03hi\n");
        let raw = Shape {
            framed: false,
            timestamps: true,
            ..s
        };
        assert_eq!(&frame(&r, raw).unwrap()[..], b"2026-01-01T00:00:00Z hi\n");
        assert!(frame(&r, Shape { stderr: false, ..s }).is_none());
    }
}
