//! A container's record as burrow reads and changes it: its state (from the task, or the exit
//! recorded when the task went), what its labels and stored spec say (name, ports, networks,
//! anonymous volumes, process), and removing it with everything it owns.

use std::collections::HashMap;

use anyhow::Context;
use containerd_client::services::v1::Container;
use containerd_client::types::v1::{Process, Status};

use super::labels;
use super::Ctx;
use crate::network::ports::PortMapping;

/// A container's state as `ps` and `inspect` show it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Created,
    Running {
        pid: u32,
    },
    Paused {
        pid: u32,
    },
    Exited {
        code: u32,
        at: Option<std::time::SystemTime>,
    },
}

impl State {
    pub fn from_task(task: Option<&Process>) -> State {
        let Some(t) = task else {
            return State::Created;
        };
        match Status::try_from(t.status).unwrap_or(Status::Unknown) {
            Status::Running | Status::Pausing => State::Running { pid: t.pid },
            Status::Paused => State::Paused { pid: t.pid },
            Status::Stopped => State::Exited {
                code: t.exit_status,
                at: t.exited_at.as_ref().map(timestamp),
            },
            _ => State::Created,
        }
    }

    /// Docker's lowercase status word.
    pub fn word(&self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running { .. } => "running",
            State::Paused { .. } => "paused",
            State::Exited { .. } => "exited",
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, State::Running { .. } | State::Paused { .. })
    }
}

pub fn timestamp(t: &prost_types::Timestamp) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
}

/// The container's task state; without a task, the exit recorded when its last task was deleted.
pub async fn state(ctx: &Ctx, id: &str) -> anyhow::Result<State> {
    Ok(with_recorded_exit(
        ctx,
        id,
        State::from_task(ctx.client.get_task(id).await?.as_ref()),
    ))
}

const EXIT_FILE: &str = "exit.json";

/// Replaces `Created` by the recorded exit, if the container ran before.
pub fn with_recorded_exit(ctx: &Ctx, id: &str, st: State) -> State {
    if st != State::Created {
        return st;
    }
    recorded_exit(ctx, id).unwrap_or(st)
}

/// How the container's last deleted task exited (`State::Exited`), if one was recorded; a
/// container started again keeps it until its new task ends. When a start failed since, its
/// code is the exit code, as Docker shows (`Exited (127)`).
pub fn recorded_exit(ctx: &Ctx, id: &str) -> Option<State> {
    let (code, at) = read_exit(&exit_file(ctx, id))?;
    let failed = start_error(ctx, id).map(|e| e.code);
    Some(State::Exited {
        code: failed.unwrap_or(code),
        at,
    })
}

/// Where the exit of container `id`'s last deleted task is recorded.
pub fn exit_file(ctx: &Ctx, id: &str) -> std::path::PathBuf {
    ctx.store.container_dir(id).join(EXIT_FILE)
}

/// The exit status and time recorded in `path` (see [`exit_file`]).
pub fn read_exit(path: &std::path::Path) -> Option<(u32, Option<std::time::SystemTime>)> {
    let v = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())?;
    let at = v["at"]
        .as_f64()
        .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s));
    Some((v["code"].as_u64().unwrap_or(0) as u32, at))
}

const START_ERROR_FILE: &str = "start-error.json";

/// Why the container's last start failed (Docker's `State.Error`), with Docker's exit code for
/// it (127 not found, 126 not executable, else 128).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartError {
    pub code: u32,
    pub message: String,
}

/// Records that a start of `id` failed with `err` (kept until a start succeeds).
pub fn record_start_error(ctx: &Ctx, id: &str, err: &anyhow::Error) {
    let record = StartError {
        code: super::lifecycle::failed_start_code(err),
        message: format!("{err:#}"),
    };
    let dir = ctx.store.container_dir(id);
    if let (true, Ok(json)) = (dir.is_dir(), serde_json::to_vec(&record)) {
        let _ = std::fs::write(dir.join(START_ERROR_FILE), json);
    }
}

/// Forgets a failed start of `id` (its task started since).
pub fn clear_start_error(ctx: &Ctx, id: &str) {
    let _ = std::fs::remove_file(ctx.store.container_dir(id).join(START_ERROR_FILE));
}

