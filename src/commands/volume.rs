//! `burrow volume create/ls/inspect/rm/prune`: flags and output over the library's volume store
//! (`burrow::containers::volumes`).

use std::process::ExitCode;

use super::container::{self as ctr, Ctx};
use burrow::connection::Globals;
use burrow::containers::prunefilter::PruneFilters;
use burrow::containers::volumes::{self, InUse, Volume, Volumes};
use burrow::format::listing::{Inspect, Listing};

#[derive(Debug, clap::Subcommand)]
// Each subcommand\'s arguments are built only when it runs: building all of them cost
// more than some whole commands (`ps`) take.
#[command(defer = true)]
pub enum Command {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes as JSON, or through a Go template.
    Inspect(InspectArgs),
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove volumes no container uses.
    Prune(PruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Set metadata on the volume (KEY=VALUE).
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Volume driver: local, the only one (directories under the data root).
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// A local driver option (KEY=VALUE, repeatable): type=none, o=bind and device=/dir make
    /// the volume a host directory.
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct LsArgs {
    /// Only print names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output: table (default), "table TEMPLATE", "json", or a Go template over Name, Driver,
    /// Scope, Mountpoint, Labels.
    #[arg(long)]
    pub format: Option<String>,
    /// Keep only volumes that match: name=SUBSTRING, label=KEY[=VALUE], label!=KEY[=VALUE],
    /// dangling=true|false (no container mounts it), driver=local.
    #[arg(short, long)]
    pub filter: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Output: indented JSON (default), "json" (one line), or a Go template such as
    /// '{{.Mountpoint}}'.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Docker's `volume ls` table.
pub(crate) const TABLE: &str = "table {{.Driver}}\\t{{.Name}}";

/// Docker's column names for the volume fields.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "VOLUME NAME"),
    ("Group", "GROUP"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Availability", "AVAILABILITY"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Status", "STATUS"),
];

#[derive(Debug, clap::Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct RmArgs {
    /// Pass over volumes that do not exist (one in use is still refused).
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct PruneArgs {
    /// Remove every unused volume, named ones too (without it only anonymous volumes go).
    #[arg(short, long)]
    pub all: bool,
    /// Only volumes matching a filter: label=KEY[=VALUE], label!=KEY[=VALUE], all=true (as -a).
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub(crate) fn print_list(vols: Vec<Volume>, quiet: bool, format: &Listing) -> anyhow::Result<()> {
    if quiet {
        for v in vols {
            println!("{}", v.name);
        }
        return Ok(());
    }
    let rows = vols.iter().map(ls_row).collect::<Result<Vec<_>, _>>()?;
    print!("{}", format.render(HEADERS, &rows)?);
    Ok(())
}

/// A volume as `volume ls` shows it: Docker's fields, the labels as `k=v,k2=v2`.
fn ls_row(v: &Volume) -> serde_json::Result<serde_json::Value> {
    let mut row = serde_json::to_value(v)?;
    let mut labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    row["Labels"] = labels.join(",").into();
    Ok(row)
}

async fn remove(ctx: &Ctx, names: &[String], force: bool) -> anyhow::Result<ExitCode> {
    let used = InUse::of(ctx).await?;
    let mut failed = false;
    for n in names {
        match volumes::remove(ctx, n, &used).await {
            Ok(()) => println!("{n}"),
            Err(volumes::VolumeError::NotFound(_)) if force => {}
            Err(e) => {
                eprintln!("burrow: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn prune(ctx: &Ctx, a: PruneArgs) -> anyhow::Result<ExitCode> {
    let filters = PruneFilters::parse(a.filter.iter().map(String::as_str), false, &["all"])?;
    let all = a.all || filters.flag("all") == Some(true);
    let what = if all {
        "all local volumes not used by at least one container"
    } else {
        "anonymous local volumes not used by at least one container"
    };
    if !super::confirm("volume prune", what, a.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let used = InUse::of(ctx).await?;
    println!("Deleted Volumes:");
    for n in volumes::prune(ctx, &used, all, filters.labels()).await? {
        println!("{n}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(cmd: Command, g: &Globals) -> anyhow::Result<ExitCode> {
    ctr::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let vols = Volumes::of(&ctx);
        match cmd {
            Command::Create(a) => {
                if a.driver != "local" {
                    anyhow::bail!(
                        "volume driver {:?}: burrow has only the local driver (give -d local, or none)",
                        a.driver
                    );
                }
                let made = volumes::create(
                    &ctx,
                    a.name,
                    ctr::parse_labels(&a.label),
                    ctr::parse_labels(&a.opt),
                )
                .await?;
                println!("{made}");
            }
            Command::Ls(a) => {
                let format = Listing::parse(a.format.as_deref(), TABLE)?;
                let filters = a
                    .filter
                    .iter()
                    .map(|f| f.parse::<volumes::ListFilter>())
                    .collect::<Result<Vec<_>, _>>()?;
                let list = volumes::list_matching(&ctx, &filters).await?;
                print_list(list, a.quiet, &format)?;
            }
            Command::Inspect(a) => {
                let format = Inspect::parse(a.format.as_deref())?;
                let found = a
                    .names
                    .iter()
                    .map(|n| vols.get(n))
                    .collect::<Result<Vec<_>, _>>()?;
                let docs = found
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()?;
                match format.render(&docs)? {
                    Some(text) => print!("{text}"),
                    None => println!("{}", serde_json::to_string_pretty(&found)?),
                }
            }
            Command::Rm(a) => return remove(&ctx, &a.names, a.force).await,
            Command::Prune(a) => return prune(&ctx, a).await,
        }
        Ok(ExitCode::SUCCESS)
    })
}
