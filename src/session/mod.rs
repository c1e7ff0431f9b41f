//! An attached process (a container's task or an exec): its stdio joined to the user's
//! endpoints (the CLI's terminal, or any reader and writers such as a socket), the terminal's
//! raw mode and size, the detach keys, the signals passed on, handing over to a background
//! reader on detach, and the exit status.
//!
//! A session is opened before the process starts ([`Session::fifos`] gives the [`Stdio`] to
//! create it with; [`Session::join`] joins the attach socket of a background reader), waits for
//! the process from [`Session::watch`] on, and [`Session::attend`]s it until it exits or the
//! user detaches.

pub mod background;
pub mod exit;
pub mod fifo;
pub mod keys;
mod pump;
pub mod signals;
pub mod socket;
mod sys;
mod target;
pub mod terminal;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind};

use crate::containers::lifecycle::{LifecycleError, Stdio};
use crate::containers::logdriver::AttachLog;
use crate::containers::store::StoreError;
pub use keys::{DetachKeys, KeysError};
use pump::{Event, Running};
use signals::Signals;
pub use target::Target;
use terminal::RawMode;

/// A session could not be set up or followed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("creating the FIFO {}", path.display())]
    Fifo {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("opening the FIFO {}", path.display())]
    OpenFifo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Nothing serves the attach socket (the container's stdio is not held by a reader).
    #[error("connecting to the attach socket: {0}")]
    Connect(#[source] std::io::Error),
    #[error("attaching")]
    Attach(#[source] std::io::Error),
    #[error(transparent)]
    Wait(#[from] LifecycleError),
    #[error("waiting for the process: {0}")]
    Waiter(#[from] tokio::task::JoinError),
    #[error("finding burrow: {0}")]
    Exe(#[source] std::io::Error),
    #[error("starting the background reader of {id}'s output: {source}")]
    SpawnReader {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "detaching from {id}: the background reader of its output did not start ({why}); the \
         process keeps running without its output read (`burrow stop {id}` ends the container)"
    )]
    ReaderNotReady { id: String, why: String },
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// How a session is attached to its process.
#[derive(Default)]
pub struct Options {
    /// The process's stdin is attached (`-i`): the user's input goes to it until it ends.
    pub stdin: bool,
    /// The process has a terminal: one output stream, a pty whose size can follow the user's.
    pub tty: bool,
    /// The sequence that detaches the user (none: no detaching); only with `stdin`.
    pub detach_keys: Option<DetachKeys>,
    /// The output also goes to the container's json-file log (its main process, not an exec).
    pub log: Option<Arc<AttachLog>>,
}

/// What of the CLI's own process a session uses; a session for a remote user uses none.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local {
    /// The CLI's terminal is in raw mode while attached (restored after).
    pub raw: bool,
    /// With `tty`: the process's pty keeps the CLI's terminal size (now and on SIGWINCH).
    pub follow_size: bool,
    /// INT, TERM, HUP, QUIT, USR1 and USR2 to the CLI go on to the container's task
    /// (`--sig-proxy`; an exec's signals are not passed on, as with Docker).
    pub sig_proxy: bool,
    /// TERM and HUP to the CLI detach it instead (the terminal went away).
    pub detach_on_hangup: bool,
}

/// The user's side of a session: where the process's input comes from and its output goes.
pub struct Endpoints {
    input: Box<dyn Read + Send>,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
    local: Local,
}

impl Endpoints {
    /// Any reader and writers, e.g. the halves of a socket; nothing of the CLI's process.
    pub fn new(
        input: Box<dyn Read + Send>,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Endpoints {
        Endpoints {
            input,
            stdout,
            stderr,
            local: Local::default(),
        }
    }

    /// The CLI's stdin, stdout and stderr, and `local` of its process.
    pub fn terminal(local: Local) -> Endpoints {
        Endpoints {
            input: Box::new(std::io::stdin()),
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            local,
        }
    }

    /// These endpoints with the process's stdout and/or stderr discarded (`run -a`; the
    /// container's log still gets both).
    pub fn only(mut self, stdout: bool, stderr: bool) -> Endpoints {
        if !stdout {
            self.stdout = Box::new(std::io::sink());
        }
        if !stderr {
            self.stderr = Box::new(std::io::sink());
        }
        self
    }
}

/// How attending a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status (its output drained).
    Exited(u32),
    /// The user detached; it runs on (see [`Session::hand_over`]).
    Detached,
}

/// The process's exit, awaited in the background from [`Session::watch`] on.
#[derive(Debug)]
pub struct Exit(tokio::task::JoinHandle<Result<u32, LifecycleError>>);

impl Drop for Exit {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The process side of a session.
#[derive(Debug)]
enum Link {
    Fifos(fifo::Fifos),
    Socket(socket::Joined),
}

/// An attached process: its stdio copied to and from the user's endpoints, and what of the
/// CLI's own process the session uses (raw mode, SIGWINCH, signals) until it ends.
pub struct Session {
    link: Link,
    events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    running: Running,
    raw: Option<RawMode>,
    winch: Option<Signal>,
    proxy: Option<Signals>,
    hangup: Option<Signals>,
    detacher: Option<Detacher>,
}

/// Detaches a session from outside its endpoints (a remote user that went away), as the
/// detach keys do.
#[derive(Debug, Clone)]
pub struct Detacher(pump::Events);

impl Detacher {
    /// [`Session::attend`] ends with [`Outcome::Detached`] (unless the process exited first).
    pub fn detach(&self) {
        let _ = self.0.send(Event::Detached);
    }
}

impl Session {
    /// A task's or exec's stdio as FIFOs under `dir` (created now, removed with the session);
    /// create the process with [`Session::stdio`].
    pub fn fifos(dir: &Path, opts: Options, ends: Endpoints) -> Result<Session, SessionError> {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let running = Running::default();
        let (local, tty) = (ends.local, opts.tty);
        let detacher = Detacher(tx.clone());
        let link = Link::Fifos(fifo::Fifos::open(dir, opts, ends, tx, &running)?);
        let mut s = Session::with_local(link, events, running, local, tty);
        s.detacher = Some(detacher);
        Ok(s)
    }

    /// Joins the attach socket in `dir` of a background reader that holds a container's stdio:
    /// the output from now on, and with `opts.stdin` the input. [`SessionError::Connect`] when
    /// no reader serves it.
    pub fn join(dir: &Path, opts: Options, ends: Endpoints) -> Result<Session, SessionError> {
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let running = Running::default();
        let (local, tty) = (ends.local, opts.tty);
        let detacher = Detacher(tx.clone());
        let link = Link::Socket(socket::Joined::connect(dir, opts, ends, tx, &running)?);
        let mut s = Session::with_local(link, events, running, local, tty);
        s.detacher = Some(detacher);
        Ok(s)
    }

    fn with_local(
        link: Link,
        events: tokio::sync::mpsc::UnboundedReceiver<Event>,
        running: Running,
        local: Local,
        tty: bool,
    ) -> Session {
        let raw = if local.raw { RawMode::enter() } else { None };
        // Caught from now on, so a resize before the process starts is not lost.
        let winch = (tty && local.follow_size)
            .then(|| tokio::signal::unix::signal(SignalKind::window_change()).ok())
            .flatten();
        let proxy = if local.sig_proxy {
            Signals::proxied()
        } else {
            None
        };
        let hangup = if local.detach_on_hangup {
            Signals::hangup()
        } else {
            None
        };
        Session {
            link,
            events,
            running,
            raw,
            winch,
            proxy,
            hangup,
            detacher: None,
        }
    }

    /// A handle that detaches this session as the detach keys do.
    pub fn detacher(&self) -> Option<Detacher> {
        self.detacher.clone()
    }

    /// The stdio to create the process with: its FIFOs (nothing for a joined socket).
    pub fn stdio(&self) -> Stdio {
        match &self.link {
            Link::Fifos(f) => f.stdio.clone(),
            Link::Socket(_) => Stdio::default(),
        }
    }

    /// Starts waiting for `target`'s exit, passing the CLI's signals on if the session proxies
    /// them. Call it once the process exists, before starting it where that is possible (an
    /// exec), so a fast exit is not missed.
    pub async fn watch(&mut self, target: &Target) -> Exit {
        let proxy = if target.is_task() {
            self.proxy.take()
        } else {
            None
        };
        let t = target.clone();
        let exit = Exit(tokio::spawn(async move {
            signals::wait_proxying(&t, proxy).await
        }));
        // Let the wait reach containerd before the caller goes on.
        tokio::task::yield_now().await;
        exit
    }

    /// The process runs: keeps its pty the terminal's size, sends it the end of the user's
    /// input, and waits until it exits (then drains its output) or the user detaches (the
    /// detach keys, or with `detach_on_hangup` TERM or HUP). The terminal is restored either way.
    pub async fn attend(
        &mut self,
        target: &Target,
        mut exit: Exit,
    ) -> Result<Outcome, SessionError> {
        let resizer = self.follow_size(target).await;
        let mut closer = None;
        let mut listening = true;
        let status = loop {
            tokio::select! {
                s = &mut exit.0 => break Some(s),
                ev = self.events.recv(), if listening => match ev {
                    Some(Event::Detached) => break None,
                    Some(Event::InputEnded) => {
                        if let Link::Fifos(f) = &self.link {
                            closer = Some(f.close_stdin(target));
                        }
                    }
                    // The output ended: the process is exiting; its status follows.
                    Some(Event::OutputEnded) | None => listening = false,
                },
                _ = signals::next_of(self.hangup.as_mut()) => break None,
            }
        };
        for t in [closer, resizer].into_iter().flatten() {
            t.abort();
        }
        let Some(status) = status else {
            self.raw = None;
            return Ok(Outcome::Detached);
        };
        let limit = match &self.link {
            Link::Fifos(f) => f.drain_limit(),
            Link::Socket(s) => s.drain_limit(),
        };
        self.running.drained(limit).await;
        self.raw = None;
        Ok(Outcome::Exited(status??))
    }

    /// Gives the process's pty the terminal's size now, and on every SIGWINCH until the
    /// returned task is aborted.
    async fn follow_size(&mut self, target: &Target) -> Option<tokio::task::JoinHandle<()>> {
        let mut winch = self.winch.take()?;
        if let Some((rows, cols)) = terminal::size() {
            target.resize(rows, cols).await;
        }
        let target = target.clone();
        Some(tokio::spawn(async move {
            while winch.recv().await.is_some() {
                let size = terminal::size();
                tracing::debug!(?size, "window changed");
                if let Some((rows, cols)) = size {
                    target.resize(rows, cols).await;
                }
            }
        }))
    }

    /// After [`Outcome::Detached`]: once `reader` holds the process's stdio, the session lets
    /// go of it; the process runs on with its output read, and its FIFO dir stays to the
    /// reader (whose attach socket is there for `burrow attach`).
    pub fn hand_over(mut self, reader: background::Reader) -> Result<(), SessionError> {
        reader.wait_ready()?;
        if let Link::Fifos(f) = &mut self.link {
            f.hand_over();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::sync::Mutex;
    use std::time::Duration;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// Writes `text` into the output FIFO `path` as the shim would, and closes it.
    fn shim_writes(path: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn session(
        dir: &Path,
        input: &'static [u8],
        keys: Option<DetachKeys>,
    ) -> (Session, Shared, Shared) {
        let (out, err) = (Shared::default(), Shared::default());
        let opts = Options {
            stdin: true,
            detach_keys: keys,
            ..Options::default()
        };
        let ends = Endpoints::new(
            Box::new(Cursor::new(input)),
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        (Session::fifos(dir, opts, ends).unwrap(), out, err)
    }

    #[test]
    fn fifo_sessions_copy_both_ways_until_the_input_ends_or_the_detach_keys() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fifo");
        rt.block_on(async {
            let keys = DetachKeys::parse(keys::DEFAULT).unwrap();
            let (mut s, out, err) = session(&dir, b"typed\x10\x11dropped", Some(keys));
            let stdio = s.stdio();
            assert!(!stdio.terminal && !stdio.stderr.is_empty());
            shim_writes(&stdio.stdout, "hello\n");
            shim_writes(&stdio.stderr, "oops\n");
            assert_eq!(s.events.recv().await, Some(Event::Detached));
            // What came before the keys reached the process; the keys and the rest did not.
            let mut stdin = std::fs::File::open(&stdio.stdin).unwrap();
            let mut typed = [0u8; 5];
            stdin.read_exact(&mut typed).unwrap();
            assert_eq!(&typed, b"typed");
            assert_eq!(super::sys::pending(&stdin), Some(0));
            s.running.drained(Duration::from_secs(5)).await;
            assert_eq!(
                (out.text(), err.text()),
                ("hello\n".into(), "oops\n".into())
            );
            drop(s);
            assert!(!dir.exists(), "the FIFOs went with the session");

            // Without keys the end of the input is the event.
            let (mut s, _, _) = session(&dir, b"all", None);
            assert_eq!(s.events.recv().await, Some(Event::InputEnded));
        });
    }
}
