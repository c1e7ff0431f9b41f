//! What can be done to an existing container: stop (its stop signal, then SIGKILL after the
//! timeout), kill, remove (with its anonymous volumes on request), wait for its exit, pause and
//! resume, rename, and prune the stopped ones. Each takes the record `Ctx::find` returned.

use std::time::Duration;

use anyhow::Context;
use containerd_client::services::v1::Container;

use super::record::{self, State};
use super::values::{RestartPolicy, Signal};
use super::volumes::{InUse, Volumes};
use super::{labels, Ctx};

/// Seconds `stop` waits by default before SIGKILL (Docker's).
pub const DEFAULT_STOP_TIMEOUT: u64 = 10;

/// Stops `c`: its stop signal (label, else TERM), then SIGKILL after `timeout` seconds (its
/// stop-timeout label, else 10); records the exit; removes it if it was run with `--rm`.
pub async fn stop(ctx: &Ctx, c: &Container, timeout: Option<u64>) -> anyhow::Result<()> {
    stop_with(ctx, c, None, timeout).await
}

/// [`stop`] with `signal` instead of the container's stop signal (`stop -s`).
pub async fn stop_with(
    ctx: &Ctx,
    c: &Container,
    signal: Option<Signal>,
    timeout: Option<u64>,
) -> anyhow::Result<()> {
    // Tell containerd's restart monitor first, or it would bring the container back.
    record::set_restart_status(ctx, c, "stopped").await?;
    let st = record::state(ctx, &c.id).await?;
    if st.is_running() {
        if matches!(st, State::Paused { .. }) {
            ctx.client.resume(&c.id).await?;
        }
        let sig: Signal = match signal {
            Some(s) => s,
            None => c
                .labels
                .get(labels::STOP_SIGNAL)
                .map(String::as_str)
                .unwrap_or("TERM")
                .parse()?,
        };
        let secs = timeout
            .or_else(|| {
                c.labels
                    .get(labels::STOP_TIMEOUT)
                    .and_then(|t| t.parse().ok())
            })
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        super::notify::container(ctx, "kill", &c.id, Some(sig.0)).await;
        ctx.client.kill_task(&c.id, sig.0, false).await?;
        if tokio::time::timeout(Duration::from_secs(secs), ctx.client.wait_task(&c.id))
            .await
            .is_err()
        {
            super::notify::container(ctx, "kill", &c.id, Some(9)).await;
            ctx.client.kill_task(&c.id, 9, false).await?;
            wait_task_or_recorded(ctx, &c.id).await?;
        }
        // As Docker: kill, die (containerd's exit), then stop.
        super::notify::container(ctx, "stop", &c.id, None).await;
    }
    if record::auto_removed(c) {
        // Its background reader (or a waiting API client's service) may be removing it too.
        return auto_remove(ctx, &c.id).await;
    }
    record::delete_task_recording(ctx, &c.id).await?;
    Ok(())
}

/// Restarts `c` as `restart` does: stopped as [`stop_with`] stops it (when running), started
/// again in the background as `start` without -a starts it, then Docker's restart event.
pub async fn restart(
    ctx: &Ctx,
    c: &Container,
    signal: Option<Signal>,
    timeout: Option<u64>,
) -> anyhow::Result<()> {
    stop_with(ctx, c, signal, timeout).await?;
    // Its record changed (the restart status the stop set): start from the new one.
    let c = ctx.find(&c.id).await?;
    super::start::start_background(ctx, &c).await?;
    super::notify::container(ctx, "restart", &c.id, None).await;
    Ok(())
}

/// Sends `sig` to a running container's task.
pub async fn kill(ctx: &Ctx, c: &Container, sig: Signal) -> anyhow::Result<()> {
    if !record::state(ctx, &c.id).await?.is_running() {
        anyhow::bail!(
            "cannot kill container {}: it is not running",
            record::name_of(c)
        );
    }
    super::notify::container(ctx, "kill", &c.id, Some(sig.0)).await;
    ctx.client.kill_task(&c.id, sig.0, false).await?;
    Ok(())
}

