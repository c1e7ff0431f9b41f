//! `burrow logs`: the container's json-file log, with `-f`, `--tail`, `-t`, `--since`, `--until`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::Ctx;
use burrow::connection::Globals;
use burrow::containers::logdriver::Record;
use burrow::containers::logfollow::Follower;
use burrow::images::time::{fraction_nanos, parse_rfc3339_nanos, rfc3339_nano};

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
    /// Show logs since a time: RFC 3339 (2026-11-22T10:00:00Z), a date, a Unix timestamp, or a
    /// duration before now (10m, 1h30m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time (same forms as --since); with -f, following stops then.
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

/// A `--since`/`--until` value as Docker takes it: an RFC 3339 time or date
/// (2026-11-22T10:00:00Z, 2026-11-22T11:00:00+01:00, 2026-11-22), a Unix timestamp
/// (1763805600, 1763805600.5) or a duration before `now` (10m, 1h30m, 90s).
fn parse_time(flag: &str, value: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    let bad = || {
        anyhow::anyhow!(
            "invalid {flag} {value:?}: give an RFC 3339 time (2026-11-22T10:00:00Z), a date \
             (2026-11-22), a Unix timestamp (1763805600) or a duration before now (10m, 1h30m)"
        )
    };
    if let Some(d) = parse_duration(value) {
        // Times before 1970 are refused rather than clamped.
        return now
            .checked_sub(d)
            .filter(|t| *t >= UNIX_EPOCH)
            .ok_or_else(bad);
    }
    parse_unix(value)
        .or_else(|| {
            let (secs, nanos) = parse_rfc3339_nanos(value)?;
            UNIX_EPOCH.checked_add(Duration::new(u64::try_from(secs).ok()?, nanos))
        })
        .ok_or_else(bad)
}

/// `1763805600` or `1763805600.123`.
fn parse_unix(v: &str) -> Option<SystemTime> {
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = fraction_nanos(frac)?;
    UNIX_EPOCH.checked_add(Duration::new(secs.parse().ok()?, nanos))
}

/// Go's duration syntax, as Docker's: numbers with units, e.g. `1h30m`, `2.5s`, `300ms`.
fn parse_duration(v: &str) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|n| *n > 0)?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Keeps records in [since, until): the bounds are RFC 3339 UTC with nanoseconds, as the
/// records' times are, so they compare as strings.
fn in_window(r: &Record, since: &Option<String>, until: &Option<String>) -> bool {
    since.as_ref().is_none_or(|s| r.time.as_str() >= s.as_str())
        && until.as_ref().is_none_or(|u| r.time.as_str() < u.as_str())
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let bound = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<String>> {
        v.as_deref()
            .map(|v| parse_time(flag, v, now).map(rfc3339_nano))
            .transpose()
    };
    let since = bound("--since", &args.since)?;
    let until = bound("--until", &args.until)?;
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
        let reading = || {
            format!(
                "reading the log of {} at {} (check that it is yours and readable)",
                args.container,
                path.display()
            )
        };
        let (records, mut follower) = Follower::start(&path).with_context(reading)?;
        let records: Vec<Record> = records
            .into_iter()
            .filter(|r| in_window(r, &since, &until))
            .collect();
        let skip = tail.map(|n| records.len().saturating_sub(n)).unwrap_or(0);
        for r in &records[skip..] {
            emit(r, args.timestamps);
        }
        if args.follow {
            loop {
                let running = super::state(&ctx, &c.id).await?.is_running();
                for r in follower.poll().with_context(reading)? {
                    if in_window(&r, &since, &until) {
                        emit(&r, args.timestamps);
                    }
                }
                // As Docker: following ends when the container stops or --until has passed.
                if !running
                    || until
                        .as_ref()
                        .is_some_and(|u| rfc3339_nano(SystemTime::now()) >= *u)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> String {
        rfc3339_nano(parse_time("--since", s, UNIX_EPOCH + Duration::from_secs(10_000)).unwrap())
    }

    #[test]
    fn times_in_the_forms_docker_takes() {
        assert_eq!(at("2026-11-22T10:00:00Z"), "2026-11-22T10:00:00.000000000Z");
        assert_eq!(
            at("2026-11-22T11:30:00+01:30"),
            "2026-11-22T10:00:00.000000000Z"
        );
        assert_eq!(
            at("2026-11-22T08:00:00.25-02:00"),
            "2026-11-22T10:00:00.250000000Z"
        );
        assert_eq!(at("2024-02-29"), "2024-02-29T00:00:00.000000000Z");
        assert_eq!(at("2026-11-22T10:00:00"), "2026-11-22T10:00:00.000000000Z");
        assert_eq!(at("1763805600"), "2025-11-22T10:00:00.000000000Z");
        assert_eq!(at("1763805600.5"), "2025-11-22T10:00:00.500000000Z");
        // Durations count back from now (10,000 s after the epoch here).
        assert_eq!(at("1h30m"), "1970-01-01T01:16:40.000000000Z");
        assert_eq!(at("1.5s"), "1970-01-01T02:46:38.500000000Z");
        assert_eq!(at("300ms"), "1970-01-01T02:46:39.700000000Z");
    }

    #[test]
    fn bad_times_say_which_flag_and_what_is_accepted() {
        let now = SystemTime::now();
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-22T25:00:00Z",
            "5x",
            "",
            "1h30",
        ] {
            let e = parse_time("--until", bad, now).unwrap_err().to_string();
            assert!(
                e.contains("--until") && e.contains("RFC 3339"),
                "{bad}: {e}"
            );
        }
        // A bare number is a Unix timestamp, as for Docker.
        assert_eq!(
            parse_time("--until", "10", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(10)
        );
        // Before the epoch, as a duration: refused, not wrapped.
        assert!(parse_time("--since", "100000h", UNIX_EPOCH).is_err());
    }

    #[test]
    fn the_window_is_half_open() {
        let rec = |t: &str| Record {
            log: String::new(),
            stream: "stdout".into(),
            time: t.into(),
        };
        let since = Some("2026-11-22T10:00:00.000000000Z".to_string());
        let until = Some("2026-11-22T11:00:00.000000000Z".to_string());
        assert!(in_window(
            &rec("2026-11-22T10:00:00.000000000Z"),
            &since,
            &until
        ));
        assert!(in_window(
            &rec("2026-11-22T10:59:59.999999999Z"),
            &since,
            &until
        ));
        assert!(!in_window(
            &rec("2026-11-22T11:00:00.000000000Z"),
            &since,
            &until
        ));
        assert!(!in_window(
            &rec("2026-11-22T09:59:59.999999999Z"),
            &since,
            &until
        ));
        assert!(in_window(
            &rec("2026-11-22T09:00:00.000000000Z"),
            &None,
            &until
        ));
    }
}
