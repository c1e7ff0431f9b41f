//! `compose up` and `create`: the project's networks and volumes ([`super::resources`]), then
//! each service's containers in dependency order (each level of it at once), each
//! dependency's condition awaited first ([`super::deps`]); images of `build:` services built first ([`super::build`]). Idempotent: a container whose config hash still matches
//! is left alone (started if stopped); one whose hash changed is recreated.

use std::collections::BTreeMap;

use super::convert::{self, Instance};
use super::naming;
use super::service::Service;
use super::state::{Member, ProjectState};
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::create::{self, CreateOptions, Note};
use crate::containers::{ops, start, Ctx};

/// What `up` (or `create`) is asked.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// `--scale SVC=N`.
    pub scale: BTreeMap<String, u32>,
    /// Only the named services, not their dependencies.
    pub no_deps: bool,
    /// Create only (`compose create`).
    pub no_start: bool,
    /// `-t`: seconds a recreated container gets to stop.
    pub timeout: Option<u64>,
    /// When `build:` services are built (`--build`, `--no-build`).
    pub build: super::build::Policy,
    pub build_flags: super::build::Flags,
}

/// Progress lines (`Container app-web-1  Started`) and warnings, as the CLI prints them.
pub type Report<'a> = &'a (dyn Fn(String) + Sync);

/// Brings the project up; returns the services it acted on, in order.
pub async fn up(
    ctx: &Ctx,
    project: &Project,
    opts: &UpOptions,
    report: Report<'_>,
) -> Result<Vec<String>, ComposeError> {
    let order = if opts.no_deps && !opts.services.is_empty() {
        project.services_for(&[])?;
        opts.services.clone()
    } else {
        project.services_for(&opts.services)?
    };
    let mut services = check(project, &order)?;
    super::build::ensure(
        ctx,
        project,
        &mut services,
        opts.build,
        &opts.build_flags,
        report,
    )
    .await?;
    super::resources::ensure_networks(ctx, project, &services, report).await?;
    super::resources::ensure_volumes(ctx, project, report).await?;
    // Services whose containers were made anew: dependents with `restart: true` follow.
    // Each dependency level proceeds at once (Docker Compose also starts independent services
    // side by side); a level waits for the one before it.
    let mut changed: Vec<String> = Vec::new();
    for level in super::deps::levels(&services) {
        let done = futures_util::future::join_all(
            level
                .iter()
                .map(|svc| bring_up(ctx, project, svc, &order, opts, &changed, report)),
        )
        .await;
        for (svc, made) in level.iter().zip(done) {
            if made? {
                changed.push(svc.name.clone());
            }
        }
    }
    orphans(ctx, project, opts.remove_orphans, opts.timeout, report).await?;
    Ok(order)
}

/// One service of `up`: its dependencies' conditions awaited, then its containers converged
/// (or restarted, when a dependency with `restart: true` was recreated); true when it created,
/// recreated or restarted any.
async fn bring_up(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    order: &[String],
    opts: &UpOptions,
    changed: &[String],
    report: Report<'_>,
) -> Result<bool, ComposeError> {
    if !opts.no_start {
        for dep in svc.dependencies() {
            if order.contains(&dep.service) || !opts.no_deps {
                super::deps::await_dependency(ctx, project, svc, &dep, report).await?;
            }
        }
    }
    let restart = svc
        .dependencies()
        .iter()
        .any(|d| d.restart && changed.contains(&d.service));
    if converge(ctx, project, svc, opts, report).await? {
        return Ok(true);
    }
    if restart && !opts.no_start {
        restart_service(ctx, project, svc, opts.timeout, report).await?;
        return Ok(true);
    }
    Ok(false)
}

/// The services `names` names, each checked to become a valid container request (what can be
/// refused is refused before anything is made).
pub fn check(project: &Project, names: &[String]) -> Result<Vec<Service>, ComposeError> {
    let services: Vec<Service> = names
        .iter()
        .map(|n| Service::of(project, n))
        .collect::<Result<_, _>>()?;
    for s in &services {
        let inst = Instance {
            number: 1,
            oneoff: false,
            name: naming::container_name(&project.name, &s.name, 1),
        };
        convert::request(project, s, &inst)?;
    }
    Ok(services)
}

/// Restarts the running containers of `svc` (a dependency with `restart: true` was recreated).
async fn restart_service(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    timeout: Option<u64>,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let state = ProjectState::read(ctx, &project.name).await?;
    for m in state.of_service(&svc.name) {
        if m.state(ctx).await?.is_running() {
            ops::stop(ctx, &m.container, timeout).await?;
            let c = ctx.find(m.id()).await?;
            start::start_background(ctx, &c).await?;
            report(format!("Container {}  Restarted", m.name));
        }
    }
    Ok(())
}

