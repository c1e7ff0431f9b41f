//! The exec endpoints: `POST /containers/{id}/exec` (an instance kept by the library's exec
//! registry), `POST /exec/{id}/start` (hijacked as attach is, or detached), `/exec/{id}/resize`
//! and `GET /exec/{id}/json`. The process runs in a session of the library's exec machinery,
//! the CLI's; a client that goes away hands it to a background reader (as `exec` detaching
//! does), so the service holds nothing for it.

use std::io::Write;
use std::os::unix::net::UnixStream as StdStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::attach::size;
use super::call::{unimplemented, Call};
use super::error::ApiError;
use super::hijack::{self, Hijacked};
use super::http::{self, Body};
use super::lookup::find;
use super::SharedCtx;
use crate::containers::exec::{self as cexec, ExecRequest};
use crate::containers::execs::{self, Attached, ExecError, ExecInstance, StartError};
use crate::containers::held::{self, Detached};
use crate::containers::{record, Ctx};
use crate::session::{self, DetachKeys, Endpoints, Outcome, Target};

/// Docker's ExecConfig.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    tty: bool,
    console_size: Option<Vec<u16>>,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
}

/// Docker's ExecStartConfig.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    console_size: Option<Vec<u16>>,
}

fn exec_error(e: ExecError) -> ApiError {
    match e {
        ExecError::NotFound(_) => ApiError::not_found(e.to_string()),
        ExecError::AlreadyStarted(_) => ApiError::conflict(e.to_string()),
    }
}

fn console_size(v: Option<Vec<u16>>) -> Option<(u16, u16)> {
    match v.as_deref() {
        Some([h, w]) if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    }
}

/// `POST /containers/{id}/exec`: 201 `{"Id"}`.
pub async fn create(ctx: &Ctx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let c = find(ctx, id).await?;
    let b: CreateBody = call.json()?;
    let cmd = b.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if !b.detach_keys.is_empty() {
        DetachKeys::parse(&b.detach_keys).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    if !record::state(ctx, &c.id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    let req = ExecRequest {
        cmd,
        tty: b.tty,
        env: b.env.unwrap_or_default(),
        user: Some(b.user.clone()).filter(|u| !u.is_empty()),
        working_dir: Some(b.working_dir).filter(|w| !w.is_empty()),
        privileged: b.privileged,
    };
    // Instances of removed containers go (Docker drops them with the container).
    if let Ok(all) = ctx.client.list(vec![]).await {
        let ids: std::collections::HashSet<String> = all.into_iter().map(|c| c.id).collect();
        execs::forget_gone(|id| ids.contains(id));
    }
    let process = cexec::process(ctx, &c, &req, &|note| tracing::info!(?note, "exec"))
        .await
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let id = execs::insert(ExecInstance {
        id: crate::containers::store::new_id(),
        container_id: c.id.clone(),
        process,
        tty: b.tty,
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        privileged: b.privileged,
        user: b.user,
        detach_keys: Some(b.detach_keys).filter(|k| !k.is_empty()),
        console_size: console_size(b.console_size),
        started: false,
        running: false,
        pid: 0,
        exit_code: None,
    });
    Ok(http::json(201, &json!({ "Id": id })))
}

/// `/exec/...`.
pub async fn route(
    ctx: &SharedCtx,
    call: &Call,
    segs: &[&str],
) -> Result<Response<Body>, ApiError> {
    match (call.method.as_str(), segs) {
        ("POST", [id, "start"]) => start(ctx.clone(), id, call).await,
        ("POST", [id, "resize"]) => resize(ctx, id, call).await,
        ("GET", [id, "json"]) => inspect(id),
        _ => Err(unimplemented(call)),
    }
}

/// `GET /exec/{id}/json`.
fn inspect(id: &str) -> Result<Response<Body>, ApiError> {
    let e = execs::get(id).map_err(exec_error)?;
    let args = e.process.args().clone().unwrap_or_default();
    let (entry, rest) = args
        .split_first()
        .map_or(("", &[][..]), |(a, r)| (a.as_str(), r));
    Ok(http::json(
        200,
        &json!({
            "ID": e.id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "ProcessConfig": {
                "tty": e.tty,
                "entrypoint": entry,
                "arguments": rest,
                "privileged": e.privileged,
                "user": e.user,
            },
            "OpenStdin": e.attach_stdin,
            "OpenStdout": e.attach_stdout,
            "OpenStderr": e.attach_stderr,
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.detach_keys.clone().unwrap_or_default(),
            "Pid": e.pid,
        }),
    ))
}

/// `POST /exec/{id}/resize?h&w`: now when it runs, else once it starts.
async fn resize(ctx: &Ctx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let e = execs::get(id).map_err(exec_error)?;
    let (h, w) = size(&call.query)?;
    if e.running {
        ctx.client
            .resize(&e.container_id, &e.process_id(), u32::from(w), u32::from(h))
            .await
            .map_err(|err| ApiError::from(anyhow::Error::from(err)))?;
    } else if e.exit_code.is_none() {
        execs::update(&e.id, |x| x.console_size = Some((h, w)));
    } else {
        return Err(ApiError::conflict(format!("Exec {} is not running", e.id)));
    }
    Ok(http::empty(200))
}

/// `POST /exec/{id}/start`: detached (200 at once), or hijacked until the process exits.
async fn start(ctx: SharedCtx, id: &str, call: &Call) -> Result<Response<Body>, ApiError> {
    let b: StartBody = call.json()?;
    let e = execs::get(id).map_err(exec_error)?;
    if !record::state(&ctx, &e.container_id).await?.is_running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            e.container_id
        )));
    }
    let mut e = execs::claim_start(&e.id).map_err(exec_error)?;
    if let Some(s) = console_size(b.console_size) {
        e.console_size = Some(s);
    }
    let target = e.target(&ctx);
    if b.detach {
        let pid = execs::start_detached(&ctx, &target, &e.process)
            .await
            .map_err(|err| ApiError::from(anyhow::Error::from(err)))?;
        running(&e, pid);
        record_exit(&ctx, &e.id, target);
        return Ok(http::empty(200));
    }
    let tty = e.tty;
    Ok(hijack::respond(call, tty, move |h| async move {
        serve(&ctx, e, target, h).await;
    }))
}

