//! `compose events`, `stats`, `volumes` and `watch`: the project's containers' events and
//! resource use, and its volumes, through the same library calls as `burrow events`, `stats` and
//! `volume ls`; the services' `develop.watch` rules acted on as files change.

use std::io::Write;
use std::process::ExitCode;

use burrow::compose::engine::naming;
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::events::{self, EventFilter, EventQuery};
use burrow::containers::volumes;
use burrow::format::listing::Listing;

use crate::commands::container::{block_on, stats as cstats, Ctx};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct EventsArgs {
    /// One JSON object per event (time, type, action, id, service, attributes).
    #[arg(long)]
    pub json: bool,
    /// Services (default: all).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub opts: cstats::Options,
    /// A service (default: all).
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct VolumesArgs {
    /// Print only the volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output: "table", "table TEMPLATE", "json", or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Only the volumes these services mount (default: all of the project's).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct WatchArgs {
    /// Do not build and start the services first (they must run already).
    #[arg(long)]
    pub no_up: bool,
    /// Services (default: all with develop.watch rules).
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// `compose watch`: `up -d` (unless --no-up), then the services' watch rules until Ctrl-C.
pub fn watch(args: WatchArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    use burrow::compose::engine::{up as engine, watch};
    let rules = watch::rules(project, &args.services)?;
    let services: Vec<String> = {
        let mut s: Vec<String> = rules.iter().map(|r| r.service.clone()).collect();
        s.dedup();
        s
    };
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        if !args.no_up {
            let opts = engine::UpOptions {
                services: services.clone(),
                ..Default::default()
            };
            engine::check(project, &project.services_for(&opts.services)?)?;
            engine::up(&ctx, project, &opts, &super::report).await?;
        }
        super::report(format!(
            "Watch enabled for {} (Ctrl-C to stop)",
            services.join(", ")
        ));
        tokio::select! {
            r = watch::run(&ctx, project, &rules, std::time::Duration::from_millis(500), &super::report, None) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `compose events`: the project's container events from now on, as Docker Compose prints
/// them (`TIME container ACTION ID (key=value, ...)`), or as JSON lines.
pub fn events(args: EventsArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    project.services_for(&args.services)?;
    let q = EventQuery {
        filter: EventFilter::parse(&[
            "type=container".to_string(),
            format!("label={}={}", naming::PROJECT, project.name),
        ])?,
        since: None,
        until: None,
    };
    block_on(async move {
        let ctx = Ctx::connect(g).await?;
        events::stream(&ctx.client, &ctx.ep.namespace, &q, |e| {
            let service = e
                .attributes
                .get(naming::SERVICE)
                .cloned()
                .unwrap_or_default();
            if !args.services.is_empty() && !args.services.contains(&service) {
                return;
            }
            let line = if args.json {
                let time = burrow::images::time::rfc3339_nano(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_nanos(e.time_nano.max(0) as u64),
                );
                serde_json::json!({
                    "time": time,
                    "type": "container",
                    "action": e.action,
                    "id": e.id,
                    "service": service,
                    "attributes": e.attributes,
                })
                .to_string()
            } else {
                compose_line(e)
            };
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        })
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Docker Compose's event line: the time (UTC, as burrow prints times) with microseconds, the
/// action, the id, the attributes.
fn compose_line(e: &events::Event) -> String {
    let secs = e.time_nano.div_euclid(1_000_000_000);
    let micros = e.time_nano.rem_euclid(1_000_000_000) / 1000;
    let time = format!("{}.{micros:06}", burrow::images::time::date_time(secs));
    let attrs: Vec<String> = e
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{time} container {} {} ({})",
        e.action,
        e.id,
        attrs.join(", ")
    )
}

/// `compose stats`: `burrow stats` of the project's containers (of one service).
pub fn stats(args: StatsArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let services: Vec<String> = args.service.iter().cloned().collect();
    let names = burrow::connection::runtime().block_on(async {
        let ctx = Ctx::connect(g).await?;
        let members = super::members(&ctx, project, &services, false).await?;
        let mut names = Vec::new();
        for m in members {
            if args.opts.all || m.state(&ctx).await?.is_running() {
                names.push(m.name);
            }
        }
        Ok::<_, anyhow::Error>(names)
    })?;
    if names.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    cstats::run(
        cstats::Args {
            opts: args.opts,
            containers: names,
        },
        g,
    )
}

/// `compose volumes`: the project's volumes (those its Compose file made), or those the named
/// services' containers mount, as `volume ls` lists them.
pub fn volumes(args: VolumesArgs, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Listing::parse(args.format.as_deref(), crate::commands::volume::TABLE)?;
    let vols = burrow::connection::runtime().block_on(async {
        let ctx = Ctx::connect(g).await?;
        let label = format!("label={}={}", naming::PROJECT, project.name);
        let filter: volumes::ListFilter = label.parse()?;
        let mut vols = volumes::list_matching(&ctx, &[filter]).await?;
        if !args.services.is_empty() {
            let members = super::members(&ctx, project, &args.services, false).await?;
            let used: Vec<String> = members.iter().flat_map(|m| m.volumes(&ctx)).collect();
            vols.retain(|v| used.contains(&v.name));
        }
        Ok::<_, anyhow::Error>(vols)
    })?;
    crate::commands::volume::print_list(vols, args.quiet, &format)?;
    Ok(ExitCode::SUCCESS)
}
