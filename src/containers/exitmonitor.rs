//! The exit monitor: what happens when a container running in the background exits, as Docker
//! does it. The monitor (one per detached container) waits for its task and starts it again as
//! its restart policy says (always and unless-stopped: after any exit; on-failure[:N]: after a failing one,
//! up to N times), 100 ms after the first exit and twice as long after each next one, back to
//! 100 ms after a run of 10 s or more, counting the restarts (inspect's RestartCount). A
//! container not restarted has its exited task deleted, which lets go of its network, published
//! ports, shareable /dev/shm and volumes, as Docker's daemon does at exit. containerd 1.6's own
//! monitor only restarts always and unless-stopped containers after containerd itself
//! restarts.

use std::time::Duration;

use super::values::RestartPolicy;
use super::{labels, Ctx};
use crate::connection::Globals;

/// What the monitor does after the task ended with `code`, given the container's labels.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start it again, as restart number `count`.
    Restart { count: u32 },
    /// Delete the exited task, letting go of what it held.
    Release,
    /// Nothing: a newer start put a monitor of its own in charge.
    Leave,
}

pub fn decide(
    l: &std::collections::HashMap<String, String>,
    generation: &str,
    code: u32,
) -> Decision {
    let mine = l.get(labels::RESTART_MONITOR).map(String::as_str) == Some(generation);
    let wanted = l.get(labels::RESTART_WANTED).map(String::as_str) == Some("running");
    let policy = l
        .get(labels::RESTART_POLICY)
        .and_then(|p| p.parse::<RestartPolicy>().ok())
        .unwrap_or_default();
    let count: u32 = l
        .get(labels::RESTART_COUNT)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let again = match policy {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || count < max),
    };
    match (mine, wanted && again) {
        (false, _) => Decision::Leave,
        (true, false) => Decision::Release,
        (true, true) => Decision::Restart { count: count + 1 },
    }
}

/// Docker's delay before a restart: 100 ms, doubled after each exit that followed a run of
/// less than 10 s (at most 12.8 s); `step` is how many such exits came in a row.
pub fn backoff(step: u32) -> Duration {
    Duration::from_millis(100 * (1u64 << step.min(7)))
}

/// The exit monitor's process (`burrow __exit-monitor ID GENERATION`, spawned by
/// [`super::start::spawn_exit_monitor`]): watches container `id`'s task until it exits, then
/// restarts or releases it as its policy says; false when it could not do so.
pub fn main(g: &Globals, id: &str, generation: &str) -> anyhow::Result<bool> {
    crate::connection::runtime().block_on(watch(g, id, generation))
}

