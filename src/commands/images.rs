//! `burrow images` (also `image ls`): the local images as Docker's table, IDs, JSON or a template.

use std::process::ExitCode;

use burrow::connection::{self, Globals};
use burrow::images::{self, format::Format, list, store::Store};

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
    /// Output: "table", "json", or a template such as '{{.Repository}}:{{.Tag}}'.
    #[arg(long)]
    pub format: Option<String>,
    /// Filter: reference=PATTERN (globs), dangling=true|false.
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
    let format = Format::parse(args.format.as_deref())?;
    let mut filters = list::parse_filters(&args.filters)?;
    if let Some(r) = &args.reference {
        filters.push(list::Filter::reference_arg(r));
    }
    let rows = with_store(g, async |store| {
        Ok(list::rows(store, &filters, args.no_trunc).await?)
    })?;
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format != Format::Table {
        images::format::print_rows(&format, &rows);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["REPOSITORY", "TAG"];
    if args.digests {
        head.push("DIGEST");
    }
    head.extend(["IMAGE ID", "CREATED", "SIZE"]);
    table.push(head.iter().map(|s| s.to_string()).collect());
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        let mut line = vec![s("Repository"), s("Tag")];
        if args.digests {
            line.push(s("Digest"));
        }
        line.extend([s("ID"), s("CreatedSince"), s("Size")]);
        table.push(line);
    }
    print_table(&table);
    Ok(ExitCode::SUCCESS)
}

/// Prints rows padded into columns three spaces apart (Docker's tabwriter look).
pub fn print_table(rows: &[Vec<String>]) {
    for line in table_lines(rows) {
        println!("{line}");
    }
}

/// Rows padded into columns three spaces apart, one string per line.
pub fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = Vec::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        out.push(line.trim_end().to_string());
    }
    out
}
