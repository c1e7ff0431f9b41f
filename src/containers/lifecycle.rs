//! A container's life on containerd over gRPC: the rootfs snapshot (Snapshots.Prepare from the
//! image's chain id), the container record (spec + labels), and the task (create with stdio,
//! start, wait, kill, delete). `create` undoes what it did when a later step fails.

use std::collections::HashMap;
use std::fmt;

use containerd_client::services::v1::{
    container::Runtime,
    snapshots::{
        MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
        UsageRequest,
    },
    CloseIoRequest, Container, CreateContainerRequest, CreateRequest as LeaseCreateRequest,
    CreateTaskRequest, DeleteContainerRequest, DeleteProcessRequest,
    DeleteRequest as LeaseDeleteRequest, DeleteTaskRequest, ExecProcessRequest,
    GetContainerRequest, GetRequest, KillRequest, ListContainersRequest, ListPidsRequest,
    ListTasksRequest, PauseTaskRequest, ResizePtyRequest, ResumeTaskRequest, StartRequest,
    UpdateContainerRequest, WaitRequest,
};
use containerd_client::types::v1::Process;
use containerd_client::types::Mount;
use oci_spec::runtime::Spec;

use crate::client::{self, RpcResult};

/// How long a create's lease lives at most (it is ended as soon as the record exists).
const CREATE_LEASE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The runtime every container uses.
pub const RUNTIME: &str = "io.containerd.runc.v2";
/// The type URL containerd expects for an OCI spec in a container record.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// A containerd call failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Containerd(#[from] client::Error),
    /// The runtime could not start a task's or an exec's process.
    #[error("{source}")]
    NotStarted {
        cause: StartFailure,
        source: client::Error,
    },
    #[error("serializing the OCI spec: {0}")]
    Spec(#[from] serde_json::Error),
}

impl LifecycleError {
    /// containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, LifecycleError::Containerd(e) if e.is_not_found())
    }

    /// Why a process could not be started, when that is what failed.
    pub fn start_failure(&self) -> Option<StartFailure> {
        match self {
            LifecycleError::NotStarted { cause, .. } => Some(*cause),
            _ => None,
        }
    }
}

/// Why the runtime could not start a process, as Docker tells the cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// The command does not exist (Docker's exit code 127).
    CommandNotFound,
    /// The command exists but cannot be executed (126).
    CannotInvoke,
    /// Anything else (125).
    Other,
}

impl StartFailure {
    /// The runtime's reason, read once where containerd hands it over: runc reports the
    /// failed exec only in the status message, as Docker's daemon also reads it.
    fn of(status: &tonic::Status) -> StartFailure {
        let m = status.message().to_ascii_lowercase();
        let exec = m.contains("exec:") || m.contains("starting container process");
        if m.contains("executable file not found")
            || (exec && m.contains("no such file or directory"))
        {
            StartFailure::CommandNotFound
        } else if exec && (m.contains("permission denied") || m.contains("exec format error")) {
            StartFailure::CannotInvoke
        } else {
            StartFailure::Other
        }
    }

    /// Docker's exit code for it.
    pub fn exit_code(self) -> u8 {
        match self {
            StartFailure::CommandNotFound => 127,
            StartFailure::CannotInvoke => 126,
            StartFailure::Other => 125,
        }
    }
}

/// Why the runtime could not start a process, found anywhere in `err`'s chain.
pub fn start_failure_of(err: &anyhow::Error) -> Option<StartFailure> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<LifecycleError>()?.start_failure())
}

/// Docker's exit code for a container whose start failed with `err`: 127 or 126 when the
/// runtime could not start the process, else 128.
pub fn failed_start_code(err: &anyhow::Error) -> u32 {
    start_failure_of(err).map_or(128, |f| u32::from(f.exit_code()))
}

/// A failed task create/start or exec: typed by why the process did not start.
fn not_started(e: client::Error) -> LifecycleError {
    let cause = match &e {
        client::Error::Rpc { status, .. } => StartFailure::of(status),
        _ => StartFailure::Other,
    };
    LifecycleError::NotStarted { cause, source: e }
}