/// Removes the container `id` after its run ended (`run --rm`, the --rm watcher): its record
/// and snapshot while `alongside` runs (helpers that still use the state dir), then the state
/// dir and its anonymous volumes once both are done. A container already gone is no error.
pub async fn remove_after_run(
    ctx: &Ctx,
    id: &str,
    alongside: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let record = async {
        let c = ctx.client.get(id).await.ok()?;
        Some(record::remove_record(ctx, &c, true).await.map(|()| c))
    };
    let ((), removed) = tokio::join!(alongside, record);
    let Some(removed) = removed else {
        return Ok(());
    };
    let c = removed?;
    ctx.store.remove_dir(id)?;
    remove_anonymous_volumes(ctx, &c).await;
    Ok(())
}

/// The end of an auto-removed container (`run --rm`, Docker's AutoRemove) once its task exited,
/// under the container's removal lock (whoever comes second finds it gone): the task deleted
/// while its networks are detached alongside (and `ahead`'s network helpers let go), then the
/// container and everything it owns. A container already gone is no error.
pub async fn remove_exited(
    ctx: &Ctx,
    id: &str,
    ahead: Option<crate::network::prepare::Prepared>,
) -> anyhow::Result<()> {
    let _lock = removal_lock(ctx, id).await?;
    if ctx.client.get(id).await.is_err() {
        wait_for_helpers(None, ahead).await;
        return Ok(());
    }
    let teardown = super::create::start_claimed_teardown(ctx, id);
    if let Err(err) = record::delete_task_recording(ctx, id).await {
        tracing::warn!(%err, "deleting the task");
    }
    remove_after_run(ctx, id, wait_for_helpers(teardown, ahead)).await
}

/// Waits for the network teardown helper and lets `ahead`'s helper go (off the runtime's
/// threads: both are processes).
async fn wait_for_helpers(
    teardown: Option<std::process::Child>,
    ahead: Option<crate::network::prepare::Prepared>,
) {
    let waited = tokio::task::spawn_blocking(move || {
        if let Some(mut t) = teardown {
            let _ = t.wait();
        }
        if let Some(h) = ahead {
            h.release(true);
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!("waiting for the network helpers");
    }
}

/// Removes an auto-removed container once its task exited, whoever asks: the background
/// reader's follow-up once the output ended ([`crate::selfexec::Helper::AutoRemove`]), the API
/// service that waits for its removal (`docker run --rm`), `stop`. Waits for the task's exit
/// first (at once when it exited, or is gone with its container), then [`remove_exited`].
pub async fn auto_remove(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let _ = ctx.client.wait_task(id).await;
    remove_exited(ctx, id, None).await
}

/// Takes the lock that removals after an exit take in turn: an flock of container `id`'s state
/// dir itself (no file in it to race the dir's removal). None when the dir is gone: so is the
/// container, or nearly.
async fn removal_lock(ctx: &Ctx, id: &str) -> anyhow::Result<Option<std::fs::File>> {
    let dir = ctx.store.container_dir(id);
    Ok(tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(dir).ok()?;
        f.lock().ok()?;
        Some(f)
    })
    .await?)
}

/// The anonymous volumes of removed container `c`, but those another container mounts.
async fn remove_anonymous_volumes(ctx: &Ctx, c: &Container) {
    let names = record::anonymous_volumes(c);
    if names.is_empty() {
        return;
    }
    match InUse::of(ctx).await {
        Ok(used) => {
            for n in Volumes::of(ctx).remove_unused_quietly(&names, &used) {
                super::notify::volume(ctx, "destroy", &n).await;
            }
        }
        Err(err) => tracing::warn!(%err, "listing the volumes in use; anonymous volumes kept"),
    }
}

