//! `burrow logs`: the container's json-file log, with `-f`, `--tail`, `-t`, `--since`, `--until`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use super::Ctx;
use crate::connection::Globals;
use crate::containers::logdriver::{self, Record};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for everything).
    #[arg(long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since an RFC 3339 timestamp (e.g. 2026-11-22T10:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before an RFC 3339 timestamp.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

pub(super) fn emit(r: &Record, timestamps: bool) {
    let line = if timestamps {
        format!("{} {}", r.time, r.log)
    } else {
        r.log.clone()
    };
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

fn check_time(flag: &str, t: &Option<String>) -> anyhow::Result<()> {
    if let Some(t) = t {
        let ok = t.len() >= 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-';
        if !ok {
            anyhow::bail!(
                "invalid {flag} {t:?}: use an RFC 3339 time such as 2026-11-22T10:00:00Z"
            );
        }
    }
    Ok(())
}

/// Keeps records in [since, until); RFC 3339 UTC strings compare in time order up to
/// the precision given.
fn in_window(r: &Record, since: &Option<String>, until: &Option<String>) -> bool {
    since
        .as_ref()
        .is_none_or(|s| r.time.as_str() >= s.trim_end_matches('Z'))
        && until
            .as_ref()
            .is_none_or(|u| r.time.as_str() < u.trim_end_matches('Z'))
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    check_time("--since", &args.since)?;
    check_time("--until", &args.until)?;
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(n.parse().map_err(|_| {
            anyhow::anyhow!("invalid --tail {n:?}: give a number of lines or \"all\"")
        })?),
    };
    super::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        let c = ctx.find(&args.container).await?;
        let path = ctx.store.log_path(&c.id);
        let records: Vec<Record> = logdriver::read_all(&path)?
            .into_iter()
            .filter(|r| in_window(r, &args.since, &args.until))
            .collect();
        let skip = tail.map(|n| records.len().saturating_sub(n)).unwrap_or(0);
        for r in &records[skip..] {
            emit(r, args.timestamps);
        }
        if args.follow {
            let mut seen = logdriver::read_all(&path)?.len().max(records.len());
            loop {
                let running = super::state(&ctx, &c.id).await?.is_running();
                let now = logdriver::read_all(&path)?;
                for r in now.iter().skip(seen) {
                    if in_window(r, &args.since, &args.until) {
                        emit(r, args.timestamps);
                    }
                }
                seen = now.len();
                if !running {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
