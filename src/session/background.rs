//! Detaching to the background: a process's stdio handed to `burrow internal detached-drain`,
//! a reader of its own that keeps reading the output (into the container's log, and to `burrow
//! attach` clients through the attach socket), holds stdin open, and runs a follow-up command
//! once the output ends; and that reader's side.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};

use super::socket::{Hub, Stream};
use super::SessionError;
use crate::containers::logdriver::AttachLog;
use crate::containers::store::Store;

pub use crate::selfexec::ReaderRequest;

/// A background reader being started.
#[derive(Debug)]
pub struct Reader {
    id: String,
    child: Child,
}

impl Reader {
    /// Starts burrow's reader for `req` in its own process group (terminal signals miss it).
    pub fn spawn(req: &ReaderRequest) -> Result<Reader, SessionError> {
        let mut cmd = crate::selfexec::Helper::DetachedDrain(req.clone())
            .command()
            .map_err(SessionError::Exe)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = cmd.spawn().map_err(|source| SessionError::SpawnReader {
            id: req.id.clone(),
            source,
        })?;
        Ok(Reader {
            id: req.id.clone(),
            child,
        })
    }

    /// Waits for the reader's one byte saying it holds the FIFOs; false when it ended first.
    pub fn ready(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.child
            .stdout
            .take()
            .is_some_and(|mut o| matches!(o.read(&mut b), Ok(1)))
    }

    /// What a reader that never said it was ready printed, and how it ended.
    pub fn failure(mut self) -> String {
        let mut said = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut said);
        }
        let status = self
            .child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        match said.trim() {
            "" => status,
            text => format!("{text}; {status}"),
        }
    }

    /// Waits until the reader holds the FIFOs; the error says why it does not.
    pub fn wait_ready(mut self) -> Result<(), SessionError> {
        if self.ready() {
            return Ok(());
        }
        let id = self.id.clone();
        Err(SessionError::ReaderNotReady {
            id,
            why: self.failure(),
        })
    }

    /// Not needed after all: ends the reader.
    pub fn abandon(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reader's side (`burrow internal detached-drain DATA_ROOT NS ID FIFO_DIR [--discard]
/// [-- COMMAND...]`): reads the process's stdout/stderr FIFOs until they close, into the
/// container's json-file log and to attach clients (unless `discard`), holds its stdin FIFO
/// open meanwhile (so the process does not see EOF), then runs `then`, if any. Writes one byte
/// to stdout once the FIFOs are open.
pub fn drain(req: &ReaderRequest) -> Result<(), SessionError> {
    let dir = req.fifo_dir.as_path();
    let store = Store::new(req.data_root.clone(), req.namespace.clone());
    let log = if req.discard {
        None
    } else {
        Some(AttachLog::open(&store, &req.id).map_err(io("opening the container's log"))?)
    };
    // Held until the end, the follow-up command's too (with stdin_once only by the hub, which
    // lets go of it when its client's input ends).
    let mut stdin = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(0)
        .open(dir.join("stdin"))
        .ok();
    // `burrow attach` connects here: it gets the output from now on and writes to stdin.
    let hub = if req.discard {
        None
    } else {
        let input = if req.stdin_once {
            stdin.take()
        } else {
            stdin.as_ref().and_then(|f| f.try_clone().ok())
        };
        Hub::serve(dir, input, req.stdin_once)
            .map_err(|e| {
                tracing::warn!(
                    "container {}: `burrow attach` will not be able to connect: {e}",
                    req.id
                )
            })
            .ok()
    };
    let mut streams = Vec::new();
    for (name, stream) in [("stdout", Stream::Stdout), ("stderr", Stream::Stderr)] {
        if let Ok(f) = File::open(dir.join(name)) {
            streams.push((f, stream));
        }
    }
    say_ready().map_err(io("telling the CLI the reader is ready"))?;
    let threads: Vec<_> = streams
        .into_iter()
        .map(|(f, stream)| {
            let (log, hub) = (log.clone(), hub.clone());
            std::thread::spawn(move || relay(f, stream, log.as_deref(), hub.as_deref()))
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    if let Some(h) = &hub {
        h.close();
    }
    if let [prog, args @ ..] = req.then.as_slice() {
        let _ = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
    Ok(())
}

/// Writes the ready byte, then points our stdout at /dev/null: nobody reads it any more.
fn say_ready() -> std::io::Result<()> {
    {
        let mut out = std::io::stdout().lock();
        out.write_all(b"r")?;
        out.flush()?;
    }
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    let _ = nix::unistd::dup2_stdout(&null);
    Ok(())
}

/// Copies one output FIFO into the log and to the attach clients until it closes.
fn relay(mut f: File, stream: Stream, log: Option<&AttachLog>, hub: Option<&Hub>) {
    let is_err = stream == Stream::Stderr;
    let mut buf = [0u8; 8192];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        if let Some(log) = log {
            log.feed(is_err, &buf[..n]);
        }
        if let Some(h) = hub {
            h.broadcast(stream, &buf[..n]);
        }
    }
    if let Some(log) = log {
        log.finish(is_err);
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SessionError {
    move |source| SessionError::Io { what, source }
}
