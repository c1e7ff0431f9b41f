//! Containers bound to a Slurm step: a container a task runs in the foreground (`srun burrow
//! run --rm ...`, each task of `burrow srun`) carries its step, and ends with it as the task's
//! own process would. The task's burrow is only containerd's client, so when Slurm kills it
//! (`scancel JOB.STEP`, `srun -K`, a time limit) the job's watcher stops the container, and
//! removes it if it was run with `--rm`.

use std::collections::HashSet;

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

/// Whether step `JOB.STEP` still has processes on this node.
pub fn alive(step: &str) -> Alive {
    super::watch::listpids(step)
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
