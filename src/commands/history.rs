//! `burrow history IMAGE`: the image's layers and the steps that made them, newest first.

use std::process::ExitCode;

use crate::commands::images::{print_table, with_store};
use burrow::connection::Globals;
use burrow::images::{
    catalog,
    format::Format,
    manifest::{self, Platform},
};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// An image name or ID.
    pub image: String,
    /// Print image IDs only.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not shorten IDs or commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output: "table", "json", or a template such as '{{.CreatedBy}}'.
    #[arg(long)]
    pub format: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Format::parse(args.format.as_deref())?;
    let mut rows = with_store(g, async |store| {
        let found = catalog::find(store, &args.image, &Platform::host()).await?;
        Ok(catalog::history(&found[0]))
    })?;
    if !args.no_trunc {
        for r in &mut rows {
            let id = r["ID"].as_str().unwrap_or_default().to_owned();
            if id.starts_with("sha256:") {
                r["ID"] = manifest::short_id(&id).into();
            }
        }
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format != Format::Table {
        burrow::images::format::print_rows(&format, &rows);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let mut by = s("CreatedBy");
        if !args.no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        table.push(vec![
            s("ID"),
            s("CreatedSince"),
            by,
            s("Size"),
            s("Comment"),
        ]);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}