/// Removes `c` and everything it owns (a running one only with `force`); its anonymous volumes
/// too with `volumes`.
pub async fn remove(ctx: &Ctx, c: &Container, force: bool, volumes: bool) -> anyhow::Result<()> {
    record::remove_container(ctx, c, force).await?;
    if volumes {
        remove_anonymous_volumes(ctx, c).await;
    }
    Ok(())
}

/// Waits for `c` to exit and returns its exit code; one that has already exited (its task
/// deleted by `stop` or a finished `run`) answers at once with the recorded code.
pub async fn wait(ctx: &Ctx, c: &Container) -> anyhow::Result<u32> {
    match record::state(ctx, &c.id).await? {
        State::Created => anyhow::bail!("container {} has not been started", record::name_of(c)),
        State::Exited { code, .. } if ctx.client.get_task(&c.id).await?.is_none() => Ok(code),
        _ => wait_task_or_recorded(ctx, &c.id).await,
    }
}

/// Waits for container `id`'s task to exit, or answers with the exit its deleter recorded
/// (see [`crate::session::Target::wait`]).
async fn wait_task_or_recorded(ctx: &Ctx, id: &str) -> anyhow::Result<u32> {
    Ok(crate::session::Target::task(ctx, id).wait().await?)
}

/// The host pids of a running container's processes (for `top`): the runtime's list, or where
/// the runtime cannot list them (rootless without cgroups: runc finds processes through their
/// cgroup) every process in the container's PID namespace.
pub async fn pids(ctx: &Ctx, c: &Container) -> anyhow::Result<Vec<u32>> {
    let (State::Running { pid } | State::Paused { pid }) = record::state(ctx, &c.id).await? else {
        anyhow::bail!("container {} is not running", record::name_of(c));
    };
    match ctx.client.pids(&c.id).await {
        Ok(pids) if !pids.is_empty() => Ok(pids),
        listed => {
            let found = pids_in_namespace_of(pid);
            if found.is_empty() {
                listed.map_err(anyhow::Error::from)
            } else {
                Ok(found)
            }
        }
    }
}

/// The pids whose PID namespace is `init`'s (readable for one's own processes).
fn pids_in_namespace_of(init: u32) -> Vec<u32> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let Some(target) = ns(&init.to_string()) else {
        return Vec::new();
    };
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| ns(&p.to_string()).as_ref() == Some(&target))
        .collect();
    out.sort_unstable();
    out
}

/// What `update` changes on a container.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub restart: Option<RestartPolicy>,
    pub limits: super::spec::Limits,
}

/// Changes a container's restart policy and cgroup limits, in its record (so later starts keep
/// them) and on its running task. Limits where no cgroup can be had are refused with the reason.
pub async fn update(ctx: &Ctx, c: &Container, u: &Update) -> anyhow::Result<Vec<String>> {
    use super::limits::{merge, resources};
    use super::spec::cgroup_unavailable_reason;
    let mut warnings = Vec::new();
    if !u.limits.is_empty() {
        if let Some(reason) = cgroup_unavailable_reason(ctx.rootless()) {
            anyhow::bail!(
                "cannot update the limits of {}: {reason}",
                record::name_of(c)
            );
        }
        let mut spec = record::spec_of(c).context("the container has no OCI spec")?;
        let base = spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().clone())
            .unwrap_or_default();
        let mut limits = u.limits.clone();
        limits.validate(base.memory().and_then(|m| m.limit()))?;
        limits.check_host()?;
        warnings = limits.discard_unsupported();
        let merged = merge(&base, &resources(&limits)?);
        if record::state(ctx, &c.id).await?.is_running() {
            ctx.client.update_task_resources(&c.id, &merged).await?;
        }
        if let Some(linux) = spec.linux_mut() {
            linux.set_resources(Some(merged));
        }
        ctx.client.update_spec(&c.id, &spec).await?;
        let dir = ctx.store.container_dir(&c.id);
        super::asked::Asked::update_limits(&dir, &limits)
            .with_context(|| format!("recording the new limits in {}", dir.display()))?;
    }
    if let Some(policy) = u.restart {
        let c = ctx.client.get(&c.id).await?;
        let mut l = c.labels.clone();
        for k in [
            labels::RESTART_POLICY,
            labels::RESTART_STATUS,
            labels::RESTART_LOG_URI,
            labels::RESTART_WANTED,
        ] {
            l.remove(k);
        }
        if policy != RestartPolicy::No {
            l.insert(labels::RESTART_POLICY.into(), policy.to_string());
            l.insert(labels::RESTART_WANTED.into(), "running".into());
            l.entry(labels::RESTART_COUNT.into())
                .or_insert_with(|| "0".into());
            if matches!(policy, RestartPolicy::Always | RestartPolicy::UnlessStopped) {
                l.insert(labels::RESTART_STATUS.into(), "running".into());
                if let Some(uri) = c.labels.get(labels::LOG_URI).filter(|u| !u.is_empty()) {
                    l.insert(labels::RESTART_LOG_URI.into(), uri.clone());
                }
            }
        }
        ctx.client.update_labels(c, l).await?;
    }
    Ok(warnings)
}

