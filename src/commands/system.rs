//! `burrow system info` (as `info`), `system df` (in df.rs), `system service` (service.rs) and `burrow system prune`: stopped containers, unused
//! networks, dangling images (every unused one with -a) and, with --volumes, anonymous volumes
//! no container uses, after one confirmation.

use std::process::ExitCode;

use super::container::{block_on, Ctx};
use crate::commands::images::with_endpoint_store;
use crate::commands::rmi;
use burrow::connection::Globals;
use burrow::containers::prunefilter::PruneFilters;
use burrow::containers::volumes::{self, InUse};
use burrow::containers::{networks, ops};
use burrow::images::{remove, userdb};

#[derive(Debug, clap::Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Show how burrow reaches containerd and how that containerd is set up (as `info`).
    Info(super::info::Args),
    /// Remove stopped containers, unused networks and dangling images (and more with -a and
    /// --volumes).
    Prune(PruneArgs),
    /// Stream container and image events (as `events`).
    Events(super::events::Args),
    /// Show the disk space images, containers and local volumes use.
    Df(super::df::Args),
    /// Serve the Docker Engine API on a unix socket (DOCKER_HOST=unix://...), for the docker
    /// CLI and the Docker SDKs.
    Service(super::service::Args),
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Also remove anonymous volumes no container uses.
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only what matches: until=TIME (containers and images created before; a timestamp or a
    /// duration such as 24h), label=KEY[=VALUE], label!=KEY[=VALUE]. Networks and the build
    /// cache are left alone with a filter (they record no creation time or labels to match).
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Info(args) => super::info::run(args, g),
        Command::Prune(args) => prune(args, g),
        Command::Events(args) => super::events::run(args, g),
        Command::Df(args) => super::df::run(args, g),
        Command::Service(args) => super::service::run(args, g),
    }
}

/// What `system prune` is about to remove, in Docker's words.
fn warning(args: &PruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push("unused build cache");
    let last = items.pop().unwrap_or_default();
    format!("{} and {last}", items.join(", "))
}

fn prune(args: PruneArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let filters = PruneFilters::parse(args.filter.iter().map(String::as_str), true, &[])?;
    if !super::confirm("system prune", &warning(&args), args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    block_on(async {
        let ctx = Ctx::connect(g).await?;
        section(
            "Deleted Containers:",
            ops::prune_filtered(&ctx, &filters).await?,
        );
        let gone = networks::prune(&ctx, &filters).await?;
        section(
            "Deleted Networks:",
            gone.into_iter().map(|n| n.name).collect(),
        );
        if !args.filter.is_empty() {
            eprintln!("burrow: with --filter, the build cache is left alone: its records carry no labels to match (run `burrow builder prune`)");
        }
        if args.volumes {
            let used = InUse::of(&ctx).await?;
            section(
                "Deleted Volumes:",
                volumes::prune(&ctx, &used, false, filters.labels()).await?,
            );
        }
        // The builder's cache (records and RUN --mount=type=cache volumes), as Docker's
        // system prune runs the build cache's prune too (not with a filter: its entries have
        // no labels, and it is pruned whole).
        if args.filter.is_empty() {
            section(
                "Deleted build cache objects:",
                burrow::build::cache::prune(&ctx).await?,
            );
        }
        Ok(ExitCode::SUCCESS)
    })?;
    let removed = with_endpoint_store(g, async |ep, store| {
        remove::prune_filtered(store, &userdb::cache_dir(&ep.data_root), args.all, &filters).await
    })?;
    section(
        "Deleted Images:",
        removed.iter().flat_map(rmi::lines).collect(),
    );
    Ok(ExitCode::SUCCESS)
}

/// A titled list of what went, when anything did.
fn section(title: &str, names: Vec<String>) {
    if names.is_empty() {
        return;
    }
    println!("{title}");
    for n in names {
        println!("{n}");
    }
    println!();
}
