//! `POST /containers/{id}/attach` and `/resize`. A container started through the API with a
//! TTY, open stdin, AutoRemove or an attach waiting has its stdio held by burrow's background
//! reader (the one `run -d -it` uses), whose attach socket attach clients join: the output as
//! it comes, their input to the container's stdin. An attach made before the start (docker
//! run's order: create, attach, start, wait) waits here and joins the reader's socket before
//! the task starts, so it misses no output. A running container without a reader (started with
//! its output to the log driver) is followed through its log. The service holds nothing once
//! the client is gone: the reader keeps the container's stdio.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hyper::Response;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::call::Call;
use super::error::ApiError;
use super::hijack::{self, Hijacked};
use super::http::{self, Body, Query};
use super::logs::{self, Shape};
use super::lookup::find;
use super::SharedCtx;
use crate::containers::logfollow::Follower;
use crate::containers::logquery::{self, LogQuery};
use crate::containers::{labels, record, Ctx};
use crate::session::keys::{self, DetachKeys, Scanner};
use crate::session::{self, Target};

/// What an attach asked for.
#[derive(Debug, Clone)]
struct Want {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    /// StdinOnce: the end of this client's input closes the container's stdin.
    stdin_once: bool,
    keys: Option<DetachKeys>,
}

impl Want {
    fn shape(&self) -> Shape {
        Shape {
            stdout: self.stdout,
            stderr: self.stderr,
            timestamps: false,
            framed: !self.tty,
        }
    }
}

/// An attach waiting for its container's start.
pub struct Waiting {
    /// It sends input.
    pub stdin: bool,
    /// Told to join the reader's socket; it answers on the sender it is given once joined.
    go: oneshot::Sender<oneshot::Sender<()>>,
}

type Board = Mutex<HashMap<String, Vec<Waiting>>>;

fn board() -> &'static Board {
    static B: OnceLock<Board> = OnceLock::new();
    B.get_or_init(Board::default)
}

/// The attaches waiting for container `id`'s start (taken: the start lets them in).
pub fn take_waiting(id: &str) -> Vec<Waiting> {
    board()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(id)
        .unwrap_or_default()
}

/// Lets the waiting attaches join the reader's socket, one by one (those with input first: the
/// first client's input is the one StdinOnce ends with), before the task starts.
pub async fn let_in(mut waiting: Vec<Waiting>) {
    waiting.sort_by_key(|w| !w.stdin);
    for w in waiting {
        let (ack, joined) = oneshot::channel();
        if w.go.send(ack).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), joined).await;
        }
    }
}

/// `POST /containers/{id}/attach?stream&stdin&stdout&stderr&logs&detachKeys`.
pub async fn attach(ctx: SharedCtx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let c = find(&ctx, id).await?;
    let q = &call.query;
    let on = |k: &str| c.labels.get(k).is_some_and(|v| v == "true");
    let tty = record::process_of(&c).terminal;
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => Some(DetachKeys::parse(k).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None if tty => Some(DetachKeys::parse(keys::DEFAULT).expect("default keys")),
        None => None,
    };
    let want = Want {
        stdin: q.flag("stdin", false)? && on(labels::STDIN_OPEN),
        stdout: q.flag("stdout", false)?,
        stderr: q.flag("stderr", false)?,
        tty,
        // As Docker's daemon: with a TTY the end of a client's input leaves stdin open (the
        // docker CLI's detach keys end its input too).
        stdin_once: on(labels::STDIN_ONCE) && !tty,
        keys,
    };
    let past = if q.flag("logs", false)? {
        past_output(&ctx, &c.id, want.shape()).await?
    } else {
        Vec::new()
    };
    let stream = q.flag("stream", false)?;
    let running = record::state(&ctx, &c.id).await?.is_running();
    let waiting = if stream && !running {
        let (go, rx) = oneshot::channel();
        let mut all = board().lock().unwrap_or_else(|e| e.into_inner());
        all.entry(c.id.clone()).or_default().push(Waiting {
            stdin: want.stdin,
            go,
        });
        Some(rx)
    } else {
        None
    };
    let cid = c.id.clone();
    Ok(hijack::respond(call, tty, move |h| async move {
        let mut h = h;
        if h.conn.write_all(&past).await.is_err() || !stream {
            let _ = h.conn.shutdown().await;
            return;
        }
        match waiting {
            Some(rx) => after_start(&ctx, &cid, want, h, rx).await,
            None => running_attach(&ctx, &cid, want, h, Vec::new(), false).await,
        }
    }))
}