fn running(e: &ExecInstance, pid: u32) {
    execs::update(&e.id, |x| {
        x.running = true;
        x.pid = pid;
    });
}

/// Records the exit of exec `id` once it comes (it runs on without us).
fn record_exit(ctx: &Ctx, id: &str, target: Target) {
    let (id, client) = (id.to_string(), ctx.client.clone());
    tokio::spawn(async move {
        let code = target.wait().await.ok();
        execs::update(&id, |x| {
            x.running = false;
            x.exit_code = Some(code.unwrap_or(137));
        });
        // A detached exec's process is deleted here; a handed-over one by its reader.
        let _ = client.delete_exec(target.id(), target.exec_id()).await;
    });
}

/// Writes one output stream of the process to the session's socket, framed.
struct Framed {
    sock: Arc<Mutex<StdStream>>,
    tty: bool,
    stream: u8,
}

impl Write for Framed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let f = hijack::frame(self.tty, self.stream, buf);
        let mut s = self.sock.lock().map_err(|_| std::io::ErrorKind::Other)?;
        s.write_all(&f)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The session's end of an in-process socket pair: the input from it, the output framed into
/// it (stdout or stderr not asked for are dropped).
fn endpoints(e: &ExecInstance, ours: &StdStream) -> std::io::Result<Endpoints> {
    let sock = Arc::new(Mutex::new(ours.try_clone()?));
    let out = |stream: u8| Framed {
        sock: sock.clone(),
        tty: e.tty,
        stream,
    };
    let ends = Endpoints::new(
        Box::new(ours.try_clone()?),
        Box::new(out(1)),
        Box::new(out(2)),
    );
    Ok(ends.only(e.attach_stdout, e.attach_stderr))
}

