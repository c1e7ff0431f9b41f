//! Starting a created container's task: with given stdio (the CLI's attached and FIFO starts),
//! or in the background with its output to the log driver (`run -d`, `start`, the Docker API's
//! start), and the exit monitor of a container running in the background (it restarts it as
//! its policy says, or lets go of what its task held). A failed start removes the task and what
//! its network hook made.

use std::os::unix::process::CommandExt;
use std::process::Stdio as ProcessStdio;

use containerd_client::services::v1::Container;
use containerd_client::types::Mount;

use super::create::teardown_leftovers;
use super::lifecycle::Stdio;
use super::{labels, logdriver, Ctx};
use crate::selfexec::{EndpointArgs, Helper};

/// Creates the task of `id` with `stdio` on `rootfs` and starts it, with its health monitor;
/// returns its pid. On failure the task and its network are removed again.
pub async fn start_task(
    ctx: &Ctx,
    id: &str,
    rootfs: Vec<Mount>,
    stdio: &Stdio,
) -> anyhow::Result<u32> {
    start_task_then(ctx, id, rootfs, stdio, async {}).await
}

/// [`start_task`], running `between` after the task is created and before it starts (what
/// must be in place before the process's first output, done while containerd creates it).
pub async fn start_task_then(
    ctx: &Ctx,
    id: &str,
    rootfs: Vec<Mount>,
    stdio: &Stdio,
    between: impl std::future::Future<Output = ()>,
) -> anyhow::Result<u32> {
    let mounted = mount_volumes(ctx, id).await?;
    super::ipc::mount_shm(ctx, id)?;
    let created = ctx.client.create_task(id, rootfs, stdio).await;
    // The task holds its mounts now: a stopping container may unmount what it no longer sees used.
    drop(mounted);
    if let Err(e) = created {
        let _ = ctx.client.delete_task(id).await;
        teardown_leftovers(ctx, id);
        super::ipc::unmount_shm(ctx, id);
        return Err(failed_start(ctx, id, e.into()).await);
    }
    between.await;
    // Recorded before the start: the process may be seen running (and its CLI killed) before
    // the start call returns.
    let before = ctx.store.started_at(id);
    ctx.store.record_start(id);
    match ctx.client.start_task(id).await {
        Ok(pid) => {
            super::record::clear_start_error(ctx, id);
            // Every start (run, start, restart, a restart policy's) gets its health monitor.
            if let Err(e) = super::health::monitor::spawn(ctx, id).await {
                let _ = ctx.client.kill_task(id, 9, true).await;
                let _ = ctx.client.wait_task(id).await;
                let _ = ctx.client.delete_task(id).await;
                teardown_leftovers(ctx, id);
                return Err(e);
            }
            Ok(pid)
        }
        Err(e) => {
            ctx.store.set_started(id, before);
            let _ = ctx.client.delete_task(id).await;
            teardown_leftovers(ctx, id);
            super::ipc::unmount_shm(ctx, id);
            Err(failed_start(ctx, id, e.into()).await)
        }
    }
}

/// Mounts the filesystems of container `id`'s volumes that have one and are not mounted (a
/// tmpfs volume after its last user stopped, or after the launcher or host restarted); returns
/// the volume lock to hold until the task is created, when there are any.
async fn mount_volumes(
    ctx: &Ctx,
    id: &str,
) -> anyhow::Result<Option<nix::fcntl::Flock<std::fs::File>>> {
    let record = super::mounts::MountRecord::read(&ctx.store.container_dir(id), None);
    let volumes = super::volumes::Volumes::of(ctx);
    let names = volumes.with_filesystem(record.volume_names());
    if names.is_empty() {
        return Ok(None);
    }
    let lock = volumes.lock_mounts().await?;
    for name in names {
        volumes.mount(&name)?;
    }
    Ok(Some(lock))
}

/// A failed start's error, explained and recorded on the container (inspect's `State.Error`
/// and exit code, as Docker keeps them).
async fn failed_start(ctx: &Ctx, id: &str, err: anyhow::Error) -> anyhow::Error {
    let err = foreign_binary(ctx, id, err).await;
    let err = match super::runtime::refusal_hint(&format!("{err:#}")) {
        Some(hint) => err.context(hint),
        None => err,
    };
    super::record::record_start_error(ctx, id, &err);
    err
}

/// A start that failed with "exec format error" explained (an image of another platform).
async fn foreign_binary(ctx: &Ctx, id: &str, err: anyhow::Error) -> anyhow::Error {
    if !format!("{err:#}").contains("exec format error") {
        return err;
    }
    let platform = match ctx.client.get(id).await {
        Ok(c) => c.labels.get(labels::PLATFORM).cloned(),
        Err(_) => None,
    };
    let hint = super::platform::exec_format_hint(platform.as_deref());
    err.context(hint)
}

/// Starts the task in the background with its stdout and stderr to the log driver (`log_uri`,
/// else burrow's own json-file/local log).
pub async fn start_logged(
    ctx: &Ctx,
    id: &str,
    rootfs: Vec<Mount>,
    tty: bool,
    log_uri: Option<String>,
) -> anyhow::Result<u32> {
    let uri = match log_uri {
        Some(u) => u,
        None => logdriver::stdio_uri(&ctx.store, id)?,
    };
    let stdio = Stdio {
        stdin: String::new(),
        stdout: uri.clone(),
        stderr: uri,
        terminal: tty,
    };
    start_task(ctx, id, rootfs, &stdio).await
}

