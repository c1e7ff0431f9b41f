//! `burrow compose run` (a one-off container of a service, `PROJECT-SERVICE-run-ID`, its
//! dependencies started first) and `compose exec` (a command in a service's container), through
//! the container commands' start and exec.

use std::io::IsTerminal;
use std::process::ExitCode;

use burrow::compose::engine::build;
use burrow::compose::engine::convert::{self, Instance};
use burrow::compose::engine::hooks;
use burrow::compose::engine::naming;
use burrow::compose::engine::service::Service;
use burrow::compose::engine::up as engine;
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::values::{PortSpec, RestartPolicy};
use burrow::containers::{start, Ctx};

use crate::commands::container::{exec as cexec, run as crun};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background; print the container's name.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables (KEY=VALUE).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Override the image's entrypoint.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Publish the service's ports (not published by default).
    #[arg(long)]
    pub service_ports: bool,
    /// Publish a port (HOST:CONTAINER).
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// The container's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Do not allocate a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Run as this user.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Do not start the service's dependencies.
    #[arg(long)]
    pub no_deps: bool,
    /// Build the service's image first (`build:`), even when it is here.
    #[arg(long)]
    pub build: bool,
    pub service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(args: Args, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    project.services_for(std::slice::from_ref(&args.service))?;
    let tty = !args.no_tty && !args.detach && std::io::stdin().is_terminal();
    let name = burrow::connection::runtime().block_on(async {
        let ctx = Ctx::connect(g).await?;
        let mut svc = Service::of(project, &args.service)?;
        let policy = if args.build {
            build::Policy::Always
        } else {
            build::Policy::Missing
        };
        let flags = build::Flags::default();
        build::ensure(
            &ctx,
            project,
            std::slice::from_mut(&mut svc),
            policy,
            &flags,
            &super::report,
        )
        .await?;
        engine::prepare_oneoff(&ctx, project, &svc, args.no_deps, &super::report).await?;
        let inst = Instance {
            number: 1,
            oneoff: true,
            name: args
                .name
                .clone()
                .unwrap_or_else(|| naming::oneoff_name(&project.name, &svc.name)),
        };
        let (mut req, warnings) = convert::request(project, &svc, &inst)?;
        if !args.service_ports {
            req.host_config.port_bindings.clear();
        }
        for p in &args.publish {
            req.host_config.port_bindings.push(p.parse::<PortSpec>()?);
        }
        if !args.command.is_empty() {
            req.config.cmd = args.command.clone();
        }
        if let Some(e) = &args.entrypoint {
            req.config.entrypoint = Some(burrow::compose::engine::service::split_shell(e));
        }
        req.config.env.extend(args.env.iter().cloned());
        if args.user.is_some() {
            req.config.user = args.user.clone();
        }
        if args.workdir.is_some() {
            req.config.working_dir = args.workdir.clone();
        }
        req.config.tty = tty;
        req.config.open_stdin = !args.detach && !args.no_tty;
        req.host_config.restart_policy = RestartPolicy::No;
        req.host_config.auto_remove = args.rm;
        let id =
            engine::create_request(&ctx, project, &svc, &req, warnings, &super::report).await?;
        if args.detach {
            let c = ctx.find(&id).await?;
            start::start_background(&ctx, &c).await?;
            hooks::run(&ctx, &svc, &c, hooks::When::PostStart).await?;
            println!("{}", inst.name);
        }
        Ok::<_, anyhow::Error>((inst.name, svc, id))
    })?;
    let (name, svc, id) = name;
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    // The post_start hooks run beside the attached start, once the task runs.
    hooks::spawn_when_running(g, svc, id);
    crun::start(
        crun::StartArgs {
            attach: true,
            interactive: !args.no_tty,
            detach_keys: None,
            containers: vec![name],
        },
        g,
    )
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct ExecArgs {
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables (KEY=VALUE).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Run as this user.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the process.
    #[arg(long)]
    pub privileged: bool,
    /// Do not allocate a terminal.
    #[arg(short = 'T', long = "no-TTY")]
    pub no_tty: bool,
    /// Which container of the service (1 = the first).
    #[arg(long, default_value_t = 1)]
    pub index: u32,
    pub service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn exec(args: ExecArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let container = super::container_of(g, project, &args.service, args.index)?;
    let tty = !args.no_tty && !args.detach && std::io::stdin().is_terminal();
    cexec::run(
        cexec::Args {
            interactive: !args.no_tty && !args.detach,
            tty,
            detach: args.detach,
            env: args.env,
            env_file: Vec::new(),
            user: args.user,
            workdir: args.workdir,
            privileged: args.privileged,
            detach_keys: None,
            container,
            command: args.command,
        },
        g,
    )
}
