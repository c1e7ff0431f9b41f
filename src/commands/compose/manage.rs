//! `compose start/stop/restart/kill/rm/pause/unpause/wait/top/port/images/pull/push/cp/attach/
//! commit/export/scale`: the
//! project's containers found by their labels, each handed to the library's operation (or the
//! container command) that `burrow` itself uses.

use std::process::ExitCode;

use std::sync::Arc;

use burrow::compose::engine::hooks;
use burrow::compose::engine::registry;
use burrow::compose::engine::service::Service;
use burrow::compose::engine::state::Member;
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::values::Signal;
use burrow::containers::{ops, start, top, Ctx};
use burrow::images::progress::Progress;

use crate::commands::container::{block_on, cp as ccp, manage as cmanage};
use crate::commands::images::with_store;

#[derive(Debug, clap::Args)]
pub struct Services {
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PullArgs {
    /// Skip every service with `build:` (those with only `build:` are always skipped).
    #[arg(long)]
    pub ignore_buildable: bool,
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the containers.
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal to send (name or number).
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct RmArgs {
    /// Do not ask for confirmation (burrow never asks).
    #[arg(short, long)]
    pub force: bool,
    /// Stop the containers first.
    #[arg(short, long)]
    pub stop: bool,
    /// Remove their anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// tcp or udp.
    #[arg(long, default_value = "tcp")]
    pub protocol: String,
    pub service: String,
    pub private_port: u16,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct CpArgs {
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Keep the files' owners.
    #[arg(short, long)]
    pub archive: bool,
    /// Follow a symbolic link given as SRC_PATH.
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// SERVICE:SRC_PATH or a local path.
    pub src: String,
    /// SERVICE:DEST_PATH or a local path.
    pub dest: String,
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    #[command(flatten)]
    pub opts: crate::commands::container::attach::AttachFlags,
    pub service: String,
}

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    #[command(flatten)]
    pub opts: crate::commands::container::commit::CommitFlags,
    pub service: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<String>,
    pub service: String,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct ScaleArgs {
    /// Do not start the services' dependencies.
    #[arg(long)]
    pub no_deps: bool,
    /// SERVICE=N: how many containers each service runs.
    #[arg(required = true, value_name = "SERVICE=N")]
    pub scale: Vec<String>,
}

pub fn attach(args: AttachArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let container = super::container_of(g, project, &args.service, args.index)?;
    crate::commands::container::attach::run(
        crate::commands::container::attach::Args {
            opts: args.opts,
            container,
        },
        g,
    )
}

pub fn commit(args: CommitArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let container = super::container_of(g, project, &args.service, args.index)?;
    crate::commands::container::commit::run(
        crate::commands::container::commit::Args {
            opts: args.opts,
            container,
            name: args.name,
        },
        g,
    )
}

pub fn export(args: ExportArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let container = super::container_of(g, project, &args.service, args.index)?;
    crate::commands::container::export::run(
        crate::commands::container::export::Args {
            output: args.output,
            container,
        },
        g,
    )
}

pub fn scale(args: ScaleArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    super::up::scale(&args.scale, args.no_deps, project, g)
}

/// Runs `op` on each container of `services` (in dependency order; reversed with `reverse`).
fn each<F>(
    g: &Globals,
    project: &Project,
    services: &[String],
    reverse: bool,
    op: F,
) -> anyhow::Result<ExitCode>
where
    F: AsyncFn(&Ctx, &Member) -> anyhow::Result<()>,
{
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let mut order = project.services_for(services)?;
        if !services.is_empty() {
            order.retain(|s| services.contains(s));
        }
        if reverse {
            order.reverse();
        }
        let members = super::members(&ctx, project, services, false).await?;
        let mut code = ExitCode::SUCCESS;
        for s in &order {
            for m in members.iter().filter(|m| &m.service == s) {
                if let Err(e) = op(&ctx, m).await {
                    eprintln!("burrow: {}: {e:#}", m.name);
                    code = ExitCode::from(1);
                }
            }
        }
        Ok(code)
    })
}

pub fn start(args: Services, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, false, async |ctx, m| {
        if !m.state(ctx).await?.is_running() {
            start::start_background(ctx, &m.container).await?;
            hooks::started(ctx, project, m).await?;
            super::report(format!("Container {}  Started", m.name));
        }
        Ok(())
    })
}

pub fn stop(args: StopArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, true, async |ctx, m| {
        if m.state(ctx).await?.is_running() {
            hooks::stop(ctx, project, m, args.timeout).await?;
            super::report(format!("Container {}  Stopped", m.name));
        }
        Ok(())
    })
}