/// The monitor's work (see [`main`]).
pub async fn watch(g: &Globals, id: &str, generation: &str) -> anyhow::Result<bool> {
    let mut unreachable_since: Option<std::time::Instant> = None;
    // The task watched (its pid): only that one is deleted, never a newer start's.
    let mut watched: Option<u32> = None;
    loop {
        let ctx = match Ctx::connect(g).await {
            Ok(c) => {
                unreachable_since = None;
                c
            }
            Err(_) => {
                // Its endpoint taken down for good (a Slurm job's containerd, or a purge):
                // nothing left to watch.
                if g.data_root.as_deref().is_some_and(|d| !d.exists()) {
                    return Ok(true);
                }
                // containerd restarting: try again, for a while (it may be gone for good).
                let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_secs(600) {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if watched.is_none() {
            watched = match ctx.client.get_task(id).await {
                Ok(Some(t)) => Some(t.pid),
                Ok(None) => return Ok(true),
                Err(_) => None,
            };
        }
        let code = match ctx.client.wait_task(id).await {
            Ok(code) => code,
            // No task any more (stopped and deleted, or removed) or a newer one: nothing
            // left to watch; else containerd went away meanwhile.
            Err(_) => match ctx.client.get_task(id).await {
                Ok(None) => return Ok(true),
                Ok(Some(t)) if Some(t.pid) != watched => return Ok(true),
                _ => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Ok(c) = ctx.client.get(id).await else {
            return Ok(true);
        };
        let count = match decide(&c.labels, generation, code) {
            Decision::Restart { count } => count,
            Decision::Leave => return Ok(true),
            Decision::Release => {
                if let Some(pid) = watched {
                    super::record::release_exited(&ctx, id, pid).await?;
                }
                return Ok(true);
            }
        };
        // The back-off grows while runs stay short, and starts over after a long one.
        let ran_long = ctx
            .store
            .started_at(id)
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|d| d >= Duration::from_secs(10));
        let step = if ran_long {
            0
        } else {
            c.labels
                .get(labels::RESTART_BACKOFF)
                .and_then(|s| s.parse::<u32>().ok())
                .map_or(0, |s| s + 1)
        };
        tokio::time::sleep(backoff(step)).await;
        let mut l = c.labels.clone();
        l.insert(labels::RESTART_COUNT.into(), count.to_string());
        l.insert(labels::RESTART_BACKOFF.into(), step.to_string());
        let mut c = c;
        c.labels = l.clone();
        ctx.client.update_labels(c.clone(), l).await?;
        // The same start as `burrow start` (network, ports, log driver); it puts a monitor of
        // its own in charge.
        return match super::start::start_background(&ctx, &c).await {
            Ok(()) => Ok(true),
            Err(err) => {
                tracing::warn!("restarting {id}: {err:#}");
                Ok(false)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn policies_restart_as_docker() {
        let base = [
            (labels::RESTART_POLICY, "on-failure:2"),
            (labels::RESTART_WANTED, "running"),
            (labels::RESTART_MONITOR, "g1"),
        ];
        assert_eq!(decide(&l(&base), "g1", 3), Decision::Restart { count: 1 });
        assert_eq!(decide(&l(&base), "g1", 0), Decision::Release, "success");
        assert_eq!(
            decide(&l(&base), "g0", 3),
            Decision::Leave,
            "a newer monitor"
        );
        let mut done = base.to_vec();
        done.push((labels::RESTART_COUNT, "2"));
        assert_eq!(
            decide(&l(&done), "g1", 3),
            Decision::Release,
            "count reached"
        );
        let mut stopped = base.to_vec();
        stopped[1] = (labels::RESTART_WANTED, "stopped");
        assert_eq!(
            decide(&l(&stopped), "g1", 137),
            Decision::Release,
            "stopped by the user"
        );
        let unlimited = [
            (labels::RESTART_POLICY, "on-failure"),
            (labels::RESTART_WANTED, "running"),
            (labels::RESTART_MONITOR, "g"),
            (labels::RESTART_COUNT, "40"),
        ];
        assert_eq!(
            decide(&l(&unlimited), "g", 1),
            Decision::Restart { count: 41 }
        );
        for policy in ["always", "unless-stopped"] {
            let always = [
                (labels::RESTART_POLICY, policy),
                (labels::RESTART_WANTED, "running"),
                (labels::RESTART_MONITOR, "g"),
                (labels::RESTART_COUNT, "5"),
            ];
            assert_eq!(decide(&l(&always), "g", 0), Decision::Restart { count: 6 });
            assert_eq!(
                decide(&l(&always), "g", 137),
                Decision::Restart { count: 6 }
            );
        }
        let no = [
            (labels::RESTART_POLICY, "no"),
            (labels::RESTART_MONITOR, "g"),
        ];
        assert_eq!(decide(&l(&no), "g", 1), Decision::Release, "no policy");
        assert_eq!(
            decide(&l(&no[..1]), "g", 1),
            Decision::Leave,
            "no monitor recorded"
        );
    }

    #[test]
    fn backoff_doubles_from_100ms_to_12_8s() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(12_800));
        assert_eq!(backoff(30), Duration::from_millis(12_800));
    }
}
