//! `compose up` and `create`: the project's networks and volumes ([`super::resources`]), then
//! each service's containers in dependency order (each level of it at once), each
//! dependency's condition awaited first ([`super::deps`]); images of `build:` services built first ([`super::build`]). Idempotent: a container whose config hash still matches
//! is left alone (started if stopped); one whose hash changed is recreated.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::watch;

use super::convert::{self, Instance};
use super::hooks::{self, When};
use super::naming;
use super::service::Service;
use super::state::{Member, ProjectState};
use crate::compose::project::Project;
use crate::compose::ComposeError;
use crate::containers::create::{self, CreateOptions, Note};
use crate::containers::labels;
use crate::containers::{ops, start, Ctx};

/// What `up` (or `create`) is asked.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    /// `-V`: recreated containers get new anonymous volumes instead of the old ones'.
    pub renew_anon_volumes: bool,
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
    // Every service proceeds at once, as Docker Compose's do: its containers are created
    // (or recreated) straight away, and started once its dependencies have started and met
    // their conditions. A service whose container joins another's (network_mode, pid or ipc
    // `service:`, volumes_from) is also created only then.
    let run = UpRun {
        ctx,
        project,
        order: &order,
        opts,
        board: Board::new(&services),
        report,
    };
    let done = futures_util::future::join_all(services.iter().map(|svc| run.bring_up(svc))).await;
    done.into_iter().collect::<Result<Vec<()>, _>>()?;
    orphans(ctx, project, opts.remove_orphans, opts.timeout, report).await?;
    Ok(order)
}

/// What `compose run` needs before its one-off container of `svc`: the project's networks
/// (the service's) and volumes, and unless `no_deps` its dependencies up (left as they are when
/// running) with their conditions met, as Docker Compose's `run` does.
pub async fn prepare_oneoff(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    no_deps: bool,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    super::resources::ensure_networks(ctx, project, std::slice::from_ref(svc), report).await?;
    super::resources::ensure_volumes(ctx, project, report).await?;
    let deps = svc.dependencies();
    if no_deps || deps.is_empty() {
        return Ok(());
    }
    let opts = UpOptions {
        services: deps.iter().map(|d| d.service.clone()).collect(),
        no_recreate: true,
        ..UpOptions::default()
    };
    up(ctx, project, &opts, report).await?;
    for dep in &deps {
        super::deps::await_dependency(ctx, project, svc, dep, report).await?;
    }
    Ok(())
}

/// Where the services of one `up` say they are done: whether each made (or restarted) a
/// container, or failed; dependents wait here for their dependencies.
struct Board {
    done: HashMap<String, watch::Sender<Option<Result<bool, ()>>>>,
}

impl Board {
    fn new(services: &[Service]) -> Board {
        let done = services
            .iter()
            .map(|s| (s.name.clone(), watch::channel(None).0))
            .collect();
        Board { done }
    }

    /// Waits until `service` is done: whether it made a container; None when it is not part
    /// of this `up` (`--no-deps`).
    async fn wait(&self, svc: &Service, service: &str) -> Result<Option<bool>, ComposeError> {
        let Some(tx) = self.done.get(service) else {
            return Ok(None);
        };
        let mut rx = tx.subscribe();
        let outcome = rx.wait_for(Option::is_some).await.map(|v| *v);
        match outcome {
            Ok(Some(Ok(made))) => Ok(Some(made)),
            _ => Err(ComposeError::Dependency {
                service: svc.name.clone(),
                dependency: service.to_string(),
                why: "failed to start".into(),
            }),
        }
    }

    fn finish(&self, service: &str, outcome: Result<bool, ()>) {
        if let Some(tx) = self.done.get(service) {
            tx.send_replace(Some(outcome));
        }
    }
}

/// What every service of one `up` shares.
struct UpRun<'a> {
    ctx: &'a Ctx,
    project: &'a Project,
    /// The services `up` acts on, in dependency order.
    order: &'a [String],
    opts: &'a UpOptions,
    board: Board,
    report: Report<'a>,
}