/// The container's log so far, in the attach's framing.
async fn past_output(ctx: &Ctx, id: &str, shape: Shape) -> Result<Vec<u8>, ApiError> {
    let query = LogQuery::parse(None, None, "all", false, std::time::SystemTime::now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut out = Vec::new();
    let read = logquery::read(ctx, id, &query, |r| {
        if let Some(b) = logs::frame(r, shape) {
            out.extend_from_slice(&b);
        }
    })
    .await;
    // A container that never ran has no log yet: nothing to replay.
    if let Err(e) = read {
        tracing::debug!(%e, id, "no log to replay");
    }
    Ok(out)
}

/// An attach made before the start: holds the client's early input until the start lets it
/// join the reader's socket (before the task runs).
async fn after_start(
    ctx: &Ctx,
    id: &str,
    want: Want,
    mut h: Hijacked,
    mut go: oneshot::Receiver<oneshot::Sender<()>>,
) {
    let mut early = Vec::new();
    let mut input_ended = !h.input;
    let mut buf = vec![0u8; 8192];
    let ack = loop {
        tokio::select! {
            g = &mut go => match g {
                Ok(ack) => break ack,
                // Started otherwise, or removed: nothing to attach to.
                Err(_) => return,
            },
            // Clients shut their side down when their input ends (or they have none).
            n = h.conn.read(&mut buf), if !input_ended => match n {
                Ok(0) | Err(_) => input_ended = true,
                Ok(n) if want.stdin => early.extend_from_slice(&buf[..n]),
                Ok(_) => {}
            },
            () = tokio::time::sleep(PROBE) => {
                if !probe(&mut h.conn, want.tty).await {
                    return; // the client went away
                }
            }
        }
    };
    let Some(hub) = join_reader(ctx, id, Duration::from_secs(5)).await else {
        return;
    };
    let _ = ack.send(());
    bridge(ctx, id, &want, h, hub, early, input_ended).await;
}

/// An attach to a running container: through its reader's socket, else its log.
async fn running_attach(
    ctx: &Ctx,
    id: &str,
    want: Want,
    h: Hijacked,
    early: Vec<u8>,
    input_ended: bool,
) {
    match join_reader(ctx, id, Duration::ZERO).await {
        Some(hub) => bridge(ctx, id, &want, h, hub, early, input_ended).await,
        None => follow_log(ctx, id, &want, h).await,
    }
}

/// Joins the attach socket of container `id`'s reader (retrying for `patience` while it comes
/// up) and waits until the reader has registered us.
async fn join_reader(ctx: &Ctx, id: &str, patience: Duration) -> Option<UnixStream> {
    let dir = session::fifo::dir(&ctx.store.container_dir(id), "");
    let start = std::time::Instant::now();
    let sock = loop {
        match session::socket::connect(&dir) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < patience => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => {
                tracing::debug!(%e, id, "no background reader to attach to");
                return None;
            }
        }
    };
    sock.set_nonblocking(true).ok()?;
    let mut sock = UnixStream::from_std(sock).ok()?;
    let mut hello = [0u8; 5];
    let said = tokio::time::timeout(Duration::from_secs(5), sock.read_exact(&mut hello)).await;
    matches!(said, Ok(Ok(_))).then_some(sock)
}