/// Whether this connection's containers can be paused: they need a freezer cgroup, which
/// containers run without a cgroup manager (rootless on cgroup v1) do not have.
pub fn pausable(ctx: &Ctx) -> bool {
    ctx.ep.cgroup_manager != "none"
}

/// Pauses (or with `resume`, unpauses) `c`.
pub async fn pause(ctx: &Ctx, c: &Container, resume: bool) -> anyhow::Result<()> {
    if !pausable(ctx) {
        let why = super::spec::cgroup_unavailable_reason(ctx.rootless())
            .unwrap_or_else(|| "the cgroup manager is \"none\" (see `burrow info`)".into());
        return Err(NoFreezer {
            container: record::name_of(c),
            why,
        }
        .into());
    }
    let r = if resume {
        ctx.client.resume(&c.id).await
    } else {
        ctx.client.pause(&c.id).await
    };
    r.with_context(|| {
        format!(
            "{} {}",
            if resume { "unpausing" } else { "pausing" },
            record::name_of(c)
        )
    })
}

/// A pause where containers have no cgroup, hence no freezer.
#[derive(Debug, thiserror::Error)]
#[error("cannot pause or unpause {container}: pausing needs the container's freezer cgroup, and containers here have none: {why}")]
pub struct NoFreezer {
    pub container: String,
    pub why: String,
}

/// Gives `c` the name `new_name` (refused if another container has it).
pub async fn rename(ctx: &Ctx, c: &Container, new_name: &str) -> anyhow::Result<()> {
    let old = record::name_of(c);
    ctx.store.reserve_name(new_name, &c.id)?;
    let mut l = c.labels.clone();
    l.insert(labels::NAME.into(), new_name.to_string());
    if let Err(e) = ctx.client.update_labels(c.clone(), l).await {
        ctx.store.release_name(new_name, &c.id);
        return Err(e.into());
    }
    ctx.store.release_name(&old, &c.id);
    Ok(())
}

/// Removes every container that is not running; returns their ids.
pub async fn prune(ctx: &Ctx) -> anyhow::Result<Vec<String>> {
    prune_matching(ctx, |_| true).await
}

/// [`prune`] of the containers that pass `filters` (`until`, `label`, `label!`).
pub async fn prune_filtered(
    ctx: &Ctx,
    filters: &super::prunefilter::PruneFilters,
) -> anyhow::Result<Vec<String>> {
    prune_matching(ctx, |c| {
        let created = c.created_at.as_ref().map(|t| t.seconds);
        filters.pass(created, &c.labels)
    })
    .await
}

/// [`prune`] of the containers `wanted` accepts.
pub async fn prune_matching(
    ctx: &Ctx,
    wanted: impl Fn(&Container) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    for c in ctx.client.list(vec![]).await? {
        if wanted(&c) && !record::state(ctx, &c.id).await?.is_running() {
            record::remove_container(ctx, &c, false).await?;
            removed.push(c.id);
        }
    }
    Ok(removed)
}
