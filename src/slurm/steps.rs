//! Containers bound to a Slurm step: a container a task runs in the foreground (`srun burrow
//! run --rm ...`, each task of `burrow srun`) carries its step, and ends with it as the task's
//! own process would. The task's burrow is only containerd's client, so when Slurm kills it
//! (`scancel JOB.STEP`, `srun -K`, a time limit) the job's watcher stops the container, and
//! removes it if it was run with `--rm`.

use std::collections::HashSet;
use std::process::{Command, Stdio};

use super::watch::Alive;
use super::Job;
use crate::containers::request::ContainerRequest;
use crate::containers::{labels, ops, Ctx};

/// `JOB.STEP` of the step this process is a task of, in job mode; none in the batch script
/// (whose end is the job's) or outside a job.
pub fn current() -> Option<String> {
    let job = Job::current()?;
    let step = std::env::var("SLURM_STEP_ID").ok()?;
    step.parse::<u32>().ok()?;
    Some(format!("{}.{step}", job.id))
}

/// Marks `req`'s container as bound to this process's step, if it is a step's task.
pub fn bind(req: &mut ContainerRequest) {
    if let Some(step) = current() {
        req.config.labels.insert(labels::SLURM_STEP.into(), step);
    }
}

/// Whether step `JOB.STEP` still has processes on this node (`scontrol listpids`, answered by
/// the node's slurmd).
pub fn alive(step: &str) -> Alive {
    let Ok(out) = Command::new("scontrol")
        .args(["listpids", step])
        .stdin(Stdio::null())
        .output()
    else {
        return Alive::Unknown;
    };
    listpids_state(
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// What `scontrol listpids JOB.STEP` says: processes listed is alive, "does not exist" is over.
fn listpids_state(ok: bool, stdout: &str, stderr: &str) -> Alive {
    let listed = stdout.lines().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    });
    match (ok, listed) {
        (true, true) => Alive::Yes,
        (true, false) => Alive::No,
        (false, _) if stderr.contains("does not exist") => Alive::No,
        (false, _) => Alive::Unknown,
    }
}

/// Stops the containers of the job's steps that are over (removed if run with `--rm`);
/// `done` remembers the ones handled. Returns how many it stopped.
pub async fn reap(ctx: &Ctx, done: &mut HashSet<String>) -> anyhow::Result<usize> {
    let all = ctx.client.list(Vec::new()).await?;
    let mut over: Vec<(String, Alive)> = Vec::new();
    let mut stopped = 0;
    for c in all {
        let Some(step) = c.labels.get(labels::SLURM_STEP) else {
            continue;
        };
        if done.contains(&c.id) {
            continue;
        }
        let state = match over.iter().find(|(s, _)| s == step) {
            Some((_, a)) => *a,
            None => {
                let a = alive(step);
                over.push((step.clone(), a));
                a
            }
        };
        if state != Alive::No {
            continue;
        }
        match ops::stop(ctx, &c, Some(1)).await {
            Ok(()) => stopped += 1,
            Err(err) if crate::containers::context::LookupError::is_not_found(&err) => {}
            Err(err) => tracing::warn!(%err, id = %c.id, "stopping a container of an ended step"),
        }
        done.insert(c.id);
    }
    Ok(stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpids_answers() {
        let head = "PID      JOBID    STEPID   LOCALID GLOBALID\n";
        assert_eq!(
            listpids_state(
                true,
                &format!("{head}13026    221      0        0       0\n"),
                ""
            ),
            Alive::Yes
        );
        assert_eq!(
            listpids_state(false, head, "StepId=221.0 does not exist on node (null)."),
            Alive::No
        );
        assert_eq!(
            listpids_state(false, "", "Unable to contact slurmd"),
            Alive::Unknown
        );
    }
}
