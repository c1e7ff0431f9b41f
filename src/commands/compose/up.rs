//! `burrow compose up` and `create`: flags to the engine's [`UpOptions`]; without -d the
//! containers' output, prefixed, until they exit or Ctrl-C (then they are stopped).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use burrow::compose::engine::build::{Flags, Policy};
use burrow::compose::engine::hooks;
use burrow::compose::engine::logs::{self, Style};
use burrow::compose::engine::service::Condition;
use burrow::compose::engine::state::Member;
use burrow::compose::engine::up::{self as engine, UpOptions};
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::health::{self, HealthStatus};
use burrow::containers::logquery::LogQuery;
use burrow::containers::record::State;
use burrow::containers::Ctx;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct UpArgs {
    /// Detached: start the containers in the background and exit.
    #[arg(short, long)]
    pub detach: bool,
    /// Wait until the services run (and are healthy, with a healthcheck); implies -d.
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits at most.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub wait_timeout: u64,
    /// Stop all containers when one exits (not with -d).
    #[arg(long)]
    pub abort_on_container_exit: bool,
    /// Exit with this service's container's exit code; implies --abort-on-container-exit.
    #[arg(long, value_name = "SERVICE")]
    pub exit_code_from: Option<String>,
    /// Do not print colours in the attached output.
    #[arg(long)]
    pub no_color: bool,
    /// Print the attached output without the `name  | ` prefix.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Show timestamps in the attached output.
    #[arg(long)]
    pub timestamps: bool,
    /// Show only these services' output (repeatable; also those with `attach: false`).
    #[arg(long, value_name = "SERVICE")]
    pub attach: Vec<String>,
    /// Do not show these services' output (repeatable).
    #[arg(long, value_name = "SERVICE")]
    pub no_attach: Vec<String>,
    /// Also show the output of the named services' dependencies.
    #[arg(long)]
    pub attach_dependencies: bool,
    /// Act on the services' develop.watch rules while attached, as `compose watch` (sync,
    /// sync+restart, sync+exec, rebuild); not with -d or --wait.
    #[arg(short, long)]
    pub watch: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct CreateArgs {
    /// Recreate containers even when their configuration is unchanged.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing containers even when their configuration changed.
    #[arg(long)]
    pub no_recreate: bool,
    /// Give recreated containers new anonymous volumes instead of the previous containers'
    /// (whose data they otherwise keep).
    #[arg(short = 'V', long)]
    pub renew_anon_volumes: bool,
    /// Remove containers of services no longer in the file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Run N containers of SERVICE (SERVICE=N; overrides deploy.replicas/scale).
    #[arg(long, value_name = "SERVICE=N")]
    pub scale: Vec<String>,
    /// Do not start the named services' dependencies.
    #[arg(long)]
    pub no_deps: bool,
    /// Seconds a container being recreated gets to stop.
    #[arg(short = 't', long)]
    pub timeout: Option<u64>,
    /// Build the images of services with `build:` even when they are here.
    #[arg(long, conflicts_with = "no_build")]
    pub build: bool,
    /// Do not build images: a service whose built image is missing is an error.
    #[arg(long)]
    pub no_build: bool,
    /// Services (default: all).
    pub services: Vec<String>,
}

impl CreateArgs {
    fn options(&self, project: &Project) -> anyhow::Result<UpOptions> {
        let mut scale = BTreeMap::new();
        for s in &self.scale {
            let (svc, n) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("invalid --scale {s:?}: give SERVICE=N"))?;
            let n: u32 = n
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid --scale {s:?}: N must be a number"))?;
            project.services_for(&[svc.to_string()])?;
            scale.insert(svc.to_string(), n);
        }
        Ok(UpOptions {
            services: self.services.clone(),
            force_recreate: self.force_recreate,
            no_recreate: self.no_recreate,
            renew_anon_volumes: self.renew_anon_volumes,
            remove_orphans: self.remove_orphans,
            scale,
            no_deps: self.no_deps,
            no_start: false,
            timeout: self.timeout,
            build: match (self.build, self.no_build) {
                (true, _) => Policy::Always,
                (_, true) => Policy::Never,
                _ => Policy::Missing,
            },
            build_flags: Flags::default(),
        })
    }
}