/// Runs an attached exec for the client: its output to the client, the client's input to it,
/// until it exits (its code recorded before the client's stream ends, so the client's inspect
/// sees it) or the client goes away or detaches (a background reader takes it over).
async fn serve(ctx: &Ctx, e: ExecInstance, target: Target, h: Hijacked) {
    let (cr, mut cw) = tokio::io::split(h.conn);
    let opened = StdStream::pair().and_then(|(ours, theirs)| {
        theirs.set_nonblocking(true)?;
        Ok((endpoints(&e, &ours)?, ours, theirs))
    });
    let (ends, ours, theirs) = match opened {
        Ok(x) => x,
        Err(err) => return failed(&e, &mut cw, &format!("exec: {err}"), 126).await,
    };
    let keys = e.detach_keys.as_deref();
    let opts = session::Options {
        stdin: e.attach_stdin,
        tty: e.tty,
        detach_keys: DetachKeys::for_session(keys, e.attach_stdin, e.tty)
            .ok()
            .flatten(),
        log: None,
    };
    let started = execs::start_attached(ctx, &target, &e.process, opts, ends).await;
    let Attached {
        mut session,
        exit,
        pid,
    } = match started {
        Ok(a) => a,
        Err(StartError::Lifecycle(err)) => {
            let code = err
                .start_failure()
                .map_or(126, |f| u32::from(f.exit_code()));
            return failed(&e, &mut cw, &format!("{err:#}"), code).await;
        }
        Err(err) => return failed(&e, &mut cw, &format!("{err:#}"), 126).await,
    };
    running(&e, pid);
    if let Some((rows, cols)) = execs::get(&e.id).ok().and_then(|x| x.console_size) {
        target.resize(rows, cols).await;
    }
    let Ok(theirs) = tokio::net::UnixStream::from_std(theirs) else {
        return;
    };
    let (mut br, mut bw) = theirs.into_split();
    let detacher = session.detacher();
    let gone = || {
        if let Some(d) = &detacher {
            d.detach();
        }
    };
    let out = copy_out(&mut br, cw, e.tty);
    let inp = copy_in(cr, &mut bw, h.input, e.attach_stdin);
    tokio::pin!(out, inp);
    let mut out_done = false;
    let outcome = {
        let attend = session.attend(&target, exit);
        tokio::pin!(attend);
        loop {
            tokio::select! {
                o = &mut attend => break o,
                ok = &mut out, if !out_done => {
                    out_done = true;
                    if !ok { gone() }
                }
                () = &mut inp => {}
            }
        }
    };
    if let Ok(Outcome::Exited(status)) = &outcome {
        // Recorded before the client's stream ends: it inspects the exec right after.
        execs::update(&e.id, |x| {
            x.running = false;
            x.exit_code = Some(*status);
        });
    }
    let _ = ours.shutdown(std::net::Shutdown::Both);
    match outcome {
        Ok(Outcome::Exited(_)) => {
            if !out_done {
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut out).await;
            }
            let _ = ctx.client.delete_exec(target.id(), target.exec_id()).await;
        }
        Ok(Outcome::Detached) => {
            let dir = session::fifo::dir(&ctx.store.container_dir(target.id()), target.exec_id());
            let what = Detached::Exec {
                exec_id: target.exec_id(),
            };
            if let Err(err) = held::hand_over(ctx, target.id(), session, &dir, what) {
                tracing::warn!(%err, "handing an exec over to a background reader");
            }
            record_exit(ctx, &e.id, target);
        }
        Err(err) => tracing::warn!(%err, "attending an exec"),
    }
}

/// The process's output (already framed) to the client until it ends (true: the client's
/// stream ends too) or the client goes away (false; noticed by a write: without a TTY an
/// empty frame is written when the output is quiet).
async fn copy_out(
    br: &mut tokio::net::unix::OwnedReadHalf,
    mut cw: impl AsyncWrite + Unpin,
    tty: bool,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if tokio::time::timeout(Duration::from_secs(2), br.readable())
            .await
            .is_err()
        {
            let empty = hijack::frame(false, 1, b"");
            if !tty && (cw.write_all(&empty).await.is_err() || cw.flush().await.is_err()) {
                return false;
            }
            continue;
        }
        match br.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = cw.shutdown().await;
                return true;
            }
            Ok(n) => {
                if cw.write_all(&buf[..n]).await.is_err() || cw.flush().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// The client's input to the process until it ends (then the process's stdin ends); never
/// resolves (clients shut their side down when their input ends, or at once without input:
/// that is no leaving).
async fn copy_in(
    mut cr: impl AsyncRead + Unpin,
    bw: &mut (impl AsyncWrite + Unpin),
    client_input: bool,
    stdin: bool,
) {
    if !client_input {
        return std::future::pending().await;
    }
    let mut buf = vec![0u8; 8192];
    loop {
        match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) if stdin => {
                if bw.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
        }
    }
    if stdin {
        let _ = bw.shutdown().await;
    }
    std::future::pending().await
}

/// An exec that did not start: Docker's message on the stream, its exit code recorded.
async fn failed(e: &ExecInstance, cw: &mut (impl AsyncWrite + Unpin), msg: &str, code: u32) {
    execs::update(&e.id, |x| {
        x.running = false;
        x.exit_code = Some(code);
    });
    // The runtime's own words when they are Docker's already (runc says "OCI runtime exec
    // failed: ..." through containerd), else Docker's prefix before ours.
    const PREFIX: &str = "OCI runtime exec failed: ";
    let text = match msg.find(PREFIX) {
        Some(i) => format!("{}\r\n", &msg[i..]),
        None => format!("{PREFIX}{msg}\r\n"),
    };
    let _ = cw
        .write_all(&hijack::frame(e.tty, 1, text.as_bytes()))
        .await;
    let _ = cw.shutdown().await;
}
