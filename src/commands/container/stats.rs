//! `burrow stats`: CPU, memory, network, block I/O and pids of containers as Docker's table,
//! JSON or a template, refreshed every second (the numbers are `burrow::containers::stats`').

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::{short_id, Ctx};
use burrow::connection::Globals;
use burrow::containers::stats;
use burrow::format::listing::Listing;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub opts: Options,
    /// Containers (names or ids); default: every running container.
    pub containers: Vec<String>,
}

// The flags of `stats` (and `compose stats`); a plain comment: clap would take a doc comment as
// the command's summary.
#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Options {
    /// Show all containers (stopped ones with zeros); default: running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Print one sample and exit instead of refreshing every second.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output: table (default), `table TEMPLATE`, json, or a Go template over the fields
    /// Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs.
    #[arg(long)]
    pub format: Option<String>,
}

/// One row, with Docker's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    container: String,
    #[serde(rename = "ID")]
    id: String,
    name: String,
    #[serde(rename = "CPUPerc")]
    cpu_perc: String,
    mem_usage: String,
    mem_perc: String,
    #[serde(rename = "NetIO")]
    net_io: String,
    #[serde(rename = "BlockIO")]
    block_io: String,
    #[serde(rename = "PIDs")]
    pids: String,
}

/// Docker's units: 1.5MiB for memory, 2.1MB for I/O.
fn binary(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

/// Docker's decimal units for I/O (the images table's formatter).
fn decimal(b: u64) -> String {
    burrow::images::catalog::human_size(i64::try_from(b).unwrap_or(i64::MAX))
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let format = Listing::parse(args.opts.format.as_deref(), TABLE)?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        stats::check_cgroups(&ctx)?;
        let targets = stats::targets(&ctx, &args.containers, args.opts.all).await?;
        let mut sampler = stats::Sampler::new(targets);
        let mut first = true;
        loop {
            tokio::time::sleep(Duration::from_millis(if first { 500 } else { 1000 })).await;
            first = false;
            let usage = sampler.sample();
            let rows: Vec<Row> = sampler
                .targets()
                .iter()
                .zip(usage)
                .map(|(t, u)| row(t, &u, args.opts.no_trunc))
                .collect();
            let mut out = std::io::stdout().lock();
            if !args.opts.no_stream {
                // Docker clears the screen between refreshes.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            print_rows(&mut out, &rows, &format)?;
            out.flush()?;
            if args.opts.no_stream {
                return Ok(ExitCode::SUCCESS);
            }
        }
    })
}

fn row(t: &stats::Target, u: &stats::Usage, no_trunc: bool) -> Row {
    let s = &u.now;
    let id = if no_trunc {
        t.id.clone()
    } else {
        short_id(&t.id).to_string()
    };
    Row {
        container: id.clone(),
        id,
        name: t.name.clone(),
        cpu_perc: format!("{:.2}%", u.cpu_percent),
        mem_usage: format!("{} / {}", binary(s.mem), binary(s.limit)),
        mem_perc: format!("{:.2}%", u.mem_percent),
        net_io: format!("{} / {}", decimal(s.rx), decimal(s.tx)),
        block_io: format!("{} / {}", decimal(s.read), decimal(s.write)),
        pids: s.pids.to_string(),
    }
}

/// Docker's `stats` table.
const TABLE: &str = "table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}";

/// Docker's column names for `stats`'s fields.
const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn print_rows(out: &mut impl Write, rows: &[Row], format: &Listing) -> anyhow::Result<()> {
    let rows = rows
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    write!(out, "{}", format.render(HEADERS, &rows)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_docker_prints_them() {
        assert_eq!(binary(512), "512B");
        assert_eq!(binary(1536 * 1024), "1.5MiB");
        assert_eq!(decimal(2_100_000), "2.1MB");
        assert_eq!(decimal(999), "999B");
    }
}