pub fn restart(args: StopArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let services = burrow::compose::engine::deps::with_restart_dependents(project, &args.services)?;
    each(g, project, &services, false, async |ctx, m| {
        if m.state(ctx).await?.is_running() {
            hooks::stop(ctx, project, m, args.timeout).await?;
        }
        let c = ctx.find(m.id()).await?;
        start::start_background(ctx, &c).await?;
        hooks::started(ctx, project, m).await?;
        super::report(format!("Container {}  Restarted", m.name));
        Ok(())
    })
}

pub fn kill(args: KillArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let sig: Signal = args
        .signal
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid signal {:?}: {e}", args.signal))?;
    each(g, project, &args.services, true, async |ctx, m| {
        if m.state(ctx).await?.is_running() {
            ops::kill(ctx, &m.container, sig).await?;
            super::report(format!("Container {}  Killed", m.name));
        }
        Ok(())
    })
}

pub fn rm(args: RmArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, true, async |ctx, m| {
        if m.state(ctx).await?.is_running() {
            if !args.stop {
                super::report(format!(
                    "warning: container {} is running: not removed (stop it first, or use -s)",
                    m.name
                ));
                return Ok(());
            }
            hooks::stop(ctx, project, m, None).await?;
        }
        let c = ctx.find(m.id()).await?;
        ops::remove(ctx, &c, true, args.volumes).await?;
        super::report(format!("Container {}  Removed", m.name));
        Ok(())
    })
}

pub fn pause(
    args: Services,
    project: &Project,
    g: &Globals,
    resume: bool,
) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, false, async |ctx, m| {
        ops::pause(ctx, &m.container, resume).await?;
        let verb = if resume { "Unpaused" } else { "Paused" };
        super::report(format!("Container {}  {verb}", m.name));
        Ok(())
    })
}

pub fn wait(args: Services, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, false, async |ctx, m| {
        let code = ops::wait(ctx, &m.container).await?;
        println!("{code}");
        Ok(())
    })
}

pub fn top(args: Services, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    each(g, project, &args.services, false, async |ctx, m| {
        if m.state(ctx).await?.is_running() {
            let t = top::top(ctx, &m.container, &[]).await?;
            println!("{}\n{}", m.name, t.render());
        }
        Ok(())
    })
}

pub fn images(args: Services, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    println!("CONTAINER\tIMAGE");
    each(g, project, &args.services, false, async |_ctx, m| {
        println!("{}\t{}", m.name, m.container.image);
        Ok(())
    })
}

/// The images to pull or push, once each; skipped services said as Docker Compose says them.
fn service_images(
    project: &Project,
    services: &[String],
    skip: impl Fn(&Service) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for s in registry::service_images(project, services, skip)? {
        if s.skipped {
            eprintln!(
                " Service {}  Skipped - the image is built (`build:`), not pulled",
                s.service
            );
        } else if !out.contains(&s.image) {
            out.push(s.image);
        }
    }
    Ok(out)
}

pub fn pull(args: PullArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let skip = |s: &Service| s.builds_only() || (args.ignore_buildable && s.get("build").is_some());
    let images = service_images(project, &args.services, skip)?;
    let progress = Arc::new(Progress::new(false));
    with_store(g, async |store| {
        let mut downloaded = false;
        for image in &images {
            downloaded |= registry::pull(store, image, progress.clone()).await?;
            println!(" {image} Pulled");
        }
        if downloaded && store.squashed_owners {
            eprintln!("{}", burrow::images::SQUASHED_OWNERS_NOTE);
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn push(args: Services, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let images = service_images(project, &args.services, |_| false)?;
    let progress = Progress::new(false);
    with_store(g, async |store| {
        for image in &images {
            let digest = registry::push(store, image, &progress).await?;
            println!(" {image} Pushed ({digest})");
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn port(args: PortArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let container = super::container_of(g, project, &args.service, args.index)?;
    cmanage::port(
        cmanage::PortArgs {
            container,
            port: Some(format!("{}/{}", args.private_port, args.protocol)),
        },
        g,
    )
}

/// `SERVICE:PATH` with the service's container in place of the service.
fn side(g: &Globals, project: &Project, arg: &str, index: u32) -> anyhow::Result<String> {
    match arg.split_once(':') {
        Some((svc, path)) if !svc.contains('/') => Ok(format!(
            "{}:{path}",
            super::container_of(g, project, svc, index)?
        )),
        _ => Ok(arg.to_string()),
    }
}

pub fn cp(args: CpArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let src = side(g, project, &args.src, args.index)?;
    let dest = side(g, project, &args.dest, args.index)?;
    ccp::run(
        ccp::Args {
            archive: args.archive,
            follow_link: args.follow_link,
            quiet: false,
            src,
            dest,
        },
        g,
    )
}
