//! A process whose stdio a background reader holds (`burrow internal detached-drain`): starting
//! a container's task that way (`run -d -i`/`-t`, a `--rm` container, the Docker API's start,
//! whose attach clients join the reader's attach socket), and handing an attached process over
//! to a reader (the detach keys, a Docker API client that went away).

use std::path::Path;

use containerd_client::types::Mount;

use super::Ctx;
use crate::selfexec::{EndpointArgs, Helper};
use crate::session::background::{Reader, ReaderRequest};
use crate::session::{self, Session, SessionError};

/// Whose output a background reader reads.
#[derive(Debug, Clone, Copy)]
pub enum Detached<'a> {
    /// The container's task: its output goes to the log and to attach clients; with `rm` the
    /// container is removed when it exits; with `stdin_once` the first attach client whose
    /// input ends closes its stdin (Docker's StdinOnce).
    Container { rm: bool, stdin_once: bool },
    /// An exec's process: its output is read and dropped (Docker keeps exec output out of the
    /// log), and the exec is deleted when it exits.
    Exec { exec_id: &'a str },
}

/// How a container's task is started with its stdio held.
#[derive(Debug, Clone, Copy, Default)]
pub struct Held {
    /// The task has a stdin (`-i`, OpenStdin).
    pub stdin: bool,
    pub tty: bool,
    /// Removed when it exits (`--rm`, AutoRemove).
    pub rm: bool,
    /// StdinOnce: the first attach client's end of input closes the task's stdin.
    pub stdin_once: bool,
}

/// A held start failed.
#[derive(Debug, thiserror::Error)]
pub enum HeldError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Start(#[from] anyhow::Error),
    #[error(
        "container {id}: the background reader that keeps its stdio (burrow internal \
         detached-drain) did not start ({why}), so the container was stopped again; fix that and \
         start it again, or create it without -i/-t to log through the log driver"
    )]
    ReaderFailed { id: String, why: String },
}

/// Starts `burrow internal detached-drain` for the FIFOs in `fifo_dir` of container `id`.
pub fn spawn_reader(
    ctx: &Ctx,
    id: &str,
    fifo_dir: &Path,
    what: Detached,
) -> Result<Reader, SessionError> {
    let exe = std::env::current_exe().map_err(SessionError::Exe)?;
    let endpoint = EndpointArgs::of(&ctx.ep);
    let (discard, stdin_once, then) = match what {
        Detached::Container {
            rm: false,
            stdin_once,
        } => (false, stdin_once, Vec::new()),
        // The container removed on this endpoint once the output ended and the task exited.
        Detached::Container {
            rm: true,
            stdin_once,
        } => {
            let remove = Helper::AutoRemove {
                endpoint,
                id: id.to_string(),
            };
            let argv = std::iter::once(exe.into_os_string())
                .chain(remove.args())
                .collect();
            (false, stdin_once, argv)
        }
        Detached::Exec { exec_id } => {
            let cleanup = Helper::ExecCleanup {
                endpoint,
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                fifo_dir: fifo_dir.to_path_buf(),
            };
            let argv = std::iter::once(exe.into_os_string())
                .chain(cleanup.args())
                .collect();
            (true, false, argv)
        }
    };
    Reader::spawn(&ReaderRequest {
        data_root: ctx.ep.data_root.clone(),
        namespace: ctx.ep.namespace.clone(),
        id: id.to_string(),
        fifo_dir: fifo_dir.to_path_buf(),
        discard,
        stdin_once,
        then,
    })
}

/// After a session detached (or its user went away): a background reader takes the process's
/// stdio over, so it runs on with its output read.
pub fn hand_over(
    ctx: &Ctx,
    id: &str,
    session: Session,
    fifo_dir: &Path,
    what: Detached,
) -> Result<(), SessionError> {
    session.hand_over(spawn_reader(ctx, id, fifo_dir, what)?)
}

/// Starts container `id`'s task with its stdio as FIFOs held by a background reader (which logs
/// the output, keeps stdin open and serves the attach socket). `before_start` runs once the
/// reader is spawned and the task created, before the task starts: attach clients join the
/// reader's socket then, so they miss no output. A reader that fails stops the task again.
pub async fn start_held(
    ctx: &Ctx,
    id: &str,
    held: Held,
    rootfs: Vec<Mount>,
    before_start: impl std::future::Future<Output = ()>,
) -> Result<u32, HeldError> {
    let dir = session::fifo::dir(&ctx.store.container_dir(id), "");
    let stdio = session::fifo::create(&dir, held.stdin, held.tty)?;
    let what = Detached::Container {
        rm: held.rm,
        stdin_once: held.stdin_once,
    };
    let reader = spawn_reader(ctx, id, &dir, what)?;
    // The reader comes up while containerd creates the task; `before_start` (attaches joining
    // it) runs between the creation and the start, before the process's first output.
    let started = super::start::start_task_then(ctx, id, rootfs, &stdio, before_start).await;
    let pid = match started {
        Ok(pid) => pid,
        Err(e) => {
            reader.abandon();
            return Err(e.into());
        }
    };
    // The reader says it is ready once the shim opened the FIFOs (at the task's creation).
    let (ready, reader) = tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        (reader.ready(), reader)
    })
    .await
    .map_err(SessionError::Waiter)?;
    if !ready {
        let why = reader.failure();
        // Without its reader nothing would hold its stdio: stop it rather than leave it so.
        let _ = ctx.client.kill_task(id, 9, true).await;
        let _ = ctx.client.wait_task(id).await;
        let _ = ctx.client.delete_task(id).await;
        return Err(HeldError::ReaderFailed {
            id: id.to_string(),
            why,
        });
    }
    Ok(pid)
}
