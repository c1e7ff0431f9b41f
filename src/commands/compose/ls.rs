//! `burrow compose ls`: the projects there are, from the containers' labels.

use std::process::ExitCode;

use burrow::compose::engine::state;
use burrow::connection::Globals;
use burrow::containers::Ctx;
use burrow::format::listing::Listing;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Show stopped projects too.
    #[arg(short, long)]
    pub all: bool,
    /// Only display project names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format: table, json, or a Go template over Name, Status, ConfigFiles.
    #[arg(long)]
    pub format: Option<String>,
}

const TABLE: &str = "table {{.Name}}\\t{{.Status}}\\t{{.ConfigFiles}}";
const HEADERS: &[(&str, &str)] = &[
    ("Name", "NAME"),
    ("Status", "STATUS"),
    ("ConfigFiles", "CONFIG FILES"),
];

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let json = args.format.as_deref() == Some("json");
    let format = Listing::parse(args.format.as_deref(), TABLE)?;
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let projects: Vec<_> = state::projects(&ctx)
            .await?
            .into_iter()
            .filter(|p| args.all || p.running)
            .collect();
        let rows: Vec<serde_json::Value> = projects
            .iter()
            .map(|p| serde_json::json!({"Name": p.name, "Status": p.status, "ConfigFiles": p.config_files}))
            .collect();
        if args.quiet {
            projects.iter().for_each(|p| println!("{}", p.name));
        } else if json {
            // Docker Compose prints one JSON array.
            println!("{}", serde_json::Value::Array(rows));
        } else {
            print!("{}", format.render(HEADERS, &rows)?);
        }
        Ok(ExitCode::SUCCESS)
    })
}
