//! `burrow srun`: srun with pyxis's container flags; each task runs in a container (the
//! translation is burrow::slurm::srun's; this runs srun, and in each task the container).

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use burrow::connection::Globals;
use burrow::slurm::srun::{self, ContainerFlags, ValueOptions, TASK_ENV};
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// srun's own options (-n, -N, --mpi, ...), the container flags, then the command:
    /// --container-image=IMAGE (required), --container-mounts=SRC[:DST[:ro]],...,
    /// --container-workdir=DIR, --container-name=NAME (a container kept for the job on each
    /// node, whose later steps run in it and see what earlier ones left there).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let burrow = std::env::current_exe().context("finding the burrow binary")?;
    if std::env::var_os(TASK_ENV).is_some() && std::env::var_os("SLURM_STEP_ID").is_some() {
        // The job's containerd first, saying so when this task starts it (the commands a
        // named container takes keep their output to themselves).
        if let Some(job) = burrow::slurm::Job::current() {
            job.ensure_running(g, &|line| eprintln!("{line}"))?;
        }
        return task(&burrow, &args.args);
    }
    let help = Command::new("srun")
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .context("running srun (burrow srun needs Slurm's srun on PATH)")?;
    let opts = ValueOptions::from_help(&String::from_utf8_lossy(&help.stdout));
    let split = srun::split(&args.args, &opts)?;
    let argv = srun::srun_argv(&burrow, &split);
    let err = Command::new(&argv[0])
        .args(&argv[1..])
        .env(TASK_ENV, "1")
        .exec();
    Err(anyhow::anyhow!("running srun: {err}"))
}

/// Inside one task: its command in a container of the image (a named one made once per node).
fn task(burrow: &std::path::Path, args: &[String]) -> anyhow::Result<ExitCode> {
    let split = srun::split(args, &ValueOptions::default())?;
    let c = &split.container;
    let argv = match &c.name {
        None => srun::run_args(c, &split.command),
        Some(name) => {
            ensure_named(burrow, c, name)?;
            let env = burrow::slurm::env::task_environment();
            let mut command = split.command.clone();
            if command.is_empty() {
                command.push("sh".into());
            }
            srun::named_exec_args(c, name, &env, &command)
        }
    };
    let err = Command::new(burrow).args(&argv).env_remove(TASK_ENV).exec();
    Err(anyhow::anyhow!("running {}: {err}", burrow.display()))
}

/// Makes the named container on this node unless a task of this job made it already.
fn ensure_named(burrow: &std::path::Path, c: &ContainerFlags, name: &str) -> anyhow::Result<()> {
    let dir = std::env::var_os(burrow::slurm::job::JOB_DIR_ENV)
        .map(std::path::PathBuf::from)
        .context("--container-name works inside a Slurm job's burrow (BURROW_SLURM is off?)")?;
    let lock = std::fs::File::create(dir.join(format!("named-{name}.lock")))?;
    let _held = Flock::lock(lock, FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking the named container {name}: {e}"))?;
    let running = Command::new(burrow)
        .args(["inspect", "-f", "{{.State.Running}}", name])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true");
    if running {
        return Ok(());
    }
    let _ = Command::new(burrow)
        .args(["rm", "-f", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let keepalive = srun::keepalive_binary();
    let made = Command::new(burrow)
        .args(srun::named_run_args(c, name, keepalive.as_deref()))
        .stdout(Stdio::null())
        .status()
        .context("starting the named container")?;
    if !made.success() {
        match keepalive {
            Some(k) => anyhow::bail!(
                "could not start the named container {name} from {} (kept running by the host's {}); burrow's error above says why, and `burrow run --rm {} true` in the job tries the image alone",
                c.image,
                k.display(),
                c.image
            ),
            None => anyhow::bail!(
                "could not start the named container {name} from {}: without catatonit on the host it is kept running by the image's `sleep infinity`, so the image needs sleep (as root: apt-get install catatonit)",
                c.image
            ),
        }
    }
    Ok(())
}
