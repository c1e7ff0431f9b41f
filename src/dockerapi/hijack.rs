//! Docker's hijacked connections (attach, exec start): a request with `Connection: Upgrade` and
//! `Upgrade: tcp` is answered 101 UPGRADED and the connection then carries the process's
//! streams both ways (the client's write shutdown ends its input); without it the answer is
//! 200 with the output as the body (no input). Output is Docker's 8-byte multiplexed framing
//! without a TTY, the raw bytes with one.

use std::future::Future;

use hyper::body::Bytes;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::call::Call;
use super::http::{self, Body};

/// A hijacked connection's byte streams.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The client's side once the response is sent.
pub struct Hijacked {
    pub conn: Box<dyn Io>,
    /// The client can send input (an upgraded connection; a plain 200 body has none).
    pub input: bool,
}

/// The content type of a hijacked stream.
pub fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Docker's frame of `data` on `stream` (1 stdout, 2 stderr), or the bytes as they are with
/// a TTY.
pub fn frame(tty: bool, stream: u8, data: &[u8]) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Answers `call` by taking its connection over (101) or streaming a 200 body, and runs `serve`
/// on the client's side in a task of its own once the answer is out.
pub fn respond<F, Fut>(call: &Call, tty: bool, serve: F) -> Response<Body>
where
    F: FnOnce(Hijacked) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ct = content_type(tty);
    if let Some(on) = call.take_upgrade() {
        let mut r = http::empty(101);
        let h = r.headers_mut();
        h.insert("Connection", "Upgrade".parse().expect("static"));
        h.insert("Upgrade", "tcp".parse().expect("static"));
        h.insert("Content-Type", ct.parse().expect("static"));
        tokio::spawn(async move {
            match on.await {
                Ok(up) => {
                    let conn = Box::new(TokioIo::new(up));
                    serve(Hijacked { conn, input: true }).await;
                }
                Err(e) => tracing::debug!(%e, "the client did not take the upgrade"),
            }
        });
        return r;
    }
    // No upgrade: the output as the response body, through an in-memory pipe.
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (tx, body) = http::channel(None);
    let pump = tokio::spawn(async move {
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let _ = wr.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                break;
            }
        }
    });
    tokio::spawn(serve(Hijacked {
        conn: Box::new(ours),
        input: false,
    }));
    let mut r = Response::new(http::with_task(body, pump));
    r.headers_mut()
        .insert("Content-Type", ct.parse().expect("static"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_dockers_stdcopy_or_raw() {
        assert_eq!(frame(false, 1, b"hi"), b"\x01\0\0\0\0\0\0\x02hi");
        assert_eq!(frame(false, 2, b""), b"\x02\0\0\0\0\0\0\0");
        assert_eq!(frame(true, 2, b"hi"), b"hi");
    }
}