/// Makes the service's containers match its config and replica count; true when it created
/// or recreated any.
async fn converge(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    opts: &UpOptions,
    report: Report<'_>,
) -> Result<bool, ComposeError> {
    let want = opts
        .scale
        .get(&svc.name)
        .copied()
        .unwrap_or_else(|| svc.replicas());
    if want > 1 && svc.container_name().is_some() {
        return Err(ComposeError::service(
            &svc.name,
            "container_name is set: the service cannot have more than one container",
        ));
    }
    let hash = svc.config_hash();
    let state = ProjectState::read(ctx, &project.name).await?;
    let existing: Vec<&Member> = state.of_service(&svc.name).collect();
    for m in existing.iter().filter(|m| m.number > want) {
        remove_member(ctx, m, opts.timeout, false, report).await?;
    }
    let mut made = false;
    for number in 1..=want {
        let found = existing.iter().find(|m| m.number == number);
        let stale =
            |m: &Member| opts.force_recreate || m.label(naming::CONFIG_HASH) != Some(hash.as_str());
        match found {
            Some(m) if !opts.no_recreate && stale(m) => {
                remove_member(ctx, m, opts.timeout, false, report).await?;
                make(
                    ctx,
                    project,
                    svc,
                    number,
                    opts.no_start,
                    report,
                    "Recreated",
                )
                .await?;
                made = true;
            }
            Some(m) => {
                if !opts.no_start && !m.state(ctx).await?.is_running() {
                    start::start_background(ctx, &m.container).await?;
                    report(format!("Container {}  Started", m.name));
                } else {
                    report(format!("Container {}  Running", m.name));
                }
            }
            None => {
                make(ctx, project, svc, number, opts.no_start, report, "Created").await?;
                made = true;
            }
        }
    }
    Ok(made)
}

/// Creates container `number` of `svc` and, unless `no_start`, starts it.
async fn make(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    number: u32,
    no_start: bool,
    report: Report<'_>,
    verb: &str,
) -> Result<(), ComposeError> {
    let name = svc
        .container_name()
        .unwrap_or_else(|| naming::container_name(&project.name, &svc.name, number));
    let inst = Instance {
        number,
        oneoff: false,
        name,
    };
    let (req, warnings) = convert::request(project, svc, &inst)?;
    // A container started at once gets its networks attached while it is created (as `run`).
    let opts = CreateOptions { ahead: !no_start };
    let created = create_with(ctx, svc, &req, warnings, opts, report).await?;
    report(format!("Container {}  {verb}", inst.name));
    if no_start {
        return Ok(());
    }
    let c = ctx.find(&created.id).await?;
    if let Err(e) = start::start_created(ctx, &c, created).await {
        return Err(ComposeError::service(
            &svc.name,
            format!("starting {}: {e:#}", inst.name),
        ));
    }
    report(format!("Container {}  Started", inst.name));
    Ok(())
}

/// Creates the container `req` describes for `svc`, printing the warnings; returns its id.
pub async fn create_request(
    ctx: &Ctx,
    svc: &Service,
    req: &crate::containers::request::ContainerRequest,
    warnings: Vec<String>,
    report: Report<'_>,
) -> Result<String, ComposeError> {
    let opts = CreateOptions { ahead: false };
    Ok(create_with(ctx, svc, req, warnings, opts, report).await?.id)
}

/// [`create_request`] with `opts`, returning what `create` made.
async fn create_with(
    ctx: &Ctx,
    svc: &Service,
    req: &crate::containers::request::ContainerRequest,
    warnings: Vec<String>,
    opts: CreateOptions,
    report: Report<'_>,
) -> Result<create::Created, ComposeError> {
    for w in warnings {
        report(format!("warning: {w}"));
    }
    let note = |n: Note| match n {
        Note::Pulling(i) => report(format!("Image {i}  Pulling")),
        Note::PortsDiscarded { network } => report(format!(
            "warning: service {}: published ports are discarded with network_mode {network}",
            svc.name
        )),
        Note::ForeignPlatform(w) => report(format!("warning: {w}")),
        _ => {}
    };
    create::create(ctx, req, opts, &note)
        .await
        .map_err(|e| ComposeError::service(&svc.name, format!("{:#}", anyhow::Error::from(e))))
}

/// Stops and removes a container of the project (with `volumes`, its anonymous volumes).
pub async fn remove_member(
    ctx: &Ctx,
    m: &Member,
    timeout: Option<u64>,
    volumes: bool,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    if m.state(ctx).await?.is_running() {
        ops::stop(ctx, &m.container, timeout).await?;
        report(format!("Container {}  Stopped", m.name));
    }
    let c = ctx.find(m.id()).await?;
    ops::remove(ctx, &c, true, volumes).await?;
    report(format!("Container {}  Removed", m.name));
    Ok(())
}

/// Containers of the project whose service is gone: removed with `remove`, else a warning.
pub async fn orphans(
    ctx: &Ctx,
    project: &Project,
    remove: bool,
    timeout: Option<u64>,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    let state = ProjectState::read(ctx, &project.name).await?;
    let known = |s: &str| project.compose.services.keys().any(|k| k.as_str() == s);
    let orphans: Vec<&Member> = state
        .members
        .iter()
        .filter(|m| !known(&m.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans.iter().map(|m| m.name.as_str()).collect();
        report(format!(
            "warning: found orphan containers ({}) for this project; run with --remove-orphans to clean them up",
            names.join(", ")
        ));
        return Ok(());
    }
    for m in orphans {
        remove_member(ctx, m, timeout, false, report).await?;
    }
    Ok(())
}
