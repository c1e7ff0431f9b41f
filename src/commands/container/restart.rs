//! The on-failure restart policy (containerd 1.6's own restart monitor restarts whatever the exit
//! status): a background `burrow __restart-monitor ID` per detached container waits for its task
//! and starts it again after a failing exit, up to the policy's count, with a growing delay.

use std::os::unix::process::CommandExt;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use super::{labels, Ctx};
use burrow::connection::Globals;
use burrow::selfexec::{EndpointArgs, Helper};

/// What the restart monitor watches ([`burrow::selfexec::Helper::RestartMonitor`]).
#[derive(Debug)]
pub struct Args {
    /// The container to watch.
    pub id: String,
    /// The monitor generation this process serves (a newer start replaces it).
    pub generation: String,
}

/// `on-failure[:N]` → Some(N) (0: no limit); None for other policies.
pub fn on_failure_max(policy: &str) -> Option<u32> {
    match policy.strip_prefix("on-failure")? {
        "" => Some(0),
        n => n.strip_prefix(':')?.parse().ok(),
    }
}

/// Starts the monitor of container `id` in the background (its own process group, no
/// terminal), with the connection `ctx` uses; records its generation on the container.
pub async fn spawn(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
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
    Helper::RestartMonitor {
        endpoint: EndpointArgs::of(&ctx.ep),
        id: id.to_string(),
        generation,
    }
    .command()?
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .process_group(0)
    .spawn()
    .map_err(|e| anyhow::anyhow!("starting the restart monitor of {id}: {e}"))?;
    Ok(())
}

/// What the monitor does after the task ended with `code`, given the container's labels.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Restart { count: u32 },
    Stop,
}

pub fn decide(
    l: &std::collections::HashMap<String, String>,
    generation: &str,
    code: u32,
) -> Decision {
    let mine = l.get(labels::RESTART_MONITOR).map(String::as_str) == Some(generation);
    let wanted = l.get(labels::RESTART_WANTED).map(String::as_str) == Some("running");
    let Some(max) = l
        .get(labels::RESTART_POLICY)
        .and_then(|p| on_failure_max(p))
    else {
        return Decision::Stop;
    };
    let count: u32 = l
        .get(labels::RESTART_COUNT)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !mine || !wanted || code == 0 || (max != 0 && count >= max) {
        return Decision::Stop;
    }
    Decision::Restart { count: count + 1 }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let mut unreachable_since: Option<std::time::Instant> = None;
        loop {
            let ctx = match Ctx::connect(g).await {
                Ok(c) => {
                    unreachable_since = None;
                    c
                }
                Err(_) => {
                    // containerd restarting: try again, for a while (it may be gone for good).
                    let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > Duration::from_secs(600) {
                        return Ok(ExitCode::FAILURE);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let code = match ctx.client.wait_task(&args.id).await {
                Ok(code) => code,
                Err(_) => match ctx.client.get(&args.id).await {
                    Err(e) if e.is_not_found() => return Ok(ExitCode::SUCCESS),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            let Ok(c) = ctx.client.get(&args.id).await else {
                return Ok(ExitCode::SUCCESS);
            };
            let Decision::Restart { count } = decide(&c.labels, &args.generation, code) else {
                return Ok(ExitCode::SUCCESS);
            };
            // As Docker: 100 ms before the first restart, doubling each time (at most 12.8 s).
            let delay = Duration::from_millis(100 * (1u64 << count.saturating_sub(1).min(7)));
            tokio::time::sleep(delay).await;
            let mut l = c.labels.clone();
            l.insert(labels::RESTART_COUNT.into(), count.to_string());
            ctx.client.update_labels(c, l).await?;
            // The same path as `burrow start` (network, ports, log driver), as a child.
            let exe = std::env::current_exe()?;
            let mut cmd = std::process::Command::new(exe);
            cmd.args(EndpointArgs::of(&ctx.ep).flags())
                .args(["start", &args.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let ok = tokio::task::spawn_blocking(move || cmd.status().is_ok_and(|s| s.success()))
                .await
                .unwrap_or(false);
            // That start put a monitor of its own in charge.
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    })
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
    fn on_failure_counts_and_stops_as_docker() {
        assert_eq!(on_failure_max("on-failure"), Some(0));
        assert_eq!(on_failure_max("on-failure:3"), Some(3));
        assert_eq!(on_failure_max("on-failure:x"), None);
        assert_eq!(on_failure_max("always"), None);
        let base = [
            (labels::RESTART_POLICY, "on-failure:2"),
            (labels::RESTART_WANTED, "running"),
            (labels::RESTART_MONITOR, "g1"),
        ];
        assert_eq!(decide(&l(&base), "g1", 3), Decision::Restart { count: 1 });
        assert_eq!(decide(&l(&base), "g1", 0), Decision::Stop, "success");
        assert_eq!(
            decide(&l(&base), "g0", 3),
            Decision::Stop,
            "a newer monitor"
        );
        let mut done = base.to_vec();
        done.push((labels::RESTART_COUNT, "2"));
        assert_eq!(decide(&l(&done), "g1", 3), Decision::Stop, "count reached");
        let mut stopped = base.to_vec();
        stopped[1] = (labels::RESTART_WANTED, "stopped");
        assert_eq!(
            decide(&l(&stopped), "g1", 137),
            Decision::Stop,
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
    }
}