/// Why the last start of `id` failed, if it did and no start succeeded since.
pub fn start_error(ctx: &Ctx, id: &str) -> Option<StartError> {
    let bytes = std::fs::read(ctx.store.container_dir(id).join(START_ERROR_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Deletes the container's task (its poststop hook detaches networks and ports) and records
/// how it exited, so `ps -a` and `inspect` still show it.
pub async fn delete_task_recording(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let _lock = lock_task(ctx, id).await;
    delete_recording(ctx, id, None).await
}

/// [`delete_task_recording`] for container `id`'s exit monitor: only when its task is still the
/// exited one with `pid` that the monitor watched (not one someone deleted since, nor a newer
/// start's).
pub async fn release_exited(ctx: &Ctx, id: &str, pid: u32) -> anyhow::Result<()> {
    let _lock = lock_task(ctx, id).await;
    delete_recording(ctx, id, Some(pid)).await
}

/// Container `id`'s task lock ([`super::store::Store::lock_task`]), taken off the runtime's
/// threads.
async fn lock_task(ctx: &Ctx, id: &str) -> Option<nix::fcntl::Flock<std::fs::File>> {
    let (store, id) = (ctx.store.clone(), id.to_string());
    tokio::task::spawn_blocking(move || store.lock_task(&id))
        .await
        .ok()
        .flatten()
}

/// Deletes container `id`'s stopped task and records its exit (with `only`: if it is the task
/// with that pid). The caller holds the task lock.
async fn delete_recording(ctx: &Ctx, id: &str, only: Option<u32>) -> anyhow::Result<()> {
    let task = ctx.client.get_task(id).await?;
    let stopped = task
        .as_ref()
        .filter(|t| matches!(State::from_task(Some(t)), State::Exited { .. }));
    if let Some(pid) = only {
        if stopped.is_none_or(|t| t.pid != pid) {
            return Ok(());
        }
    }
    // Recorded before the delete, so that `wait`, `ps` or `inspect` looking between the two
    // still see the exit (not a container that never started).
    if let Some(t) = stopped {
        record_exit(ctx, id, t.exit_status, t.exited_at.as_ref().map(timestamp));
    }
    let code = ctx.client.delete_task(id).await?;
    if let Some(code) = code {
        if stopped.is_none() {
            record_exit(ctx, id, code, None);
        }
        release_held(ctx, id).await;
    }
    Ok(())
}

/// Records how container `id`'s task exited (`at`: when, else now) for `ps -a` and `inspect`.
fn record_exit(ctx: &Ctx, id: &str, code: u32, at: Option<std::time::SystemTime>) {
    let secs = at
        .unwrap_or_else(std::time::SystemTime::now)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let dir = ctx.store.container_dir(id);
    if dir.is_dir() {
        let _ = std::fs::write(
            dir.join(EXIT_FILE),
            serde_json::json!({"code": code, "at": secs}).to_string(),
        );
    }
}

/// What a stopped container held let go: its shareable /dev/shm, and its filesystem volumes
/// where no other container uses them.
async fn release_held(ctx: &Ctx, id: &str) {
    super::ipc::unmount_shm(ctx, id);
    if let Err(err) = super::volumes::release_unused(ctx, id).await {
        tracing::warn!(%err, "unmounting the volumes a stopped container used");
    }
}

/// The name label, or the short id.
pub fn name_of(c: &Container) -> String {
    c.labels
        .get(labels::NAME)
        .cloned()
        .unwrap_or_else(|| short_id(&c.id).to_string())
}

pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

pub fn ports_of(c: &Container) -> Vec<PortMapping> {
    c.labels
        .get(labels::PORTS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// One of a running container's ports as Docker shows it: published (with its binding) or
/// only exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownPort {
    pub container_port: u16,
    pub protocol: String,
    pub binding: Option<PortMapping>,
}

impl From<PortMapping> for ShownPort {
    fn from(p: PortMapping) -> ShownPort {
        ShownPort {
            container_port: p.container_port,
            protocol: p.protocol.clone(),
            binding: Some(p),
        }
    }
}

impl ShownPort {
    /// Docker's `ps` rendering: `0.0.0.0:8080->80/tcp`, or `80/tcp` when only exposed.
    pub fn display(&self) -> String {
        match &self.binding {
            Some(b) => b.display(),
            None => format!("{}/{}", self.container_port, self.protocol),
        }
    }
}

/// The ports Docker shows for a container (inspect's `NetworkSettings.Ports`, `ps`'s PORTS,
/// `port`): while it runs (or is paused), each published mapping, then each port it exposes
/// (`exposed`: `80/tcp` keys) without one, when it has a network of its own; once stopped,
/// none, as its bindings went with its network.
pub fn shown_ports(
    c: &Container,
    state: &State,
    exposed: &std::collections::BTreeSet<String>,
) -> Vec<ShownPort> {
    if !state.is_running() {
        return Vec::new();
    }
    let published = ports_of(c);
    let mut out: Vec<ShownPort> = published.iter().cloned().map(ShownPort::from).collect();
    let own_network = networks_of(c)
        .iter()
        .any(|n| n != "host" && n != "none" && !n.starts_with("container:"));
    if !own_network {
        return out;
    }
    for key in exposed {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !published
            .iter()
            .any(|p| p.container_port == port && p.protocol == proto)
        {
            out.push(ShownPort {
                container_port: port,
                protocol: proto.to_string(),
                binding: None,
            });
        }
    }
    out
}

/// Volumes `-v /path` created for this container alone (removed by `rm -v` and `--rm`).
pub fn anonymous_volumes(c: &Container) -> Vec<String> {
    c.labels
        .get(labels::ANONYMOUS_VOLUMES)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

pub fn networks_of(c: &Container) -> Vec<String> {
    c.labels
        .get(labels::NETWORKS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// Whether `c` was created to be removed when it exits (`run --rm`, Docker's AutoRemove).
pub fn auto_removed(c: &Container) -> bool {
    c.labels
        .get(labels::AUTO_REMOVE)
        .is_some_and(|v| v == "true")
}

/// The OCI spec stored in the container record.
pub fn spec_of(c: &Container) -> Option<oci_spec::runtime::Spec> {
    c.spec
        .as_ref()
        .and_then(|a| serde_json::from_slice(&a.value).ok())
}

/// Only the process's args and terminal flag of a container's spec: what `ps` and `attach`
/// need, without building the whole spec (its seccomp rules make up most of it).
#[derive(Debug, Default, serde::Deserialize)]
pub struct ProcessOnly {
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub terminal: bool,
}

pub fn process_of(c: &Container) -> ProcessOnly {
    #[derive(serde::Deserialize)]
    struct Outer {
        #[serde(default)]
        process: Option<ProcessOnly>,
    }
    c.spec
        .as_ref()
        .and_then(|a| serde_json::from_slice::<Outer>(&a.value).ok())
        .and_then(|o| o.process)
        .unwrap_or_default()
}

/// Removes everything a container owns: its task (running the poststop hook that detaches its
/// networks and ports), record, snapshot, name and state dir.
pub async fn remove_container(ctx: &Ctx, c: &Container, force: bool) -> anyhow::Result<()> {
    remove_record(ctx, c, force).await?;
    ctx.store.remove_dir(&c.id)?;
    Ok(())
}

/// [`remove_container`] but for the state dir, which the caller removes.
pub async fn remove_record(ctx: &Ctx, c: &Container, force: bool) -> anyhow::Result<()> {
    let st = state(ctx, &c.id).await?;
    if st.is_running() {
        if !force {
            anyhow::bail!(
                "container {} is running: stop it first (`burrow stop {}`) or use `burrow rm -f`",
                name_of(c),
                name_of(c)
            );
        }
        set_restart_status(ctx, c, "stopped").await?;
        if matches!(st, State::Paused { .. }) {
            let _ = ctx.client.resume(&c.id).await;
        }
        let _ = ctx.client.kill_task(&c.id, 9, false).await;
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            ctx.client.wait_task(&c.id),
        )
        .await;
    }
    let deleted = ctx
        .client
        .delete_task(&c.id)
        .await
        .with_context(|| format!("removing the task of {}", name_of(c)))?;
    if deleted.is_some() {
        release_held(ctx, &c.id).await;
    }
    ctx.client
        .delete(&c.id, &c.snapshotter)
        .await
        .with_context(|| format!("removing container {}", name_of(c)))?;
    if let Some(name) = c.labels.get(labels::NAME) {
        ctx.store.release_name(name, &c.id);
    }
    Ok(())
}

/// Sets the restart monitor's status label (only on containers that have a restart policy).
pub async fn set_restart_status(ctx: &Ctx, c: &Container, status: &str) -> anyhow::Result<()> {
    let mut l = c.labels.clone();
    let mut changed = false;
    for key in [labels::RESTART_STATUS, labels::RESTART_WANTED] {
        if l.get(key).is_some_and(|s| s != status) {
            l.insert(key.into(), status.into());
            changed = true;
        }
    }
    if changed {
        ctx.client.update_labels(c.clone(), l).await?;
    }
    Ok(())
}

/// The container's labels, with the empty-valued ones containerd does not keep (see
/// [`labels::EMPTY_LABELS`]) back.
pub fn labels_of(c: &Container) -> HashMap<String, String> {
    let mut all = c.labels.clone();
    let empty: Vec<String> = c
        .labels
        .get(labels::EMPTY_LABELS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    for k in empty {
        all.entry(k).or_default();
    }
    all
}

/// The labels the user gave the container (theirs, Compose's, an image's), without burrow's
/// and nerdctl's own bookkeeping (`burrow/...`, `nerdctl/...`), as Docker shows them.
pub fn user_labels_of(c: &Container) -> HashMap<String, String> {
    let mut all = labels_of(c);
    all.retain(|k, _| !labels::is_internal(k));
    all
}

/// Parses `KEY=VALUE` labels.
pub fn parse_labels(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_of_reads_args_and_terminal_only() {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["sh", "-c", "echo hi"], "terminal": true, "cwd": "/"},
            "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}}
        });
        let c = Container {
            spec: Some(prost_types::Any {
                type_url: String::new(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            ..Default::default()
        };
        let p = process_of(&c);
        assert_eq!(p.args, ["sh", "-c", "echo hi"]);
        assert!(p.terminal);
        let empty = process_of(&Container::default());
        assert!(empty.args.is_empty() && !empty.terminal);
    }
}
