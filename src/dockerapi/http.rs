//! HTTP plumbing of the API: the response body type (whole or streamed), JSON responses, the
//! request's query string and body, and Docker's `filters` parameter.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::error::ApiError;

/// A response body: whole, or streamed from a channel.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A whole body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed_unsync()
}

/// An empty response with `status`.
pub fn empty(status: u16) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r
}

/// A JSON response.
pub fn json(status: u16, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    r
}

/// Docker's error response.
pub fn error(e: &ApiError) -> Response<Body> {
    json(e.status, &e.body())
}

/// A streamed body fed through the returned sender; `task` (the producer) is aborted when the
/// client goes away and the body is dropped.
pub fn channel(
    task: Option<tokio::task::JoinHandle<()>>,
) -> (mpsc::UnboundedSender<Bytes>, ChanBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        tx,
        ChanBody {
            rx: Rx::Unbounded(rx),
            task,
        },
    )
}

/// [`channel`] holding at most `cap` chunks: a producer that writes faster than the client
/// reads waits (a blocking thread with `blocking_send`), so a large tar is never held whole.
pub fn bounded_channel(cap: usize) -> (mpsc::Sender<Bytes>, ChanBody) {
    let (tx, rx) = mpsc::channel(cap);
    (
        tx,
        ChanBody {
            rx: Rx::Bounded(rx),
            task: None,
        },
    )
}

/// A channel body with its producer, as a response body.
pub fn with_task(mut body: ChanBody, task: tokio::task::JoinHandle<()>) -> Body {
    body.task = Some(task);
    body.boxed_unsync()
}

enum Rx {
    Unbounded(mpsc::UnboundedReceiver<Bytes>),
    Bounded(mpsc::Receiver<Bytes>),
}

/// A body read from a channel, aborting its producer when dropped.
pub struct ChanBody {
    rx: Rx,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match &mut self.rx {
            Rx::Unbounded(rx) => rx.poll_recv(cx),
            Rx::Bounded(rx) => rx.poll_recv(cx),
        };
        next.map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

impl Drop for ChanBody {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// A request's query parameters (the last of a repeated name wins, [`Query::all`] has every
/// one; `+` is a space).
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>, Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        let mut pairs = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
            pairs.push((decode(k), decode(v)));
        }
        Query(m, pairs)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Every value of a repeated parameter (`changes=A&changes=B`), in order.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Docker's booleans: 1/true/True are true, absent is `default`.
    pub fn flag(&self, k: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(k) {
            None => Ok(default),
            Some("1" | "true" | "True" | "TRUE") => Ok(true),
            Some("" | "0" | "false" | "False" | "FALSE") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value {v:?} for query parameter {k}: give true or false"
            ))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value {v:?} for query parameter {k}: give a number"
                    ))
                })
            })
            .transpose()
    }

    /// Docker's `filters` JSON (`{"name": {"web": true}}` or `{"name": ["web"]}`) as the CLI's
    /// `KEY=VALUE` filter strings.
    pub fn filters(&self) -> Result<Vec<String>, ApiError> {
        let Some(raw) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters {raw:?}: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            ApiError::bad_request(format!("invalid filters {raw:?}: give an object"))
        })?;
        let mut out = Vec::new();
        for (key, vals) in obj {
            let values: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(k, _)| k.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(ApiError::bad_request(format!("invalid filter {key}"))),
            };
            out.extend(values.into_iter().map(|v| format!("{key}={v}")));
        }
        Ok(out)
    }

    /// [`Self::filters`], each parsed as the library's filter type `T`; one that does not
    /// parse answers 400 with the library's message.
    pub fn parsed_filters<T>(&self) -> Result<Vec<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.filters()?
            .iter()
            .map(|f| {
                f.parse::<T>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))
            })
            .collect()
    }
}

/// Percent-decoding of a query component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_filters_read_as_docker_sends_them() {
        let q = Query::parse(Some(
            "all=1&name=a%2Fb+c&filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D&bad=%zz&end=%4",
        ));
        assert!(q.flag("all", false).unwrap());
        assert!(!q.flag("size", false).unwrap());
        assert_eq!(q.get("name"), Some("a/b c"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        assert_eq!(q.filters().unwrap(), vec!["name=web"]);
        let q = Query::parse(Some("filters={\"label\":[\"a=b\"]}&t=x"));
        assert_eq!(q.filters().unwrap(), vec!["label=a=b"]);
        assert!(q.int("t").is_err());
        assert!(Query::parse(Some("filters=[1]")).filters().is_err());
        let q = Query::parse(Some("names=a&names=b%3A1"));
        assert_eq!(q.all("names"), vec!["a", "b:1"]);
    }
}
