//! `burrow history IMAGE`: the image's layers and the steps that made them, newest first.

use std::process::ExitCode;

use crate::commands::images::with_store;
use burrow::connection::Globals;
use burrow::containers::stored_images;
use burrow::format::listing::Listing;
use burrow::images::manifest;

/// Docker's `history` table.
const TABLE: &str = "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}";

/// Docker's column names for the history fields.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

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
    /// Sizes and times for people (2.1MB, 3 weeks ago); --human=false prints bytes and RFC
    /// 3339 times.
    #[arg(short = 'H', long, default_value_t = true)]
    pub human: bool,
    /// Output: "table", "table TEMPLATE", "json", or a Go template such as '{{.CreatedBy}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// The platform's image of a multi-platform one [default: this host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Listing::parse(args.format.as_deref(), TABLE)?;
    let platform = args
        .platform
        .as_deref()
        .map(crate::commands::pull::platform_arg_of)
        .transpose()?;
    let mut rows = with_store(g, async |store| {
        // The local image's, else the shared store's (as `images` lists it).
        Ok(stored_images::history(store, &args.image, platform.as_ref(), args.human).await?)
    })?;
    if !args.no_trunc {
        // Docker shortens IDs and the steps (to 45 characters) in every format.
        for r in &mut rows {
            let id = r["ID"].as_str().unwrap_or_default().to_owned();
            if id.starts_with("sha256:") {
                r["ID"] = manifest::short_id(&id).into();
            }
            let by = r["CreatedBy"].as_str().unwrap_or_default();
            if by.chars().count() > 45 {
                r["CreatedBy"] = format!("{}…", by.chars().take(44).collect::<String>()).into();
            }
        }
    }
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", format.render(HEADERS, &rows)?);
    Ok(ExitCode::SUCCESS)
}
