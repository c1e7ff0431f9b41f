//! The container commands (run, create, start, ps, logs, stop, kill, rm, wait, inspect, port,
//! ...): shared plumbing to reach containerd, find a container by id, name or id prefix, and
//! read its state, labels and published ports.

pub mod attach;
pub mod cp;
pub mod detach;
pub mod exec;
pub mod inspect;
pub mod logs;
pub mod manage;
pub mod orphan;
pub mod ps;
pub mod restart;
pub mod run;
pub mod stats;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use containerd_client::services::v1::Container;
use containerd_client::types::v1::{Process, Status};

use burrow::connection::{self, Endpoint, Globals, Mode, UserEnv};
use burrow::containers::image::ImageStore;
use burrow::containers::lifecycle::Client;
use burrow::containers::store::Store;
use burrow::network::ports::PortMapping;
use burrow::network::NetPaths;

/// nerdctl's container labels, which burrow keeps too so either tool can read the other's.
pub mod labels {
    pub const NAME: &str = "nerdctl/name";
    pub const HOSTNAME: &str = "nerdctl/hostname";
    pub const NETWORKS: &str = "nerdctl/networks";
    pub const PORTS: &str = "nerdctl/ports";
    pub const STATE_DIR: &str = "nerdctl/state-dir";
    pub const LOG_URI: &str = "nerdctl/log-uri";
    pub const PLATFORM: &str = "nerdctl/platform";
    pub const EXTRA_HOSTS: &str = "nerdctl/extraHosts";
    pub const STOP_SIGNAL: &str = "nerdctl/stop-signal";
    pub const STOP_TIMEOUT: &str = "nerdctl/stop-timeout";
    pub const AUTO_REMOVE: &str = "burrow/auto-remove";
    /// Created with -i: a detached start keeps its stdin open for `attach`.
    pub const STDIN_OPEN: &str = "burrow/stdin-open";
    pub const ANONYMOUS_VOLUMES: &str = "burrow/anonymous-volumes";
    /// containerd's restart monitor: "running" makes it keep a task up.
    pub const RESTART_STATUS: &str = "containerd.io/restart.status";
    pub const RESTART_LOG_URI: &str = "containerd.io/restart.loguri";
    pub const RESTART_POLICY: &str = "nerdctl/restart-policy";
    /// on-failure: "running" while the user wants the container up (stop/rm say "stopped").
    pub const RESTART_WANTED: &str = "burrow/restart-wanted";
    /// on-failure: restarts so far.
    pub const RESTART_COUNT: &str = "burrow/restart-count";
    /// on-failure: the generation of the monitor in charge.
    pub const RESTART_MONITOR: &str = "burrow/restart-monitor";
}

/// Everything a container command needs: the endpoint, containerd's services, burrow's store.
pub struct Ctx {
    pub ep: Endpoint,
    pub client: Client,
    pub images: ImageStore,
    pub store: Store,
    pub net: NetPaths,
}

impl Ctx {
    pub async fn connect(g: &Globals) -> anyhow::Result<Ctx> {
        let ep = connection::resolve(g)?;
        let env = UserEnv::current();
        let channel = connection::channel(&ep).await?;
        tracing::debug!("connected to containerd");
        let mut net = NetPaths::for_endpoint(&ep, &env);
        if let Some(p) = std::env::var_os("NETCONFPATH") {
            net.conf_dir = PathBuf::from(p);
        }
        Ok(Ctx {
            client: Client::new(channel.clone(), ep.namespace.clone()),
            images: ImageStore::new(channel, ep.namespace.clone()),
            store: Store::new(ep.data_root.clone(), ep.namespace.clone()),
            net,
            ep,
        })
    }

    pub fn rootless(&self) -> bool {
        self.ep.mode == Mode::Rootless
    }

    /// The container `query` names: a full id, a name, or a unique id prefix.
    pub async fn find(&self, query: &str) -> anyhow::Result<Container> {
        match self.client.get(query).await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let all = self.client.list(vec![]).await?;
        if let Some(c) = all
            .iter()
            .find(|c| c.labels.get(labels::NAME).map(String::as_str) == Some(query))
        {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(query)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => anyhow::bail!("no such container: {query}"),
            _ => anyhow::bail!(
                "{query} matches {} containers: give more of the id",
                matches.len()
            ),
        }
    }
}

