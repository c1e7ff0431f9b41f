//! `burrow logs`: the container's json-file log, with `-f`, `--tail`, `-t`, `--details`, `--since`, `--until`
//! (which records, and following them, is `burrow::containers::logquery`'s).

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::logdriver::Record;
use burrow::containers::logopts::details_prefix;
use burrow::containers::logquery::{self, LogQuery};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show the extra attributes the log driver was given (--log-opt labels=, env=, ...).
    #[arg(long)]
    pub details: bool,
    /// Show logs since a time: RFC 3339 (2026-11-22T10:00:00Z), a date, a Unix timestamp, or a
    /// duration before now (10m, 1h30m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time (same forms as --since); with -f, following stops then.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

pub(super) fn emit(r: &Record, timestamps: bool, details: bool) {
    let mut line = String::new();
    if timestamps {
        line.push_str(&r.time);
        line.push(' ');
    }
    if details {
        line.push_str(&details_prefix(&r.attrs));
    }
    line.push_str(&r.log);
    if r.stream == "stderr" {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(line.as_bytes());
        let _ = e.flush();
    } else {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(line.as_bytes());
        let _ = o.flush();
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let q = LogQuery::parse(
        args.since.as_deref(),
        args.until.as_deref(),
        &args.tail,
        args.follow,
        SystemTime::now(),
    )?;
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        logquery::read(&ctx, &args.container, &q, |r| {
            emit(r, args.timestamps, args.details)
        })
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}
