//! `burrow exec`: a new process in a running container (the container's process spec with the
//! given args, env, user and cwd), attached in a session or detached.

use burrow::containers::exec::{ExecNote, ExecRequest};
use std::process::ExitCode;

use super::detach::{self, Detached};
use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::execs::{self, Attached, StartError};
use burrow::session::{self, DetachKeys, Endpoints, Local, Outcome, Target};

// `burrow exec` (its help text is on the subcommand).
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines; # comments).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// Keys that detach from the command and leave it running (with -i; ctrl-p,ctrl-q by
    /// default with -it).
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        if !super::state(&ctx, &c.id).await?.is_running() {
            anyhow::bail!(
                "container {} is not running (start it with `burrow start {}`)",
                super::name_of(&c),
                super::name_of(&c)
            );
        }
        if args.tty
            && args.interactive
            && !args.detach
            && !std::io::IsTerminal::is_terminal(&std::io::stdin())
        {
            anyhow::bail!(
                "the input device is not a TTY: exec -it needs a terminal on stdin (leave out -t to pipe input)"
            );
        }
        let process = exec_process(&ctx, &c, &args).await?;
        let exec_id = format!("exec-{}", &burrow::containers::store::new_id()[..12]);
        let target = Target::exec(ctx.client.clone(), &c.id, &exec_id);
        if args.detach {
            return Ok(run_detached(&ctx, &target, &process).await);
        }
        run_attached(&ctx, &target, &process, &args).await
    })
}

/// The exec's process, as the library builds it from `args` (env files read here).
async fn exec_process(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
    args: &Args,
) -> anyhow::Result<oci_spec::runtime::Process> {
    let mut env = super::run::read_env_files(&args.env_file)?;
    env.extend(args.env.iter().cloned());
    // A task of a `srun --mpi=pmi2` step passing its PMI_FD (`burrow srun --container-name`):
    // the container reaches the PMI server through the relay instead.
    if !args.detach {
        burrow::slurm::pmi::relay_exec_env(&ctx.ep, &mut env)?;
    }
    let req = ExecRequest {
        cmd: args.command.clone(),
        tty: args.tty,
        env,
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        privileged: args.privileged,
    };
    burrow::containers::exec::process(ctx, c, &req, &|note| match note {
        ExecNote::SingleIdUser { user } => eprintln!(
            "burrow: note: user {user:?} runs as uid 0 (you, outside): your user has no \
             subordinate ids, so no other id exists in its containers"
        ),
    })
    .await
}

/// Docker's exit code for an exec that could not be created or started, said on stderr.
fn not_started(e: burrow::containers::lifecycle::LifecycleError) -> ExitCode {
    crate::commands::error::Failure::from(e)
        .outside_run()
        .report()
}

/// `exec -d`: the process started without stdio.
async fn run_detached(
    ctx: &Ctx,
    target: &Target,
    process: &oci_spec::runtime::Process,
) -> ExitCode {
    match burrow::containers::execs::start_detached(ctx, target, process).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => not_started(e),
    }
}

/// An attached exec: its stdio joined to the CLI's until it exits (its status) or the user
/// detaches (it runs on, its output read by a background reader).
async fn run_attached(
    ctx: &Ctx,
    target: &Target,
    process: &oci_spec::runtime::Process,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let (id, exec_id) = (target.id(), target.exec_id());
    let keys = args.detach_keys.as_deref();
    let opts = session::Options {
        stdin: args.interactive,
        tty: args.tty,
        detach_keys: DetachKeys::for_session(keys, args.interactive, args.tty)?,
        log: None,
    };
    let local = Local {
        raw: args.tty,
        follow_size: args.tty,
        ..Local::default()
    };
    let ends = Endpoints::terminal(local);
    let started = execs::start_attached(ctx, target, process, opts, ends).await;
    let Attached {
        mut session, exit, ..
    } = match started {
        Ok(a) => a,
        Err(StartError::Lifecycle(e)) => return Ok(not_started(e)),
        Err(e) => return Err(e.into()),
    };
    match session.attend(target, exit).await? {
        Outcome::Detached => {
            let fifo_dir = session::fifo::dir(&ctx.store.container_dir(id), exec_id);
            detach::hand_over(ctx, id, session, &fifo_dir, Detached::Exec { exec_id })?;
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Exited(status) => {
            let _ = ctx.client.delete_exec(id, exec_id).await;
            Ok(ExitCode::from(session::exit::code(status)))
        }
    }
}

/// A detached exec to clean up ([`burrow::selfexec::Helper::ExecCleanup`]).
#[derive(Debug)]
pub struct CleanupArgs {
    pub container: String,
    pub exec_id: String,
    pub fifo_dir: std::path::PathBuf,
}

/// After a detached exec's output ended: waits for its process, deletes the exec from
/// containerd and removes its FIFOs.
pub fn cleanup(args: CleanupArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        // The output can end before the process does (it closed its stdio): deleting a live
        // exec would kill it.
        let _ = ctx.client.wait_exec(&args.container, &args.exec_id).await;
        let _ = ctx.client.delete_exec(&args.container, &args.exec_id).await;
        if session::fifo::is_exec_dir(&args.fifo_dir, &args.exec_id) {
            let _ = std::fs::remove_dir_all(&args.fifo_dir);
        }
        Ok(ExitCode::SUCCESS)
    })
}
