//! `burrow images` (also `image ls`): the local images as Docker's table, IDs, JSON or a template.

use std::process::ExitCode;

use burrow::connection::{self, Globals};
use burrow::format::listing::Listing;
use burrow::images::{self, list, store::Store};

/// Docker's `images` table, and with `--digests`.
const TABLE: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";
const DIGESTS_TABLE: &str =
    "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";

/// Docker's column names for the image fields.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Only images of this repository (and tag), e.g. busybox or busybox:latest.
    pub reference: Option<String>,
    /// Print image IDs only.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show all images (containerd keeps no intermediate images, so this is every image either way).
    #[arg(short, long)]
    pub all: bool,
    /// Show the digest each name points at.
    #[arg(long)]
    pub digests: bool,
    /// Do not shorten IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output: "table", "table TEMPLATE", "json", or a Go template such as
    /// '{{.Repository}}:{{.Tag}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: reference=PATTERN (globs), dangling=true|false, label=KEY[=VALUE],
    /// before=IMAGE and since=IMAGE (created before or after that image), until=TIME (created
    /// before a timestamp, or a duration such as 24h ago); repeatable.
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}

/// Runs `f` with a store on the resolved containerd.
pub fn with_store<T>(
    g: &Globals,
    f: impl AsyncFnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    with_endpoint_store(g, async |_, store| f(store).await)
}

/// [`with_store`] for commands that also need the endpoint it resolved (its data root).
pub fn with_endpoint_store<T>(
    g: &Globals,
    f: impl AsyncFnOnce(&connection::Endpoint, &Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let ep = connection::resolve(g)?;
    connection::runtime().block_on(async {
        let store = images::open_store(&ep).await?;
        f(&ep, &store).await
    })
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let table = if args.digests { DIGESTS_TABLE } else { TABLE };
    let format = Listing::parse(args.format.as_deref(), table)?;
    let mut filters = list::parse_filters(&args.filters)?;
    if let Some(r) = &args.reference {
        filters.push(list::Filter::reference_arg(r));
    }
    let (mut rows, filters) = with_store(g, async |store| {
        let filters = list::resolve(store, filters).await?;
        Ok((list::rows(store, &filters, args.no_trunc).await?, filters))
    })?;
    // Images of the shared store that are not here yet (they start without a pull).
    let have: Vec<String> = rows
        .iter()
        .filter_map(|r| r["Name"].as_str().map(String::from))
        .collect();
    let dirs = burrow::containers::shared::store_dirs();
    rows.extend(burrow::containers::stored_images::rows(
        &dirs,
        &have,
        args.no_trunc,
        |c| list::keeps_all(&filters, c),
    ));
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", format.render(HEADERS, &rows)?);
    Ok(ExitCode::SUCCESS)
}