/// Starts a stopped or created container `c` in the background as `burrow start` does without
/// -a: the old task deleted (its exit recorded), its networks joined again, its output logged.
/// Only for containers without -i/-t (their stdio needs a background reader, see the CLI).
pub async fn start_existing(
    ctx: &Ctx,
    c: &Container,
    log_uri: Option<String>,
) -> anyhow::Result<u32> {
    let rootfs = prepare_existing(ctx, c).await?;
    start_logged(ctx, &c.id, rootfs, false, log_uri).await
}

/// Readies a stopped or created container `c` for a new task: the old task deleted (its exit
/// recorded), its networks joined again; returns its rootfs.
pub async fn prepare_existing(ctx: &Ctx, c: &Container) -> anyhow::Result<Vec<Mount>> {
    let _ = super::record::delete_task_recording(ctx, &c.id).await;
    super::endpoints::rejoin(ctx, c).await?;
    super::record::set_restart_status(ctx, c, "running").await?;
    Ok(ctx.client.snapshot_mounts(&c.snapshotter, &c.id).await?)
}

/// Starts the exit monitor of container `id` in the background (`burrow internal
/// __exit-monitor`, its own process group, no terminal), with the connection `ctx` uses;
/// records its generation on the container (a newer start replaces an older monitor). Once the
/// task exits, the monitor restarts the container as its policy says, or else deletes the task
/// so that its network, published ports, shareable /dev/shm and volumes are let go at once, as
/// Docker lets them go when a container exits (the exit is recorded for `ps -a` and
/// `inspect`).
pub async fn spawn_exit_monitor(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let c = ctx.find(id).await?;
    let generation = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut l = c.labels.clone();
    l.insert(labels::RESTART_MONITOR.into(), generation.clone());
    ctx.client.update_labels(c, l).await?;
    Helper::ExitMonitor {
        endpoint: EndpointArgs::of(&ctx.ep),
        id: id.to_string(),
        generation,
    }
    .command()?
    .stdin(ProcessStdio::null())
    .stdout(ProcessStdio::null())
    .stderr(ProcessStdio::null())
    .process_group(0)
    .spawn()
    .map_err(|e| anyhow::anyhow!("starting the exit monitor of {id}: {e}"))?;
    Ok(())
}

/// Starts a container's task in the background (`run -d`, `start`, Compose): with -i, -t or
/// --rm its stdio are FIFOs kept by the background reader, so `attach` can join it (and it
/// removes a --rm container when it exits); otherwise its output goes to the log driver
/// (`log_uri`, or burrow's own).
pub async fn start_in_background(
    ctx: &Ctx,
    id: &str,
    (interactive, tty): (bool, bool),
    rootfs: Vec<Mount>,
    rm: bool,
    log_uri: Option<String>,
) -> anyhow::Result<()> {
    if interactive || tty || rm {
        let held = super::held::Held {
            stdin: interactive,
            tty,
            rm,
            stdin_once: false,
        };
        super::held::start_held(ctx, id, held, rootfs, async {}).await?;
        return Ok(());
    }
    start_logged(ctx, id, rootfs, tty, log_uri).await?;
    Ok(())
}

/// Starts a created or stopped container `c` in the background as `burrow start` without -a
/// does (also Compose's up and start): a new task as it was created (see
/// [`start_in_background`]), watched by an exit monitor (see [`watch_exit`]).
pub async fn start_background(ctx: &Ctx, c: &Container) -> anyhow::Result<()> {
    let tty = super::record::process_of(c).terminal;
    let label = |k: &str| c.labels.get(k).is_some_and(|v| v == "true");
    let (stdin, rm) = (label(labels::STDIN_OPEN), super::record::auto_removed(c));
    let rootfs = prepare_existing(ctx, c).await?;
    let log_uri = c.labels.get(labels::LOG_URI).cloned();
    start_in_background(ctx, &c.id, (stdin, tty), rootfs, rm, log_uri).await?;
    watch_exit(ctx, c).await
}

/// After container `c` started in the background: its exit monitor ([`spawn_exit_monitor`]),
/// unless it is auto-removed (its background reader removes it once it exits).
pub async fn watch_exit(ctx: &Ctx, c: &Container) -> anyhow::Result<()> {
    if super::record::auto_removed(c) {
        return Ok(());
    }
    spawn_exit_monitor(ctx, &c.id).await
}

/// [`start_background`] for container `c` that `create` has just made (`created`: its rootfs,
/// and the networks attached ahead with `CreateOptions { ahead: true }`, as Compose's up
/// creates): the ahead attach is settled once the task holds the namespace; when the start
/// fails, the container keeps a spec that a later start attaches afresh.
pub async fn start_created(
    ctx: &Ctx,
    c: &Container,
    created: super::create::Created,
) -> anyhow::Result<()> {
    let tty = super::record::process_of(c).terminal;
    let stdin = c
        .labels
        .get(labels::STDIN_OPEN)
        .is_some_and(|v| v == "true");
    let rm = super::record::auto_removed(c);
    let log_uri = c.labels.get(labels::LOG_URI).cloned();
    let started = start_in_background(ctx, &c.id, (stdin, tty), created.rootfs, rm, log_uri).await;
    if let Some(net) = created.net {
        match started {
            Ok(()) => drop(net.settle(ctx, &c.id).await),
            Err(_) => net.restore(ctx, &c.id).await,
        }
    }
    started?;
    watch_exit(ctx, c).await
}