/// `compose scale SERVICE=N ...`: `up -d --no-recreate --scale` of those services.
pub fn scale(
    specs: &[String],
    no_deps: bool,
    project: &Project,
    g: &Globals,
) -> anyhow::Result<ExitCode> {
    let services = specs
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(svc, _)| svc.to_string())
                .ok_or_else(|| anyhow::anyhow!("invalid {s:?}: give SERVICE=N"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let args = CreateArgs {
        force_recreate: false,
        no_recreate: true,
        renew_anon_volumes: false,
        remove_orphans: false,
        scale: specs.to_vec(),
        no_deps,
        timeout: None,
        build: false,
        no_build: false,
        services,
    };
    let opts = args.options(project)?;
    engine::check(project, &project.services_for(&opts.services)?)?;
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        engine::up(&ctx, project, &opts, &super::report).await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn create(args: CreateArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let mut opts = args.options(project)?;
    opts.no_start = true;
    engine::check(project, &project.services_for(&opts.services)?)?;
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        engine::up(&ctx, project, &opts, &super::report).await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn up(args: UpArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = args.create.options(project)?;
    let detach = args.detach || args.wait;
    if detach && (args.abort_on_container_exit || args.exit_code_from.is_some()) {
        anyhow::bail!(
            "--abort-on-container-exit and --exit-code-from cannot be combined with -d or --wait"
        );
    }
    if detach && args.watch {
        anyhow::bail!("--watch follows the services while attached: it cannot be combined with -d or --wait (use `burrow compose watch --no-up` beside a detached up)");
    }
    if let Some(s) = &args.exit_code_from {
        project.services_for(std::slice::from_ref(s))?;
    }
    // Refused before connecting: a file burrow cannot run says so first.
    engine::check(project, &project.services_for(&opts.services)?)?;
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let services = engine::up(&ctx, project, &opts, &super::report).await?;
        let members = super::members(&ctx, project, &services, false).await?;
        if args.wait {
            // Jobs others wait to complete are meant to exit: not waited for.
            let waited = watched(project, &members);
            wait_ready(&ctx, &waited, Duration::from_secs(args.wait_timeout)).await?;
            return Ok(ExitCode::SUCCESS);
        }
        if detach {
            return Ok(ExitCode::SUCCESS);
        }
        let shown = engine::attached_services(
            project,
            &opts.services,
            &services,
            &args.attach,
            &args.no_attach,
            args.attach_dependencies,
        )?;
        let rules = match args.watch {
            true => watch_rules(project, &opts.services)?,
            false => Vec::new(),
        };
        let run = Attached {
            project,
            services: &services,
            shown: &shown,
            args: &args,
            timeout: opts.timeout,
            rules: &rules,
        };
        run.attached(&ctx, members).await
    })
}

/// `up --watch`'s rules: those of the services asked for (all when none); a project without
/// any is watched for nothing, with a warning, as Docker Compose goes on.
fn watch_rules(
    project: &Project,
    services: &[String],
) -> anyhow::Result<Vec<burrow::compose::engine::watch::Rule>> {
    use burrow::compose::engine::watch;
    match watch::rules(project, services) {
        Ok(r) => Ok(r),
        Err(burrow::compose::ComposeError::Load(m)) => {
            super::report(format!("warning: {m}"));
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// `--wait`: every container running, and healthy where it has a healthcheck.
async fn wait_ready(ctx: &Ctx, members: &[Member], timeout: Duration) -> anyhow::Result<()> {
    for m in members {
        let has_check = health::config_of(&m.container)
            .and_then(|h| h.probe())
            .is_some();
        if has_check {
            health::wait_for(ctx, m.id(), HealthStatus::Healthy, timeout).await?;
            super::report(format!("Container {}  Healthy", m.name));
        } else if !m.state(ctx).await?.is_running() {
            anyhow::bail!(
                "container {} is not running (see `burrow compose logs`)",
                m.name
            );
        }
    }
    Ok(())
}

/// What an attached `up` follows.
struct Attached<'a> {
    project: &'a Project,
    services: &'a [String],
    shown: &'a [String],
    args: &'a UpArgs,
    timeout: Option<u64>,
    /// `--watch`'s rules (none without it).
    rules: &'a [burrow::compose::engine::watch::Rule],
}

impl Attached<'_> {
    /// The attached `up`: output until every container stopped, one stopped (abort), or
    /// Ctrl-C; with --watch, the watch rules acted on meanwhile (and the containers a rebuild
    /// made followed), until Ctrl-C.
    async fn attached(&self, ctx: &Ctx, mut members: Vec<Member>) -> anyhow::Result<ExitCode> {
        let (project, args) = (self.project, self.args);
        let style = Style {
            color: !args.no_color && std::io::IsTerminal::is_terminal(&std::io::stdout()),
            timestamps: args.timestamps,
            no_prefix: args.no_log_prefix,
        };
        let abort = args.abort_on_container_exit || args.exit_code_from.is_some();
        let watching = !self.rules.is_empty();
        let rebuilt = tokio::sync::Notify::new();
        let watch = async {
            if !watching {
                return std::future::pending().await;
            }
            super::report("Watch enabled".to_string());
            burrow::compose::engine::watch::run(
                ctx,
                project,
                self.rules,
                Duration::from_millis(500),
                &super::report,
                Some(&rebuilt),
            )
            .await
        };
        tokio::pin!(watch);
        // The containers whose output was shown from their start (a rebuild's new ones are
        // shown from theirs, the others from then on).
        let mut followed: Vec<String> = Vec::new();
        let mut output_done = false;
        loop {
            let now = std::time::SystemTime::now();
            let from_start = LogQuery::parse(None, None, "all", true, now)?;
            let from_now = LogQuery::parse(Some("0s"), None, "all", true, now)?;
            let (old, new): (Vec<&Member>, Vec<&Member>) = members
                .iter()
                .filter(|m| self.shown.contains(&m.service))
                .partition(|m| followed.iter().any(|f| f == m.id()));
            let watched = watched(project, &members);
            // With no output to show, the `up` still lasts until its containers stop.
            let shown = async {
                if output_done {
                    return std::future::pending().await;
                }
                if old.is_empty() && new.is_empty() {
                    all_stopped(ctx, &members).await;
                    return Ok(());
                }
                let (a, b) = tokio::join!(
                    logs::show(ctx, &new, &from_start, style),
                    logs::show(ctx, &old, &from_now, style)
                );
                a.and(b)
            };
            tokio::select! {
                r = shown => {
                    r?;
                    if !watching {
                        break;
                    }
                    // Watching goes on after the containers stopped (a rebuild starts them).
                    output_done = true;
                }
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                    break;
                }
                _ = first_exit(ctx, &watched), if abort => {
                    eprintln!("Aborting on container exit...");
                    break;
                }
                r = &mut watch => {
                    r?;
                    break;
                }
                _ = rebuilt.notified() => {
                    followed = members.iter().map(|m| m.id().to_string()).collect();
                    members = super::members(ctx, project, self.services, false).await?;
                    output_done = false;
                }
            }
            if followed.is_empty() {
                followed = members.iter().map(|m| m.id().to_string()).collect();
            }
        }
        for m in &members {
            if m.state(ctx).await?.is_running() {
                hooks::stop(ctx, project, m, self.timeout).await?;
                super::report(format!("Container {}  Stopped", m.name));
            }
        }
        let Some(svc) = &args.exit_code_from else {
            return Ok(ExitCode::SUCCESS);
        };
        for m in members.iter().filter(|m| &m.service == svc) {
            if let State::Exited { code, .. } = m.state(ctx).await? {
                return Ok(ExitCode::from(code as u8));
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The containers whose exit aborts an attached `up` (and that `--wait` waits for): all but
/// those of services others wait to complete (`service_completed_successfully`), which are
/// meant to exit.
fn watched(project: &Project, members: &[Member]) -> Vec<Member> {
    let jobs: Vec<String> = project
        .compose
        .services
        .values()
        .flat_map(burrow::compose::engine::service::dependencies)
        .filter(|d| d.condition == Condition::CompletedSuccessfully)
        .map(|d| d.service)
        .collect();
    members
        .iter()
        .filter(|m| !jobs.contains(&m.service))
        .cloned()
        .collect()
}

/// Returns once none of the containers is running.
async fn all_stopped(ctx: &Ctx, members: &[Member]) {
    loop {
        let mut running = false;
        for m in members {
            running |= m.state(ctx).await.is_ok_and(|s| s.is_running());
        }
        if !running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Returns once any of the containers is no longer running.
async fn first_exit(ctx: &Ctx, members: &[Member]) {
    loop {
        for m in members {
            match m.state(ctx).await {
                Ok(s) if s.is_running() => {}
                _ => return,
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
