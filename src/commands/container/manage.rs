//! `stop`, `kill`, `restart`, `rm`, `wait`, `pause`, `unpause`, `rename`, `port`, `top` and
//! `container prune`.

use burrow::containers::prunefilter::PruneFilters;
use std::process::ExitCode;

use containerd_client::services::v1::Container;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::context::LookupError;
use burrow::containers::ops;
use burrow::containers::values::Signal;

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "timeout", visible_alias = "time")]
    pub time: Option<u64>,
    /// Signal to stop the container with (default: its stop signal, else TERM).
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct RmArgs {
    /// Force the removal of a running container (SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes too (named volumes are kept, as in Docker).
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct UpdateArgs {
    /// Restart policy: no, always, unless-stopped, on-failure[:MAX-RETRIES].
    #[arg(long)]
    pub restart: Option<String>,
    #[command(flatten)]
    pub limits: super::run::LimitFlags,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    pub container: String,
    /// PORT[/PROTO] to show.
    pub port: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    pub container: String,
    /// ps options (default: -f); rows are the container's processes whatever ps lists.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only containers matching: until=TIME (created before; a timestamp or a duration such
    /// as 24h), label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
/// Runs `op` on each named container, printing each name done and each error; exit 1 if any
/// failed, as Docker's multi-container commands do.
async fn each<F>(ctx: &Ctx, names: &[String], quiet: bool, op: F) -> ExitCode
where
    F: AsyncFn(&Ctx, &Container) -> anyhow::Result<()>,
{
    each_of(ctx, names, quiet, false, op).await
}

/// [`each`]; with `missing_ok` a name no container has is passed over silently (`rm -f`).
async fn each_of<F>(ctx: &Ctx, names: &[String], quiet: bool, missing_ok: bool, op: F) -> ExitCode
where
    F: AsyncFn(&Ctx, &Container) -> anyhow::Result<()>,
{
    let mut failed = false;
    for q in names {
        let res = match ctx.find(q).await {
            Ok(c) => op(ctx, &c).await,
            Err(e) if missing_ok && LookupError::is_not_found(&e) => continue,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) if !quiet => println!("{q}"),
            Ok(()) => {}
            Err(e) => {
                crate::commands::error::say(&e);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn stop(args: StopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let time = args.time;
        let signal: Option<Signal> = args.signal.as_deref().map(str::parse).transpose()?;
        Ok(each(&ctx, &args.containers, false, async |ctx, c| {
            ops::stop_with(ctx, c, signal, time).await
        })
        .await)
    })
}

/// `restart`: each container stopped, then started again in the background, in turn.
pub fn restart(args: StopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async {
        let ctx = Ctx::connect(g).await?;
        let time = args.time;
        let signal: Option<Signal> = args.signal.as_deref().map(str::parse).transpose()?;
        Ok(each(&ctx, &args.containers, false, async |ctx, c| {
            ops::restart(ctx, c, signal, time).await
        })
        .await)
    })
}

pub fn kill(args: KillArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let sig: Signal = args.signal.parse()?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        Ok(each(&ctx, &args.containers, false, async |ctx, c| {
            ops::kill(ctx, c, sig).await
        })
        .await)
    })
}

pub fn rm(args: RmArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let (force, volumes) = (args.force, args.volumes);
        // With -f a name that is not there is no error (Docker's `rm -f`).
        Ok(
            each_of(&ctx, &args.containers, false, force, async |ctx, c| {
                ops::remove(ctx, c, force, volumes).await
            })
            .await,
        )
    })
}

pub fn wait(args: ContainersArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            println!("{}", ops::wait(&ctx, &c).await?);
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn pause(args: ContainersArgs, g: &Globals, resume: bool) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        for q in &args.containers {
            let c = ctx.find(q).await?;
            ops::pause(&ctx, &c, resume).await?;
            println!("{q}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn update(args: UpdateArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    use burrow::containers::values::{parse_flag, RestartPolicy};
    let restart: Option<RestartPolicy> = args
        .restart
        .as_deref()
        .map(|r| parse_flag("--restart", r))
        .transpose()?;
    let u = ops::Update {
        restart,
        limits: args.limits.limits()?,
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        Ok(each(&ctx, &args.containers, false, async |ctx, c| {
            for w in ops::update(ctx, c, &u).await? {
                eprintln!("burrow: warning: {w}");
            }
            // A running container with a policy now needs its monitor.
            if u.restart.is_some_and(|p| p != RestartPolicy::No)
                && super::state(ctx, &c.id).await?.is_running()
            {
                burrow::containers::start::spawn_exit_monitor(ctx, &c.id).await?;
            }
            Ok(())
        })
        .await)
    })
}

pub fn rename(args: RenameArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        ops::rename(&ctx, &c, &args.new_name).await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn port(args: PortArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        let want = args.port.as_deref().map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            (n.parse::<u16>().unwrap_or(0), proto.to_string())
        });
        let mut any = false;
        // Docker's rule (a stopped container's bindings went with its network), as ps shows.
        let state = super::state(&ctx, &c.id).await?;
        let shown = super::shown_ports(&c, &state, &Default::default());
        for p in shown.into_iter().filter_map(|p| p.binding) {
            match &want {
                Some((n, proto)) => {
                    if p.container_port == *n && &p.protocol == proto {
                        println!("{}:{}", p.host_ip, p.host_port);
                        any = true;
                    }
                }
                None => {
                    println!(
                        "{}/{} -> {}:{}",
                        p.container_port, p.protocol, p.host_ip, p.host_port
                    );
                    any = true;
                }
            }
        }
        if let (Some(p), false) = (&args.port, any) {
            anyhow::bail!("no public port {p} published for {}", args.container);
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn top(args: TopArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        let table = burrow::containers::top::top(&ctx, &c, &args.ps_args).await?;
        print!("{}", table.render());
        Ok(ExitCode::SUCCESS)
    })
}

/// `container prune`.
pub fn prune(args: PruneArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let filters = PruneFilters::parse(args.filter.iter().map(String::as_str), true, &[])?;
    if !crate::commands::confirm("container prune", "all stopped containers", args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        println!("Deleted Containers:");
        for id in ops::prune_filtered(&ctx, &filters).await? {
            println!("{id}");
        }
        Ok(ExitCode::SUCCESS)
    })
}
