//! The end of a job's containerd: a watcher started with it (`burrow internal job-watch ID`)
//! asks Slurm every few seconds whether the job still runs, and once it is over stops the
//! service, its containers and containerd, and deletes the job's dir (images included).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::Job;
use crate::connection::{Globals, RawGlobals, UserEnv};
use crate::selfexec::Helper;
use crate::setup::uninstall::{self, UninstallOptions};

/// How often the watcher asks.
const INTERVAL: Duration = Duration::from_secs(2);

/// What Slurm says about the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alive {
    Yes,
    No,
    /// Slurm did not answer (the controller restarting): ask again later.
    Unknown,
}

/// Starts the watcher of `job` in the background, in a process group of its own, so that the
/// step which started it can end without taking it along.
pub fn spawn(job: &Job) -> std::io::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(job.dir.join("job-watch.log"))?;
    Helper::JobWatch {
        job_id: job.id.clone(),
    }
    .command()?
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log)
    .process_group(0)
    .spawn()?;
    Ok(())
}

/// The watcher's body: waits for the job's end, then takes everything down. A second watcher
/// of the same job leaves at once.
pub fn main(job_id: &str) -> anyhow::Result<()> {
    let Some(job) = Job::current().filter(|j| j.id == job_id) else {
        anyhow::bail!("job-watch {job_id}: not inside that job's environment");
    };
    let lock = std::fs::File::create(job.dir.join("watch.lock"))?;
    let Ok(_held) = Flock::lock(lock, FlockArg::LockExclusiveNonblock) else {
        return Ok(());
    };
    loop {
        std::thread::sleep(INTERVAL);
        if !job.dir.exists() {
            return Ok(());
        }
        if alive(job_id) == Alive::No {
            break;
        }
    }
    eprintln!(
        "job {job_id} ended: stopping its containerd and deleting {}",
        job.dir.display()
    );
    teardown(&job)
}

/// Stops the job's service and containers and deletes its dir.
pub fn teardown(job: &Job) -> anyhow::Result<()> {
    let g = Globals::load(RawGlobals::default(), &UserEnv::current())?;
    let opts = UninstallOptions {
        purge: true,
        launcher: None,
    };
    let result = uninstall::uninstall(&g, &opts);
    // The service's last log lines may still come in while it stops: try a few times.
    let mut removed = std::fs::remove_dir_all(&job.dir);
    for _ in 0..10 {
        if removed.is_ok() || !job.dir.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        removed = std::fs::remove_dir_all(&job.dir);
    }
    result?;
    if job.dir.exists() {
        removed?;
    }
    Ok(())
}

/// Whether the job still runs: its steps on this node (slurmd, local), else the controller.
pub fn alive(job_id: &str) -> Alive {
    let local = Command::new("scontrol")
        .args(["listpids", job_id])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    if let Ok(out) = local {
        if out.status.success() && has_pids(&String::from_utf8_lossy(&out.stdout)) {
            return Alive::Yes;
        }
    }
    let Ok(out) = Command::new("squeue")
        .args(["-h", "-j", job_id, "-o", "%T"])
        .stdin(Stdio::null())
        .output()
    else {
        return Alive::Unknown;
    };
    queue_state(
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
}

/// `scontrol listpids` lists at least one process (after its header line).
fn has_pids(out: &str) -> bool {
    out.lines().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|p| p.parse::<u32>().is_ok())
    })
}

/// What `squeue -h -j ID -o %T` says: running (or about to, or suspended) is alive; gone,
/// completing or finished is not; an error other than an unknown job is not an answer.
fn queue_state(ok: bool, stdout: &str, stderr: &str) -> Alive {
    if !ok {
        return match stderr.contains("Invalid job id") {
            true => Alive::No,
            false => Alive::Unknown,
        };
    }
    match stdout.trim() {
        "RUNNING" | "CONFIGURING" | "SUSPENDED" | "PENDING" | "REQUEUED" | "RESIZING" => Alive::Yes,
        _ => Alive::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpids_output_with_processes_means_alive() {
        let out =
            "PID      JOBID    STEPID   LOCALID GLOBALID\n11711    2        batch    0       0\n";
        assert!(has_pids(out));
        assert!(!has_pids("PID      JOBID    STEPID   LOCALID GLOBALID\n"));
    }

    #[test]
    fn queue_states() {
        assert_eq!(queue_state(true, "RUNNING\n", ""), Alive::Yes);
        assert_eq!(queue_state(true, "COMPLETING\n", ""), Alive::No);
        assert_eq!(queue_state(true, "", ""), Alive::No);
        assert_eq!(
            queue_state(false, "", "slurm_load_jobs error: Invalid job id specified"),
            Alive::No
        );
        assert_eq!(
            queue_state(
                false,
                "",
                "slurm_load_jobs error: Unable to contact slurm controller"
            ),
            Alive::Unknown
        );
    }
}
