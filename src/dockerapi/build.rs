//! `POST /build` through burrow's builder with the classic builder's protocol: the context tar
//! (spooled to disk by the upload path) in, Docker's JSON stream out ("Step k/n : ...", the
//! steps' output, " ---> Using cache", the aux image id, "Successfully built/tagged"); an error
//! before the first step as an HTTP error, after it as an error line. A client that goes away
//! cancels the build, which removes its step container and releases its lease on its own.
//! Also `POST /build/prune` and the 501 of BuildKit's `/session`.

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use super::build_options::{self, BuildRequest};
use super::error::ApiError;
use super::http::{self, Body, Query};
use super::SharedCtx;
use crate::build::cancel::CancelOnDrop;
use crate::build::progress::{Event, Sink};
use crate::build::{self as builder, BuildError, Built};
use crate::images::reference;

/// `POST /build` with its body spooled to `context` (kept until the build has read it).
pub async fn build(
    ctx: &SharedCtx,
    query: &Query,
    headers: &hyper::HeaderMap,
    context: tempfile::NamedTempFile,
) -> Result<Response<Body>, ApiError> {
    let BuildRequest { mut options, quiet } =
        build_options::read(query, context.path().to_path_buf())?;
    options.pull_auth = crate::build::PullAuth(super::auth::registry_config(headers)?);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    // Quiet: no sender stays, so the channel ends with the build and the answer is whole.
    if !quiet {
        options.events = Some(stream_sink(tx));
    } else {
        drop(tx);
    }
    let guard = CancelOnDrop::new(options.cancel.clone());
    let tags = options.tags.clone();
    let ctx = ctx.clone();
    // Not aborted with the response: a cancelled build still cleans up after itself.
    let task = tokio::spawn(async move {
        let _context = context;
        builder::build(&ctx, &options).await
    });
    let first = rx.recv().await;
    let Some(first) = first else {
        // The build ended before its first step: an answer of its own.
        let result = task.await;
        guard.disarm();
        return match result {
            Ok(Ok(built)) => Ok(whole(&final_lines(&built, &tags, quiet))),
            Ok(Err(e)) => Err(early_error(e)),
            Err(e) => Err(ApiError::new(500, format!("the build failed: {e}"))),
        };
    };
    let (out, body) = http::channel(None);
    let forward = tokio::spawn(async move {
        let _ = out.send(first);
        while let Some(line) = rx.recv().await {
            let _ = out.send(line);
        }
        let result = task.await;
        guard.disarm();
        let end = match result {
            Ok(Ok(built)) => final_lines(&built, &tags, quiet),
            Ok(Err(e)) => vec![error_line(&late_message(&e))],
            Err(e) => vec![error_line(&format!("the build failed: {e}"))],
        };
        for l in end {
            let _ = out.send(l);
        }
    });
    let mut r = Response::new(http::with_task(body, forward));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    Ok(r)
}

/// One JSON line of the stream.
fn line(v: Value) -> Bytes {
    format!("{v}\r\n").into()
}

fn stream(text: &str) -> Bytes {
    line(json!({ "stream": text }))
}

fn error_line(message: &str) -> Bytes {
    line(json!({ "errorDetail": { "message": message }, "error": message }))
}

/// The builder's events as the classic builder's stream lines.
fn stream_sink(tx: UnboundedSender<Bytes>) -> Sink {
    Sink(Arc::new(move |e: Event| {
        if let Some(text) = event_text(&e) {
            let _ = tx.send(stream(&text));
        }
    }))
}

/// The stream text of one event (None: the classic builder shows nothing for it).
fn event_text(e: &Event) -> Option<String> {
    match e {
        Event::Step {
            of: Some((_, k, total)),
            text,
            ..
        } => Some(format!("Step {k}/{total} : {text}\n")),
        Event::Output { data, .. } => Some(String::from_utf8_lossy(data).into_owned()),
        Event::Cached { .. } => Some(" ---> Using cache\n".into()),
        Event::Step { of: None, .. } | Event::Done { .. } | Event::Note { .. } => None,
    }
}

