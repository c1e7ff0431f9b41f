//! `burrow images` (also `image ls`): the local images as Docker's table, IDs, JSON or a template.

use std::process::ExitCode;

use anyhow::bail;

use burrow::connection::{self, Globals};
use burrow::images::{self, catalog, format::Format, manifest::Platform, store::Store};

#[derive(Debug, clap::Args)]
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

/// `*` and `?` glob matching.
pub fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

enum Filter {
    Reference(String),
    Dangling(bool),
}

fn parse_filters(raw: &[String]) -> anyhow::Result<Vec<Filter>> {
    raw.iter()
        .map(|f| match f.split_once('=') {
            Some(("reference", v)) => Ok(Filter::Reference(v.to_owned())),
            Some(("dangling", "true")) => Ok(Filter::Dangling(true)),
            Some(("dangling", "false")) => Ok(Filter::Dangling(false)),
            _ => bail!("unsupported filter {f:?}: use reference=PATTERN or dangling=true|false"),
        })
        .collect()
}

fn keep(filters: &[Filter], row: &serde_json::Value) -> bool {
    let repo = row["Repository"].as_str().unwrap_or_default();
    let tag = row["Tag"].as_str().unwrap_or_default();
    filters.iter().all(|f| match f {
        Filter::Reference(p) => glob(p, repo) || glob(p, &format!("{repo}:{tag}")),
        Filter::Dangling(d) => catalog::is_dangling(row["Name"].as_str().unwrap_or_default()) == *d,
    })
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Format::parse(args.format.as_deref())?;
    let mut filters = parse_filters(&args.filters)?;
    if let Some(r) = &args.reference {
        filters.push(Filter::Reference(if r.contains(':') {
            r.clone()
        } else {
            format!("{r}:*")
        }));
    }
    let mut images = with_store(g, async |store| {
        Ok(catalog::all(store, &Platform::host()).await?)
    })?;
    images.sort_by_key(|l| std::cmp::Reverse(catalog::created(l).unwrap_or(0)));
    let rows: Vec<serde_json::Value> = images
        .iter()
        .map(|l| catalog::summary(l, args.no_trunc))
        .filter(|r| keep(&filters, r))
        .collect();
    if args.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format != Format::Table {
        catalog_print(&format, &rows);
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

fn catalog_print(format: &Format, rows: &[serde_json::Value]) {
    burrow::images::format::print_rows(format, rows);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busybox:1*", "busybox:latest"));
        assert!(glob(
            "*/multi?ayer",
            "127.0.0.1:5000/burrow-test/multilayer"
        ));
    }
}
