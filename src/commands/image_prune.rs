//! `burrow image prune`: remove dangling images (no tag nor digest names them), or with -a every
//! image no container uses.

use std::process::ExitCode;

use crate::commands::images::with_endpoint_store;
use crate::commands::rmi;
use burrow::connection::Globals;
use burrow::containers::prunefilter::PruneFilters;
use burrow::images::{remove, userdb};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Only images matching: until=TIME (created before; a timestamp or a duration such as
    /// 24h), label=KEY[=VALUE], label!=KEY[=VALUE].
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let filters = PruneFilters::parse(args.filter.iter().map(String::as_str), true, &[])?;
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !super::confirm("image prune", what, args.force)? {
        return Ok(ExitCode::SUCCESS);
    }
    let removed = with_endpoint_store(g, async |ep, store| {
        remove::prune_filtered(store, &userdb::cache_dir(&ep.data_root), args.all, &filters).await
    })?;
    let lines: Vec<String> = removed.iter().flat_map(rmi::lines).collect();
    if !lines.is_empty() {
        println!("Deleted Images:");
        for l in lines {
            println!("{l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