impl UpRun<'_> {
    /// One service of `up`: its containers converged, started after its dependencies (their
    /// conditions awaited), or restarted when a dependency with `restart: true` was recreated;
    /// its outcome posted on the board for its dependents.
    async fn bring_up(&self, svc: &Service) -> Result<(), ComposeError> {
        let outcome = self.converge_and_start(svc).await;
        let posted = outcome.as_ref().copied().map_err(|_| ());
        self.board.finish(&svc.name, posted);
        outcome.map(|_| ())
    }

    async fn converge_and_start(&self, svc: &Service) -> Result<bool, ComposeError> {
        let UpRun {
            ctx,
            project,
            order,
            opts,
            board,
            report,
        } = self;
        let (ctx, project, opts, report) = (*ctx, *project, *opts, *report);
        let deps = svc.dependencies();
        // Networks attached while creating, for the start that follows (once the dependencies
        // are done); a start that never comes gives the attach up.
        let ahead = !opts.no_start;
        let mut converged = match joins_another(svc) {
            true => None,
            false => Some(converge(ctx, project, svc, opts, ahead, report).await?),
        };
        let mut restart = false;
        let waited = async {
            for dep in &deps {
                let made = board.wait(svc, &dep.service).await?;
                restart |= dep.restart && made == Some(true);
                if !opts.no_start && (order.contains(&dep.service) || !opts.no_deps) {
                    super::deps::await_dependency(ctx, project, svc, dep, report).await?;
                }
            }
            Ok::<(), ComposeError>(())
        }
        .await;
        if let Err(e) = waited {
            if let Some(c) = converged {
                for pending in c.to_start {
                    pending.give_up(ctx).await;
                }
            }
            return Err(e);
        }
        let converged = match converged.take() {
            Some(c) => c,
            None => converge(ctx, project, svc, opts, ahead, report).await?,
        };
        let made = converged.made;
        if !opts.no_start {
            let mut to_start = converged.to_start.into_iter();
            while let Some(pending) = to_start.next() {
                if let Err(e) = pending.start(ctx, svc, report).await {
                    for rest in to_start {
                        rest.give_up(ctx).await;
                    }
                    return Err(e);
                }
            }
            if restart && !made {
                restart_service(ctx, project, svc, opts.timeout, report).await?;
                return Ok(true);
            }
        }
        Ok(made)
    }
}

/// Whether `svc` shares a namespace or volumes with another service's container, which must
/// then exist (and run) before `svc`'s is created.
fn joins_another(svc: &Service) -> bool {
    let service_mode = |k: &str| svc.str(k).is_some_and(|v| v.starts_with("service:"));
    service_mode("network_mode")
        || service_mode("pid")
        || service_mode("ipc")
        || svc.get("volumes_from").is_some()
}

/// The services `names` names, each checked to become a valid container request (what can be
/// refused is refused before anything is made).
/// Which services' output an attached `up` shows, as Docker Compose picks them: `attach`'s
/// when given (`--attach`), else those named on the command line (every service when none),
/// with `dependencies` the services started for them too (`--attach-dependencies`); never
/// `no_attach`'s (`--no-attach`), nor a service with `attach: false` that `attach` does not name.
pub fn attached_services(
    project: &Project,
    named: &[String],
    started: &[String],
    attach: &[String],
    no_attach: &[String],
    dependencies: bool,
) -> Result<Vec<String>, ComposeError> {
    project.services_for(attach)?;
    project.services_for(no_attach)?;
    let mut out: Vec<String> = if !attach.is_empty() {
        attach.to_vec()
    } else if dependencies || named.is_empty() {
        started.to_vec()
    } else {
        named.to_vec()
    };
    out.retain(|s| !no_attach.contains(s));
    out.retain(|s| {
        attach.contains(s)
            || Service::of(project, s)
                .ok()
                .and_then(|svc| svc.get("attach").and_then(serde_json::Value::as_bool))
                != Some(false)
    });
    Ok(out)
}

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
        hooks::of(s, When::PostStart)?;
        hooks::of(s, When::PreStop)?;
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
            hooks::stop(ctx, project, m, timeout).await?;
            let c = ctx.find(m.id()).await?;
            start::start_background(ctx, &c).await?;
            hooks::run(ctx, svc, &c, When::PostStart).await?;
            report(format!("Container {}  Restarted", m.name));
        }
    }
    Ok(())
}