/// Waits (a while) until container `id`'s task has started.
async fn started(ctx: &Ctx, id: &str) {
    for _ in 0..1500 {
        match record::state(ctx, id).await {
            Ok(record::State::Created) => {}
            // Running, or ran already (or gone).
            _ => return,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How often a quiet attach checks that its client is still there.
const PROBE: Duration = Duration::from_secs(2);

/// Whether the client is still there: an empty frame written (clients skip them); with a TTY
/// (raw bytes, nothing to write) it is assumed.
async fn probe(conn: &mut (impl AsyncWrite + Unpin), tty: bool) -> bool {
    if tty {
        return true;
    }
    let empty = hijack::frame(false, 1, b"");
    conn.write_all(&empty).await.is_ok() && conn.flush().await.is_ok()
}

/// How a client's side of an attach ended.
enum Ended {
    /// The container's output ended.
    Output,
    /// The client went away, or typed the detach keys.
    Client,
}

/// Copies the reader's output frames to the client and the client's input to the reader until
/// the output ends, the client goes away or types the detach keys.
async fn bridge(
    ctx: &Ctx,
    id: &str,
    want: &Want,
    h: Hijacked,
    hub: UnixStream,
    early: Vec<u8>,
    input_ended: bool,
) {
    let client_input = h.input;
    let (mut cr, mut cw) = tokio::io::split(h.conn);
    let (mut hr, mut hw) = hub.into_split();
    let output = copy_frames(&mut hr, &mut cw, want);
    let input = async {
        if !client_input {
            // A plain response: the client sends nothing, its end is the response's.
            return std::future::pending::<Ended>().await;
        }
        if !want.stdin {
            // Nothing to send (clients shut their side down then: that is no leaving).
            let mut sink = [0u8; 512];
            while matches!(cr.read(&mut sink).await, Ok(n) if n > 0) {}
            return std::future::pending::<Ended>().await;
        }
        // Input only once the task runs: the shim holds the stdin FIFO open from then on (what
        // is written to a FIFO nobody else holds is lost when the reader lets go of it).
        started(ctx, id).await;
        let _ = hw.write_all(&early).await;
        let detached = !input_ended && forward(&mut cr, &mut hw, want.keys.clone()).await;
        let _ = hw.shutdown().await;
        if want.stdin_once {
            Target::task(ctx, id).close_stdin().await;
        }
        if detached {
            return Ended::Client;
        }
        // The output goes on after the input ended.
        std::future::pending::<Ended>().await
    };
    let ended = tokio::select! {
        e = output => e,
        e = input => e,
    };
    if matches!(ended, Ended::Output) {
        let _ = cw.shutdown().await;
    }
}

/// The reader's frames (stream byte, u32 length, bytes) to the client in Docker's framing.
async fn copy_frames(
    hr: &mut tokio::net::unix::OwnedReadHalf,
    cw: &mut (impl AsyncWrite + Unpin),
    want: &Want,
) -> Ended {
    let mut head = [0u8; 5];
    loop {
        // Waiting for readiness is cancel-safe (a read in the middle of a frame is not).
        if tokio::time::timeout(PROBE, hr.readable()).await.is_err() {
            // Quiet: is the client still there?
            if !probe(cw, want.tty).await {
                return Ended::Client;
            }
            continue;
        }
        if hr.read_exact(&mut head).await.is_err() {
            return Ended::Output;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut data = vec![0u8; len];
        if hr.read_exact(&mut data).await.is_err() {
            return Ended::Output;
        }
        let wanted = if head[0] == 2 {
            want.stderr
        } else {
            want.stdout
        };
        if data.is_empty() || !wanted {
            continue;
        }
        let out = hijack::frame(want.tty, head[0], &data);
        if cw.write_all(&out).await.is_err() || cw.flush().await.is_err() {
            return Ended::Client;
        }
    }
}

/// The client's input to `sink` until it ends (false) or the detach keys (true).
async fn forward(
    cr: &mut (impl AsyncRead + Unpin),
    sink: &mut (impl AsyncWrite + Unpin),
    keys: Option<DetachKeys>,
) -> bool {
    let mut scanner = Scanner::new(keys);
    let mut buf = vec![0u8; 8192];
    let mut fwd = Vec::with_capacity(8192);
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        fwd.clear();
        let detached = scanner.scan(&buf[..n], &mut fwd);
        if sink.write_all(&fwd).await.is_err() {
            return false;
        }
        if detached {
            return true;
        }
    }
}

/// A running container whose output goes to the log driver: its log from now on, until it
/// exits or the client goes away (it has no stdin to attach).
async fn follow_log(ctx: &Ctx, id: &str, want: &Want, h: Hijacked) {
    let mut client_input = h.input;
    let (mut cr, mut cw) = tokio::io::split(h.conn);
    let mut log = match Follower::from_end(&ctx.store.log_path(id)) {
        Ok(f) => f,
        Err(e) => {
            let text = format!("burrow cannot attach to {id}: its log is not readable ({e})\n");
            let _ = cw
                .write_all(&hijack::frame(want.tty, 2, text.as_bytes()))
                .await;
            let _ = cw.shutdown().await;
            return;
        }
    };
    let shape = want.shape();
    let target = Target::task(ctx, id);
    let exit = target.wait();
    tokio::pin!(exit);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut ticks = 0u32;
    let mut sink = [0u8; 512];
    loop {
        let last = tokio::select! {
            _ = &mut exit => true,
            _ = tick.tick() => false,
            n = cr.read(&mut sink), if client_input => match n {
                Ok(0) | Err(_) => {
                    client_input = false;
                    continue;
                }
                Ok(_) => continue,
            },
        };
        if last {
            // The log driver may still be writing the last lines.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut out = Vec::new();
        ticks += 1;
        if !want.tty && !last && ticks.is_multiple_of(20) {
            // An empty frame: a client that went away is noticed by the write.
            out.extend_from_slice(&hijack::frame(false, 1, b""));
        }
        for r in log.poll().unwrap_or_default() {
            if let Some(b) = logs::frame(&r, shape) {
                out.extend_from_slice(&b);
            }
        }
        if !out.is_empty() && cw.write_all(&out).await.is_err() {
            return;
        }
        if last {
            let _ = cw.shutdown().await;
            return;
        }
    }
}

/// `POST /containers/{id}/resize?h&w`: the container's pty size.
pub async fn resize(ctx: &Ctx, id: &str, q: &Query) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let (h, w) = size(q)?;
    if !record::state(ctx, &c.id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    ctx.client
        .resize(&c.id, "", u32::from(w), u32::from(h))
        .await
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    Ok(http::empty(200))
}

/// The `h` and `w` parameters of a resize.
pub fn size(q: &Query) -> Result<(u16, u16), ApiError> {
    let dim = |k: &str| -> Result<u16, ApiError> {
        q.int(k)?
            .and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| ApiError::bad_request(format!("resize: give {k} as a number")))
    };
    Ok((dim("h")?, dim("w")?))
}
