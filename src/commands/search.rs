//! `burrow search [REGISTRY/]TERM`: repositories on Docker Hub, or in a registry's catalog.

use std::process::ExitCode;

use burrow::format::listing::Listing;
use burrow::images::search::{self, Filters};

/// Docker's `search` table.
const TABLE: &str =
    "table {{.Name}}\\t{{.Description}}\\t{{.StarCount}}\\t{{.IsOfficial}}\\t{{.IsAutomated}}";

/// Docker's column names for the search fields.
const HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Description", "DESCRIPTION"),
    ("StarCount", "STARS"),
    ("IsOfficial", "OFFICIAL"),
    ("IsAutomated", "AUTOMATED"),
];

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// What to look for: a term searched on Docker Hub, or REGISTRY/TERM to list the matching
    /// repositories of that registry's catalog (REGISTRY/ lists them all).
    pub term: String,
    /// Only results with at least N stars (stars=N), official ones (is-official=true) or
    /// automated ones (is-automated=true); repeatable.
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output: "table", "table TEMPLATE", "json", or a Go template such as '{{.Name}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// At most this many results (1 to 100).
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Do not shorten descriptions.
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn run(args: Args, _g: &burrow::connection::Globals) -> anyhow::Result<ExitCode> {
    let format = Listing::parse(args.format.as_deref(), TABLE)?;
    let filters = Filters::parse(&args.filter)?;
    let found =
        burrow::connection::runtime().block_on(search::search(&args.term, args.limit, &filters))?;
    let rows: Vec<serde_json::Value> = found
        .into_iter()
        .map(|mut f| {
            if !args.no_trunc && f.description.chars().count() > 45 {
                f.description = format!("{}…", f.description.chars().take(44).collect::<String>());
            }
            // Docker's table and templates show "[OK]" for a true flag.
            let ok = |b: bool| if b { "[OK]" } else { "" };
            serde_json::json!({
                "Name": f.name,
                "Description": f.description,
                "StarCount": f.star_count.to_string(),
                "IsOfficial": ok(f.is_official),
                "IsAutomated": ok(f.is_automated),
            })
        })
        .collect();
    print!("{}", format.render(HEADERS, &rows)?);
    Ok(ExitCode::SUCCESS)
}