/// A service's containers after [`converge`]: whether any was created or recreated, and
/// those to start.
struct Converged {
    made: bool,
    to_start: Vec<Pending>,
}

/// A container of the service that `up` starts (unless it runs already).
enum Pending {
    /// Made by this `up` (with its networks attached ahead when `create` did).
    Created {
        created: Box<create::Created>,
        name: String,
    },
    /// There already, as it should be.
    Existing(Box<Member>),
}

impl Pending {
    /// Not started after all (an earlier start failed): the container stays created, with a
    /// spec its next start attaches afresh.
    async fn give_up(self, ctx: &Ctx) {
        if let Pending::Created { created, .. } = self {
            if let Some(net) = created.net {
                net.restore(ctx, &created.id).await;
            }
        }
    }

    async fn start(self, ctx: &Ctx, svc: &Service, report: Report<'_>) -> Result<(), ComposeError> {
        match self {
            Pending::Created { created, name } => {
                let c = ctx.find(&created.id).await?;
                if let Err(e) = start::start_created(ctx, &c, *created).await {
                    return Err(ComposeError::service(
                        &svc.name,
                        format!("starting {name}: {e:#}"),
                    ));
                }
                hooks::run(ctx, svc, &c, When::PostStart).await?;
                report(format!("Container {name}  Started"));
            }
            Pending::Existing(m) => {
                if m.state(ctx).await?.is_running() {
                    report(format!("Container {}  Running", m.name));
                } else {
                    start::start_background(ctx, &m.container).await?;
                    hooks::run(ctx, svc, &m.container, When::PostStart).await?;
                    report(format!("Container {}  Started", m.name));
                }
            }
        }
        Ok(())
    }
}

/// Makes the service's containers match its config and replica count (created, not started;
/// with `ahead`, their networks attached for a start that follows at once).
async fn converge(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    opts: &UpOptions,
    ahead: bool,
    report: Report<'_>,
) -> Result<Converged, ComposeError> {
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
    // The image its name now gives: a container made from another (the tag was pulled or
    // built anew since) is recreated, as Docker Compose's `pull` then `up` does.
    let image_now = match &svc.image_id {
        Some(id) => Some(id.clone()),
        None => super::build::image_id(ctx, &svc.image()?).await?,
    };
    let state = ProjectState::read(ctx, &project.name).await?;
    let existing: Vec<&Member> = state.of_service(&svc.name).collect();
    for m in existing.iter().filter(|m| m.number > want) {
        remove_member(ctx, project, m, opts.timeout, false, report).await?;
    }
    let mut out = Converged {
        made: false,
        to_start: Vec::new(),
    };
    for number in 1..=want {
        let found = existing.iter().find(|m| m.number == number);
        let stale = |m: &Member| {
            let image_changed = match (&image_now, m.label(labels::IMAGE_ID)) {
                (Some(now), Some(was)) => now != was,
                _ => false,
            };
            opts.force_recreate
                || m.label(naming::CONFIG_HASH) != Some(hash.as_str())
                || image_changed
        };
        let mut reuse = Vec::new();
        let verb = match found {
            Some(m) if !opts.no_recreate && stale(m) => {
                // Its anonymous volumes go to the new container, as Docker Compose's (-V: not).
                if !opts.renew_anon_volumes {
                    reuse = crate::containers::mounts::anonymous_of(ctx, &m.container);
                }
                remove_member(ctx, project, m, opts.timeout, false, report).await?;
                "Recreated"
            }
            Some(m) => {
                out.to_start.push(Pending::Existing(Box::new((*m).clone())));
                continue;
            }
            None => "Created",
        };
        let (created, name) = make(ctx, project, svc, number, ahead, reuse, report).await?;
        report(format!("Container {name}  {verb}"));
        out.made = true;
        out.to_start.push(Pending::Created {
            created: Box::new(created),
            name,
        });
    }
    Ok(out)
}

