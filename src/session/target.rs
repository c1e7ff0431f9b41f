//! The process a session is attached to: a container's task, or one of its exec processes, and
//! the containerd calls a session makes on it.

use crate::containers::lifecycle::{Client, LifecycleError};
use crate::containers::{record, Ctx};
use containerd_client::types::v1::Status;

/// A container's task (`exec_id` empty) or one of its exec processes, on containerd.
#[derive(Debug, Clone)]
pub struct Target {
    client: Client,
    id: String,
    exec_id: String,
    /// Where the task's exit is recorded when it is deleted (a task's only).
    exit_file: Option<std::path::PathBuf>,
}

impl Target {
    /// The task (main process) of container `id`.
    pub fn task(ctx: &Ctx, id: &str) -> Target {
        Target {
            client: ctx.client.clone(),
            id: id.to_string(),
            exec_id: String::new(),
            exit_file: Some(record::exit_file(ctx, id)),
        }
    }

    /// The exec process `exec_id` of container `id`.
    pub fn exec(client: Client, id: &str, exec_id: &str) -> Target {
        Target {
            client,
            id: id.to_string(),
            exec_id: exec_id.to_string(),
            exit_file: None,
        }
    }

    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The exec's id; empty for the task.
    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    pub fn is_task(&self) -> bool {
        self.exec_id.is_empty()
    }

    /// Waits for the process's exit and returns its status. When a task's wait breaks off
    /// because the exited task was deleted meanwhile (its exit monitor releases it at once: the
    /// shim goes, and the wait with it), the status the deleter recorded.
    pub async fn wait(&self) -> Result<u32, LifecycleError> {
        if !self.is_task() {
            return self.client.wait_exec(&self.id, &self.exec_id).await;
        }
        let err = match self.client.wait_task(&self.id).await {
            Ok(code) => return Ok(code),
            Err(e) => e,
        };
        match self.client.get_task(&self.id).await? {
            Some(t) if t.status == Status::Stopped as i32 => Ok(t.exit_status),
            None => match self.exit_file.as_deref().and_then(record::read_exit) {
                Some((code, _)) => Ok(code),
                None => Err(err),
            },
            Some(_) => Err(err),
        }
    }

    /// Gives the process's pty this size; a failure is only logged (the process runs on).
    pub async fn resize(&self, rows: u16, cols: u16) {
        let (cols, rows) = (u32::from(cols), u32::from(rows));
        if let Err(err) = self
            .client
            .resize(&self.id, &self.exec_id, cols, rows)
            .await
        {
            tracing::debug!(%err, "resizing the pty");
        }
    }

    /// Sends the process's stdin its end (containerd's CloseIO).
    pub(crate) async fn close_stdin(&self) {
        if let Err(err) = self.client.close_stdin(&self.id, &self.exec_id).await {
            tracing::debug!(%err, "closing stdin");
        }
    }

    /// Sends the container's task signal `sig`.
    pub(crate) async fn signal_task(&self, sig: u32) {
        if let Err(err) = self.client.kill_task(&self.id, sig, false).await {
            tracing::debug!(%err, "passing signal {sig} on to {}", self.id);
        }
    }
}
