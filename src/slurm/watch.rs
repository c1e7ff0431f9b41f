//! The end of a job's containerd: a watcher started with it (`burrow internal job-watch ID`)
//! asks Slurm every few seconds whether the job still runs, and once it is over stops the
//! service, its containers and containerd, and deletes the job's dir (images included).

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::Job;
use crate::connection::{Globals, RawGlobals, UserEnv};
use crate::selfexec::Helper;
use crate::setup::spawn::spawn_daemon;
use crate::setup::uninstall::{self, UninstallOptions};

/// How often the watcher asks.
const INTERVAL: Duration = Duration::from_secs(2);
/// How long Slurm may not answer at all (neither the node's slurmd nor the controller) before
/// the watcher takes the job as ended.
const GIVE_UP: Duration = Duration::from_secs(6 * 3600);

/// What Slurm says about the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alive {
    Yes,
    No,
    /// Slurm did not answer (the controller restarting): ask again later.
    Unknown,
}

/// Starts the watcher of `job` in the background, as a daemon, so that the step which started
/// it can end (or be cancelled) without taking it along.
pub fn spawn(job: &Job) -> std::io::Result<()> {
    spawn_for(job)
}

/// Takes down what this user's jobs that are over left on this node: dirs beside `job`'s that
/// no watcher holds (its watcher was killed with the step that started it, as
/// proctrack/cgroup kills everything of a step, or the node restarted). Each gets a watcher of
/// its own, which finds its job over and deletes its dir with everything in it.
pub fn sweep(job: &Job) {
    let Some(base) = job.dir.parent() else {
        return;
    };
    let prefix = format!("burrow-{}-job", nix::unistd::geteuid().as_raw());
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(&prefix) else {
            continue;
        };
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let old = Job {
            id: id.to_string(),
            dir: e.path(),
        };
        if !valid || old.id == job.id || watched(&old) || alive(id) != Alive::No {
            continue;
        }
        if let Err(err) = spawn_for(&old) {
            tracing::warn!(%err, dir = %old.dir.display(), "cleaning up an ended job");
        }
    }
}

/// Whether a watcher holds `job`'s dir (its lock is taken).
fn watched(job: &Job) -> bool {
    let Ok(f) = std::fs::File::open(job.dir.join("watch.lock")) else {
        // No lock file: no watcher ever ran there (a dir not made by a job's burrow?).
        return !job.dir.join("run").is_dir();
    };
    Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err()
}

/// A watcher for `job`, which need not be the job this process runs in: its environment is
/// that job's.
fn spawn_for(job: &Job) -> std::io::Result<()> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(job.dir.join("job-watch.log"))?;
    let mut cmd = Helper::JobWatch {
        job_id: job.id.clone(),
    }
    .command()?;
    cmd.envs(job.environment())
        .env("SLURM_JOB_ID", &job.id)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    spawn_daemon(&mut cmd)
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
    let mut steps = StepReaper::default();
    let mut unknown_since: Option<std::time::Instant> = None;
    loop {
        std::thread::sleep(INTERVAL);
        if !job.dir.exists() {
            return Ok(());
        }
        match alive(job_id) {
            Alive::No => break,
            Alive::Yes => unknown_since = None,
            Alive::Unknown => {
                let since = *unknown_since.get_or_insert_with(std::time::Instant::now);
                // Neither the node's slurmd nor the controller has answered for hours: the
                // node is out of Slurm's hands, and the job with it.
                if since.elapsed() > GIVE_UP {
                    eprintln!(
                        "job {job_id}: Slurm has not answered for {} h: taking it as ended",
                        GIVE_UP.as_secs() / 3600
                    );
                    break;
                }
            }
        }
        steps.tick();
    }
    eprintln!(
        "job {job_id} ended: stopping its containerd and deleting {}",
        job.dir.display()
    );
    teardown(&job)
}

/// The watcher's side of [`super::steps`]: a connection to the job's containerd (made once it
/// answers, again after an error) and the containers already stopped.
#[derive(Default)]
struct StepReaper {
    rt: Option<tokio::runtime::Runtime>,
    ctx: Option<crate::containers::Ctx>,
    done: HashSet<String>,
}

impl StepReaper {
    fn tick(&mut self) {
        if self.rt.is_none() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => self.rt = Some(rt),
                Err(err) => return eprintln!("job-watch: {err}"),
            }
        }
        let Some(rt) = &self.rt else { return };
        let result = rt.block_on(async {
            if self.ctx.is_none() {
                let g = Globals::load(RawGlobals::default(), &UserEnv::current())?;
                self.ctx = Some(crate::containers::Ctx::connect(&g).await?);
            }
            let Some(ctx) = &self.ctx else {
                return Ok(0);
            };
            super::steps::reap(ctx, &mut self.done).await
        });
        match result {
            Ok(0) => {}
            Ok(n) => eprintln!("stopped {n} container(s) of ended steps"),
            // Not up yet, or restarting: connect again next time.
            Err(_) => self.ctx = None,
        }
    }
}

/// Stops the job's service and containers and deletes its dir.
pub fn teardown(job: &Job) -> anyhow::Result<()> {
    let g = Globals::load(RawGlobals::default(), &UserEnv::current())?;
    let opts = UninstallOptions {
        purge: true,
        launcher: None,
    };
    let mut result = uninstall::uninstall(&g, &opts);
    if kill_orphans(job) > 0 && result.is_err() {
        // What they held (mounts, files of other ids) can go now.
        result = uninstall::uninstall(&g, &opts);
    }
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

/// Kills what the job's containerd left if its launcher died first (killed with a step, say):
/// shims, which carry the job's dir in their environment, and everything in their user
/// namespaces (the containers).
fn kill_orphans(job: &Job) -> usize {
    use crate::setup::service::{processes_in, userns_of};
    let me = nix::unistd::getpid().as_raw();
    let mine = userns_of(me);
    let needle = format!("{}={}", super::job::JOB_DIR_ENV, job.dir.display());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    let mut spaces: Vec<std::path::PathBuf> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .filter_map(userns_of)
        .filter(|ns| Some(ns) != mine.as_ref())
        .collect();
    spaces.sort();
    spaces.dedup();
    for ns in spaces {
        let left = processes_in(&ns);
        if !left.is_empty() {
            eprintln!(
                "killing {} process(es) the job's containerd left",
                left.len()
            );
        }
        for p in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed += 1;
        }
    }
    killed
}

/// Whether the job still runs: its steps on this node (slurmd, local), else the controller.
pub fn alive(job_id: &str) -> Alive {
    if listpids(job_id) == Alive::Yes {
        return Alive::Yes;
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

/// Whether a job or step (`JOB`, `JOB.STEP`) has processes on this node, as the node's slurmd
/// says through `scontrol listpids`.
pub fn listpids(target: &str) -> Alive {
    let Ok(out) = Command::new("scontrol")
        .args(["listpids", target])
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

/// What `scontrol listpids` says: processes listed (after its header line) is alive, "does not
/// exist" is over, another failure no answer.
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
    fn listpids_answers() {
        let head = "PID      JOBID    STEPID   LOCALID GLOBALID\n";
        assert_eq!(
            listpids_state(
                true,
                &format!("{head}11711    2        batch    0       0\n"),
                ""
            ),
            Alive::Yes
        );
        assert_eq!(listpids_state(true, head, ""), Alive::No);
        assert_eq!(
            listpids_state(false, head, "StepId=221.0 does not exist on node (null)."),
            Alive::No
        );
        assert_eq!(
            listpids_state(false, "", "Unable to contact slurmd"),
            Alive::Unknown
        );
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