/// Creates container `number` of `svc` (not started); returns it and its name.
async fn make(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    number: u32,
    ahead: bool,
    reuse_anonymous: Vec<(String, String)>,
    report: Report<'_>,
) -> Result<(create::Created, String), ComposeError> {
    let name = svc
        .container_name()
        .unwrap_or_else(|| naming::container_name(&project.name, &svc.name, number));
    let inst = Instance {
        number,
        oneoff: false,
        name,
    };
    let (req, warnings) = convert::request(project, svc, &inst)?;
    let created = create_with(
        ctx,
        project,
        svc,
        &req,
        warnings,
        CreateOptions {
            ahead,
            reuse_anonymous,
            ..CreateOptions::default()
        },
        report,
    )
    .await?;
    Ok((created, inst.name))
}

/// Creates the container `req` describes for `svc`, printing the warnings; returns its id.
pub async fn create_request(
    ctx: &Ctx,
    project: &Project,
    svc: &Service,
    req: &crate::containers::request::ContainerRequest,
    warnings: Vec<String>,
    report: Report<'_>,
) -> Result<String, ComposeError> {
    let opts = CreateOptions::default();
    Ok(create_with(ctx, project, svc, req, warnings, opts, report)
        .await?
        .id)
}

/// [`create_request`] with `opts`, returning what `create` made: the container, with the
/// secrets and configs of `environment:` or `content:` written into it (removed again when
/// they cannot be).
async fn create_with(
    ctx: &Ctx,
    project: &Project,
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
        Note::ForeignPlatform(w) | Note::LimitDiscarded(w) => report(format!("warning: {w}")),
        _ => {}
    };
    let files = super::mounts::injected(project, svc)?;
    let created = create::create(ctx, req, opts, &note)
        .await
        .map_err(|e| ComposeError::service(&svc.name, format!("{:#}", anyhow::Error::from(e))))?;
    if files.is_empty() {
        return Ok(created);
    }
    if let Err(e) = inject(ctx, &created.id, &files).await {
        if let Ok(c) = ctx.client.get(&created.id).await {
            if let Err(err) = crate::containers::ops::remove(ctx, &c, true, true).await {
                tracing::warn!(%err, id = %created.id, "removing the container whose secrets could not be written");
            }
        }
        return Err(ComposeError::service(
            &svc.name,
            format!("writing its secrets and configs into the container: {e:#}"),
        ));
    }
    Ok(created)
}

/// Writes `files` into the (created, not started) container `id`.
async fn inject(ctx: &Ctx, id: &str, files: &[super::mounts::Injected]) -> anyhow::Result<()> {
    let tar = super::mounts::injected_tar(files)?;
    let fs = crate::containers::copy::transfer::ContainerFs::open(ctx, id).await?;
    tokio::task::spawn_blocking(move || fs.put_tar(&tar, "/", true, false)).await??;
    Ok(())
}

/// Stops (after its pre_stop hooks) and removes a container of the project (with `volumes`, its
/// anonymous volumes).
pub async fn remove_member(
    ctx: &Ctx,
    project: &Project,
    m: &Member,
    timeout: Option<u64>,
    volumes: bool,
    report: Report<'_>,
) -> Result<(), ComposeError> {
    if m.state(ctx).await?.is_running() {
        hooks::stop(ctx, project, m, timeout).await?;
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
        remove_member(ctx, project, m, timeout, false, report).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_services_as_docker_compose_picks_them() {
        let p = crate::compose::project::for_tests(
            "services:\n  web: {image: x, depends_on: [db]}\n  db: {image: x}\n  side: {image: x, attach: false}\n",
        );
        let all = ["db".to_string(), "side".into(), "web".into()];
        let pick = |named: &[&str], attach: &[&str], no: &[&str], deps: bool| {
            let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            attached_services(&p, &v(named), &all, &v(attach), &v(no), deps).unwrap()
        };
        assert_eq!(pick(&[], &[], &[], false), ["db", "web"]);
        assert_eq!(pick(&["web"], &[], &[], false), ["web"]);
        assert_eq!(pick(&["web"], &[], &[], true), ["db", "web"]);
        assert_eq!(pick(&[], &["side"], &[], false), ["side"]);
        assert_eq!(pick(&[], &[], &["db"], false), ["web"]);
        let e = attached_services(&p, &[], &all, &["nope".into()], &[], false);
        assert!(e.is_err());
    }
}