/// The end of a good build: warnings, the aux id, "Successfully built" and the tags (only the
/// id with `q`).
fn final_lines(built: &Built, tags: &[String], quiet: bool) -> Vec<Bytes> {
    let mut out = Vec::new();
    for a in &built.unused_args {
        out.push(stream(&format!(
            "[Warning] One or more build-args [{a}] were not consumed\n"
        )));
    }
    out.push(line(json!({ "aux": { "ID": built.id } })));
    if quiet {
        out.push(stream(&format!("{}\n", built.id)));
        return out;
    }
    let hex = built.id.strip_prefix("sha256:").unwrap_or(&built.id);
    out.push(stream(&format!(
        "Successfully built {}\n",
        &hex[..hex.len().min(12)]
    )));
    for t in tags {
        out.push(stream(&format!(
            "Successfully tagged {}\n",
            reference::familiar(t)
        )));
    }
    out
}

fn whole(lines: &[Bytes]) -> Response<Body> {
    let text: Vec<u8> = lines.iter().flat_map(|b| b.iter().copied()).collect();
    let mut r = Response::new(http::full(text));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    r
}

/// A build that failed before its first step: a bad Dockerfile or context archive is the
/// client's (400).
fn early_error(e: anyhow::Error) -> ApiError {
    let status = match e.downcast_ref::<BuildError>() {
        Some(BuildError::Parse(_) | BuildError::Context(_)) => 400,
        _ => super::error::status_of(&e),
    };
    ApiError::new(status, format!("{e:#}"))
}

/// The error line of a build that failed at a step (a RUN's output is in the stream already).
fn late_message(e: &anyhow::Error) -> String {
    match e.downcast_ref::<BuildError>() {
        Some(BuildError::Run {
            line,
            instruction,
            code,
            ..
        }) => format!(
            "Dockerfile line {line}: {instruction}: the command returned a non-zero code: {code}"
        ),
        _ => format!("{e:#}"),
    }
}

/// `POST /build/prune`: the build cache (burrow's cache records and RUN cache volumes);
/// `all` is accepted (there is one kind of cache), `keep-storage` and `filters` are refused.
pub async fn prune(ctx: &SharedCtx, q: &Query) -> Result<Response<Body>, ApiError> {
    q.flag("all", false)?;
    if q.int("keep-storage")?.is_some_and(|k| k != 0) {
        return Err(ApiError::bad_request(
            "keep-storage is not supported: builder prune removes the whole build cache",
        ));
    }
    if !q.filters()?.is_empty() {
        return Err(ApiError::bad_request(
            "filters are not supported: builder prune removes the whole build cache",
        ));
    }
    let gone = crate::build::cache::prune(ctx).await?;
    Ok(http::json(
        200,
        &json!({ "CachesDeleted": gone, "SpaceReclaimed": 0 }),
    ))
}

/// `/session` (BuildKit's session, HTTP/2 over a hijacked connection): not implemented.
pub fn session() -> ApiError {
    ApiError::not_implemented(
        "burrow does not implement BuildKit sessions (/session): it has no BuildKit; build with \
         the classic protocol (DOCKER_BUILDKIT=0 docker build), which burrow's builder answers",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_the_classic_builders_lines() {
        let step = Event::Step {
            n: 3,
            text: "RUN make".into(),
            of: Some(("stage-0".into(), 2, 4)),
        };
        assert_eq!(event_text(&step).unwrap(), "Step 2/4 : RUN make\n");
        assert_eq!(
            event_text(&Event::Cached { n: 3 }).unwrap(),
            " ---> Using cache\n"
        );
        assert!(event_text(&Event::Done { n: 3, secs: 1.0 }).is_none());
        let built = Built {
            id: format!("sha256:{}", "ab".repeat(32)),
            names: Vec::new(),
            unused_args: vec!["Z".into()],
            pushed: Vec::new(),
        };
        let lines = final_lines(&built, &["docker.io/library/demo:latest".into()], false);
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        assert!(text[0].contains("[Warning] One or more build-args [Z]"));
        assert!(text[1].contains("\"aux\":{\"ID\":\"sha256:abab"));
        assert!(text[2].contains("Successfully built abababababab\\n"));
        assert!(text[3].contains("Successfully tagged demo:latest"));
        let quiet = final_lines(&built, &[], true);
        assert!(String::from_utf8_lossy(&quiet[2]).contains("\"stream\":\"sha256:abab"));
    }
}