/// Runs an async command body on the CLI's runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    connection::runtime().block_on(f)
}

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
/// container started again keeps it until its new task ends.
pub fn recorded_exit(ctx: &Ctx, id: &str) -> Option<State> {
    let path = ctx.store.container_dir(id).join(EXIT_FILE);
    let v = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())?;
    Some(State::Exited {
        code: v["code"].as_u64().unwrap_or(0) as u32,
        at: v["at"]
            .as_f64()
            .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s)),
    })
}

/// Deletes the container's task (its poststop hook detaches networks and ports) and records
/// how it exited, so `ps -a` and `inspect` still show it.
pub async fn delete_task_recording(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let task = ctx.client.get_task(id).await?;
    let code = ctx.client.delete_task(id).await?;
    if let Some(code) = code {
        let at = task
            .as_ref()
            .and_then(|t| t.exited_at.as_ref())
            .map(timestamp)
            .unwrap_or_else(std::time::SystemTime::now);
        let secs = at
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
    Ok(())
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

/// Docker's "2 minutes ago" wording.
pub fn ago(t: std::time::SystemTime) -> String {
    let d = std::time::SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    format!("{} ago", human_duration(d))
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0 => "Less than a second".to_string(),
        1..=59 => plural(secs, "second"),
        60..=3599 => {
            if secs / 60 == 1 {
                "About a minute".to_string()
            } else {
                plural(secs / 60, "minute")
            }
        }
        3600..=172_799 => {
            if secs / 3600 == 1 {
                "About an hour".to_string()
            } else {
                plural(secs / 3600, "hour")
            }
        }
        172_800..=1_209_599 => plural(secs / 86400, "day"),
        1_209_600..=5_183_999 => plural(secs / 604_800, "week"),
        5_184_000..=63_071_999 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

/// Docker's STATUS column: "Up 5 minutes", "Exited (3) 2 seconds ago", "Created".
pub fn status_text(state: &State, started: Option<std::time::SystemTime>) -> String {
    match state {
        State::Created => "Created".to_string(),
        State::Running { .. } | State::Paused { .. } => {
            let up = started
                .and_then(|s| std::time::SystemTime::now().duration_since(s).ok())
                .map(|d| human_duration(d.as_secs()))
                .unwrap_or_else(|| "Less than a second".to_string());
            if matches!(state, State::Paused { .. }) {
                format!("Up {up} (Paused)")
            } else {
                format!("Up {up}")
            }
        }
        State::Exited { code, at } => match at {
            Some(t) => format!("Exited ({code}) {}", ago(*t)),
            None => format!("Exited ({code})"),
        },
    }
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
    ctx.client
        .delete_task(&c.id)
        .await
        .with_context(|| format!("removing the task of {}", name_of(c)))?;
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

/// The global flags that make another burrow process reach the same containerd, namespace and
/// data root as `ctx` (for the helpers burrow starts: restart monitor, detached reader).
pub fn same_endpoint_args(ctx: &Ctx) -> Vec<std::ffi::OsString> {
    let ep = &ctx.ep;
    let mut v: Vec<std::ffi::OsString> = Vec::new();
    for (flag, value) in [
        ("--address", ep.socket.as_os_str()),
        ("--namespace", ep.namespace.as_ref()),
        ("--data-root", ep.data_root.as_os_str()),
        ("--snapshotter", ep.snapshotter.as_ref()),
        ("--cgroup-manager", ep.cgroup_manager.as_ref()),
    ] {
        v.push(flag.into());
        v.push(value.to_owned());
    }
    v
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

    #[test]
    fn docker_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(7300), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn status_words() {
        assert_eq!(status_text(&State::Created, None), "Created");
        let s = status_text(&State::Exited { code: 3, at: None }, None);
        assert_eq!(s, "Exited (3)");
        assert!(status_text(
            &State::Running { pid: 1 },
            Some(std::time::SystemTime::now())
        )
        .starts_with("Up "));
    }
}
