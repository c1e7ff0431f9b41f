//! The process a session is attached to: a container's task, or one of its exec processes, and
//! the containerd calls a session makes on it.

use crate::containers::lifecycle::{Client, LifecycleError};

/// A container's task (`exec_id` empty) or one of its exec processes, on containerd.
#[derive(Debug, Clone)]
pub struct Target {
    client: Client,
    id: String,
    exec_id: String,
}

impl Target {
    /// The task (main process) of container `id`.
    pub fn task(client: Client, id: &str) -> Target {
        Target {
            client,
            id: id.to_string(),
            exec_id: String::new(),
        }
    }

    /// The exec process `exec_id` of container `id`.
    pub fn exec(client: Client, id: &str, exec_id: &str) -> Target {
        Target {
            client,
            id: id.to_string(),
            exec_id: exec_id.to_string(),
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

    /// Waits for the process's exit and returns its status.
    pub async fn wait(&self) -> Result<u32, LifecycleError> {
        if self.is_task() {
            self.client.wait_task(&self.id).await
        } else {
            self.client.wait_exec(&self.id, &self.exec_id).await
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