/// The container a call was about, as lifecycle messages name it ("containerd task start for ID").
struct For<'a>(&'a str);

impl fmt::Display for For<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "for {}", self.0)
    }
}

/// Where the task's stdio goes: FIFO paths, or `file://`/`binary://` URIs.
#[derive(Debug, Clone, Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// What `create` needs besides the spec.
#[derive(Debug, Clone)]
pub struct NewContainer {
    pub id: String,
    pub image: String,
    /// The parent of the container's snapshot: the chain id of the image's top layer, or the
    /// remapped copy of it a `--userns=keep-id` container starts from.
    pub parent_chain_id: String,
    pub snapshotter: String,
    pub labels: HashMap<String, String>,
    /// The runc shim's options (another OCI runtime program); `None` for runc.
    pub shim_options: Option<prost_types::Any>,
}

/// Containers and their tasks in one containerd namespace.
#[derive(Debug, Clone)]
pub struct Client {
    containerd: client::Client,
}

impl Client {
    pub fn new(containerd: client::Client) -> Client {
        Client { containerd }
    }

    /// The containerd client underneath, for the services this one does not wrap.
    pub fn containerd(&self) -> &client::Client {
        &self.containerd
    }

    /// The container's writable snapshot on top of the image, keyed by the container id, under
    /// `lease` when given (nothing references the snapshot until the container record exists:
    /// without a lease, a garbage collection in between removes it).
    pub async fn prepare_snapshot(
        &self,
        c: &NewContainer,
        lease: Option<&str>,
    ) -> Result<Vec<Mount>, LifecycleError> {
        let containerd = match lease {
            Some(l) => self.containerd.with_lease(l)?,
            None => self.containerd.clone(),
        };
        let resp = containerd
            .snapshots()
            .prepare(PrepareSnapshotRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.id.clone(),
                parent: c.parent_chain_id.clone(),
                labels: HashMap::new(),
            })
            .await
            .op("snapshot prepare", For(&c.id))?;
        Ok(resp.into_inner().mounts)
    }

    /// A short lease (it expires by itself within the hour if we die) for what a create makes.
    async fn create_lease(&self, id: &str) -> Result<String, LifecycleError> {
        let lease = format!("burrow-create-{id}");
        let expire =
            crate::images::time::rfc3339(std::time::SystemTime::now() + CREATE_LEASE_EXPIRY);
        self.containerd
            .leases()
            .create(LeaseCreateRequest {
                id: lease.clone(),
                labels: HashMap::from([("containerd.io/gc.expire".to_owned(), expire)]),
            })
            .await
            .op("lease create", For(&lease))?;
        Ok(lease)
    }

    async fn delete_lease(&self, lease: &str) {
        let req = LeaseDeleteRequest {
            id: lease.to_string(),
            sync: false,
        };
        if let Err(s) = self.containerd.leases().delete(req).await {
            tracing::warn!(lease, "ending the lease of a create: {}", s.message());
        }
    }

    pub async fn remove_snapshot(
        &self,
        snapshotter: &str,
        key: &str,
    ) -> Result<(), LifecycleError> {
        self.containerd
            .snapshots()
            .remove(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            })
            .await
            .op("snapshot remove", For(key))?;
        Ok(())
    }

    /// Snapshot, then the container record; the snapshot is removed again if the record fails.
    /// Returns the rootfs mounts for the task.
    pub async fn create(
        &self,
        c: &NewContainer,
        spec: &Spec,
    ) -> Result<Vec<Mount>, LifecycleError> {
        let spec_any = prost_types::Any {
            type_url: SPEC_TYPE_URL.to_string(),
            value: serde_json::to_vec(spec)?,
        };
        let lease = self.create_lease(&c.id).await?;
        let made = self.create_leased(c, spec_any, &lease).await;
        // The container record references the snapshot now (or both are gone).
        self.delete_lease(&lease).await;
        made
    }

    async fn create_leased(
        &self,
        c: &NewContainer,
        spec_any: prost_types::Any,
        lease: &str,
    ) -> Result<Vec<Mount>, LifecycleError> {
        let mounts = self.prepare_snapshot(c, Some(lease)).await?;
        let container = Container {
            id: c.id.clone(),
            labels: c.labels.clone(),
            image: c.image.clone(),
            runtime: Some(Runtime {
                name: RUNTIME.to_string(),
                options: c.shim_options.clone(),
            }),
            spec: Some(spec_any),
            snapshotter: c.snapshotter.clone(),
            snapshot_key: c.id.clone(),
            ..Default::default()
        };
        let created = self
            .containerd
            .containers()
            .create(CreateContainerRequest {
                container: Some(container),
            })
            .await
            .op("container create", For(&c.id));
        if let Err(err) = created {
            if let Err(err) = self.remove_snapshot(&c.snapshotter, &c.id).await {
                tracing::warn!(%err, id = %c.id, "removing the snapshot of a failed create");
            }
            return Err(err.into());
        }
        Ok(mounts)
    }

    pub async fn get(&self, id: &str) -> Result<Container, LifecycleError> {
        let resp = self
            .containerd
            .containers()
            .get(GetContainerRequest { id: id.to_string() })
            .await
            .op("container get", For(id))?;
        Ok(resp.into_inner().container.unwrap_or_default())
    }

    pub async fn list(&self, filters: Vec<String>) -> Result<Vec<Container>, LifecycleError> {
        let resp = self
            .containerd
            .containers()
            .list(ListContainersRequest { filters })
            .await
            .op("container list", For("*"))?;
        Ok(resp.into_inner().containers)
    }

    /// Removes the record and its snapshot (absent ones are fine).
    pub async fn delete(&self, id: &str, snapshotter: &str) -> Result<(), LifecycleError> {
        self.containerd
            .containers()
            .delete(DeleteContainerRequest { id: id.to_string() })
            .await
            .optional_op("container delete", For(id))?;
        match self.remove_snapshot(snapshotter, id).await {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Creates the task (the shim and runc create); returns its pid.
    pub async fn create_task(
        &self,
        id: &str,
        rootfs: Vec<Mount>,
        stdio: &Stdio,
    ) -> Result<u32, LifecycleError> {
        let msg = CreateTaskRequest {
            container_id: id.to_string(),
            rootfs,
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            terminal: stdio.terminal,
            ..Default::default()
        };
        let resp = self
            .containerd
            .tasks()
            .create(msg)
            .await
            .op("task create", For(id))
            .map_err(not_started)?;
        Ok(resp.into_inner().pid)
    }

    pub async fn start_task(&self, id: &str) -> Result<u32, LifecycleError> {
        let msg = StartRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        };
        let resp = self
            .containerd
            .tasks()
            .start(msg)
            .await
            .op("task start", For(id))
            .map_err(not_started)?;
        Ok(resp.into_inner().pid)
    }

    /// Waits for the task's init process to exit and returns its exit status.
    pub async fn wait_task(&self, id: &str) -> Result<u32, LifecycleError> {
        let msg = WaitRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        };
        let resp = self
            .containerd
            .tasks()
            .wait(msg)
            .await
            .op("task wait", For(id))?;
        Ok(resp.into_inner().exit_status)
    }

    pub async fn kill_task(&self, id: &str, signal: u32, all: bool) -> Result<(), LifecycleError> {
        let msg = KillRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            signal,
            all,
        };
        self.containerd
            .tasks()
            .kill(msg)
            .await
            .op("task kill", For(id))?;
        Ok(())
    }

    /// Deletes a stopped task; returns its exit status, or `None` if there was no task or
    /// another client deleted it meanwhile (a container's exit monitor and `stop`, `start` or
    /// `rm` may both delete the task that just exited: waited for, as it is gone after either).
    pub async fn delete_task(&self, id: &str) -> Result<Option<u32>, LifecycleError> {
        let deleted = self
            .containerd
            .tasks()
            .delete(DeleteTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .optional_op("task delete", For(id));
        let err = match deleted {
            Ok(resp) => return Ok(resp.map(|r| r.into_inner().exit_status)),
            Err(e) => e,
        };
        // Another delete's teardown (the network hook) takes a moment; a running task's error
        // stands at once.
        for _ in 0..100 {
            match self.get_task(id).await? {
                None => return Ok(None),
                Some(t) if t.status == containerd_client::types::v1::Status::Stopped as i32 => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await
                }
                Some(_) => break,
            }
        }
        Err(err.into())
    }

    /// The mounts of an existing snapshot (the container's rootfs, for a new task).
    pub async fn snapshot_mounts(
        &self,
        snapshotter: &str,
        key: &str,
    ) -> Result<Vec<Mount>, LifecycleError> {
        let resp = self
            .containerd
            .snapshots()
            .mounts(MountsRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            })
            .await
            .op("snapshot mounts", For(key))?;
        Ok(resp.into_inner().mounts)
    }

    /// Bytes used by a snapshot alone, and with its parents (Docker's size and virtual size).
    pub async fn snapshot_sizes(
        &self,
        snapshotter: &str,
        key: &str,
    ) -> Result<(u64, u64), LifecycleError> {
        let mut client = self.containerd.snapshots();
        let mut own = None;
        let mut total = 0u64;
        let mut cur = key.to_string();
        // Bounded walk up the chain (images have far fewer layers).
        for _ in 0..256 {
            let usage = client
                .usage(UsageRequest {
                    snapshotter: snapshotter.to_string(),
                    key: cur.clone(),
                })
                .await
                .op("snapshot usage", For(&cur))?
                .into_inner();
            let size = u64::try_from(usage.size).unwrap_or(0);
            own.get_or_insert(size);
            total += size;
            let info = client
                .stat(StatSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    key: cur.clone(),
                })
                .await
                .op("snapshot stat", For(&cur))?
                .into_inner()
                .info;
            match info.map(|i| i.parent).filter(|p| !p.is_empty()) {
                Some(p) => cur = p,
                None => break,
            }
        }
        Ok((own.unwrap_or(0), total))
    }

    /// Every task in the namespace.
    pub async fn list_tasks(&self) -> Result<Vec<Process>, LifecycleError> {
        let resp = self
            .containerd
            .tasks()
            .list(ListTasksRequest::default())
            .await
            .op("task list", For("*"))?;
        Ok(resp.into_inner().tasks)
    }

    /// The container's task, or `None` when it has none.
    pub async fn get_task(&self, id: &str) -> Result<Option<Process>, LifecycleError> {
        let resp = self
            .containerd
            .tasks()
            .get(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            })
            .await
            .optional_op("task get", For(id))?;
        Ok(resp.and_then(|r| r.into_inner().process))
    }

    /// Replaces the container's labels (the rest of the record is kept).
    pub async fn update_labels(
        &self,
        mut container: Container,
        labels: HashMap<String, String>,
    ) -> Result<(), LifecycleError> {
        container.labels = labels;
        self.update_field(container, "labels").await
    }

    /// Replaces the container's spec (the next task is made from it).
    /// Changes a running task's cgroup limits.
    pub async fn update_task_resources(
        &self,
        id: &str,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), LifecycleError> {
        let msg = containerd_client::services::v1::UpdateTaskRequest {
            container_id: id.to_string(),
            resources: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
                    .to_string(),
                value: serde_json::to_vec(resources)?,
            }),
            ..Default::default()
        };
        self.containerd
            .tasks()
            .update(msg)
            .await
            .op("task update", For(id))?;
        Ok(())
    }

    pub async fn update_spec(&self, id: &str, spec: &Spec) -> Result<(), LifecycleError> {
        let container = Container {
            id: id.to_string(),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.to_string(),
                value: serde_json::to_vec(spec)?,
            }),
            ..Default::default()
        };
        self.update_field(container, "spec").await
    }

    /// Writes one field of `container`'s record (containerd keeps the others).
    async fn update_field(&self, container: Container, field: &str) -> Result<(), LifecycleError> {
        let id = container.id.clone();
        self.containerd
            .containers()
            .update(UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![field.to_string()],
                }),
            })
            .await
            .op("container update", For(&id))?;
        Ok(())
    }

    pub async fn pause(&self, id: &str) -> Result<(), LifecycleError> {
        self.containerd
            .tasks()
            .pause(PauseTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .op("task pause", For(id))?;
        Ok(())
    }

    pub async fn resume(&self, id: &str) -> Result<(), LifecycleError> {
        self.containerd
            .tasks()
            .resume(ResumeTaskRequest {
                container_id: id.to_string(),
            })
            .await
            .op("task resume", For(id))?;
        Ok(())
    }

    /// Host pids of the task's processes.
    pub async fn pids(&self, id: &str) -> Result<Vec<u32>, LifecycleError> {
        let resp = self
            .containerd
            .tasks()
            .list_pids(ListPidsRequest {
                container_id: id.to_string(),
            })
            .await
            .op("task pids", For(id))?;
        Ok(resp.into_inner().processes.iter().map(|p| p.pid).collect())
    }

    /// Adds an exec process (an OCI process spec) to a running task; start it with `start_exec`.
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &oci_spec::runtime::Process,
        stdio: &Stdio,
    ) -> Result<(), LifecycleError> {
        let msg = ExecProcessRequest {
            container_id: id.to_string(),
            stdin: stdio.stdin.clone(),
            stdout: stdio.stdout.clone(),
            stderr: stdio.stderr.clone(),
            terminal: stdio.terminal,
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".to_string(),
                value: serde_json::to_vec(process)?,
            }),
            exec_id: exec_id.to_string(),
        };
        self.containerd
            .tasks()
            .exec(msg)
            .await
            .op("exec", For(id))
            .map_err(not_started)?;
        Ok(())
    }

    /// Starts a process: the task's init (`exec_id` empty) or an exec.
    pub async fn start_exec(&self, id: &str, exec_id: &str) -> Result<u32, LifecycleError> {
        let resp = self
            .containerd
            .tasks()
            .start(StartRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .op("start", For(id))
            .map_err(not_started)?;
        Ok(resp.into_inner().pid)
    }

    /// Waits for a process (init when `exec_id` is empty) and returns its exit status.
    pub async fn wait_exec(&self, id: &str, exec_id: &str) -> Result<u32, LifecycleError> {
        let resp = self
            .containerd
            .tasks()
            .wait(WaitRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .op("wait", For(id))?;
        Ok(resp.into_inner().exit_status)
    }

    pub async fn resize(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), LifecycleError> {
        self.containerd
            .tasks()
            .resize_pty(ResizePtyRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                width,
                height,
            })
            .await
            .op("resize", For(id))?;
        Ok(())
    }

    /// Closes a process's stdin (the FIFO stays open in the shim, so EOF must be sent this way).
    pub async fn close_stdin(&self, id: &str, exec_id: &str) -> Result<(), LifecycleError> {
        self.containerd
            .tasks()
            .close_io(CloseIoRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                stdin: true,
            })
            .await
            .op("close stdin", For(id))?;
        Ok(())
    }

    /// Removes a finished exec process.
    pub async fn delete_exec(&self, id: &str, exec_id: &str) -> Result<(), LifecycleError> {
        self.containerd
            .tasks()
            .delete_process(DeleteProcessRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
            .await
            .optional_op("exec delete", For(id))?;
        Ok(())
    }
}

#[cfg(test)]
mod start_failure_tests {
    use super::*;

    fn of(m: &str) -> StartFailure {
        StartFailure::of(&tonic::Status::unknown(m))
    }

    #[test]
    fn runtime_failures_get_dockers_codes() {
        let not_found = of(
            r#"OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#,
        );
        assert_eq!(not_found, StartFailure::CommandNotFound);
        assert_eq!(not_found.exit_code(), 127);
        let denied = of(r#"unable to start container process: exec: "/etc": permission denied"#);
        assert_eq!(denied.exit_code(), 126);
        let missing = of(
            r#"unable to start container process: exec: "/x": stat /x: no such file or directory"#,
        );
        assert_eq!(missing.exit_code(), 127);
        assert_eq!(
            of("failed to mount: no such file or directory").exit_code(),
            125
        );
        let e = not_started(client::Error::rpc(
            "task start",
            "for x",
            tonic::Status::unknown("exec: \"a\": executable file not found in $PATH"),
        ));
        assert_eq!(e.start_failure(), Some(StartFailure::CommandNotFound));
        assert!(
            e.to_string().starts_with("containerd task start for x: "),
            "{e}"
        );
    }
}
