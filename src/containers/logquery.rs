//! Which of a container's log records `logs` shows, and reading them: the `--since`/`--until`
//! window in the time forms Docker takes, `--tail`, and following the log until the container
//! stops or `--until` has passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::journald;
use super::logdriver::Record;
use super::logfollow::Follower;
use super::logopts::{Driver, LogOpts};
use super::{record, Ctx};
use crate::images::time::{fraction_nanos, parse_rfc3339_nanos, rfc3339_nano};

/// A `logs` flag whose value is not one of the accepted forms.
#[derive(Debug, thiserror::Error)]
pub enum LogQueryError {
    #[error(
        "invalid {flag} {value:?}: give an RFC 3339 time (2026-11-22T10:00:00Z), a date \
         (2026-11-22), a Unix timestamp (1763805600) or a duration before now (10m, 1h30m)"
    )]
    Time { flag: String, value: String },
    #[error("invalid --tail {0:?}: give a number of lines or \"all\"")]
    Tail(String),
    /// Docker's words for a container made with `--log-driver none`.
    #[error("configured logging driver does not support reading")]
    NotReadable,
}

/// What to show of a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Records at or after this time (RFC 3339 UTC with nanoseconds, as records carry it).
    pub since: Option<String>,
    /// Records before this time (same form); following stops once it has passed.
    pub until: Option<String>,
    /// Only the last this many of the records there are when reading starts.
    pub tail: Option<usize>,
    /// Go on showing records as they are written while the container runs.
    pub follow: bool,
}

impl LogQuery {
    /// From the flags' values: `--since`, `--until` (see [`parse_time`]; durations count back
    /// from `now`) and `--tail` (a number, or "all"/"-1").
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        tail: &str,
        follow: bool,
        now: SystemTime,
    ) -> Result<LogQuery, LogQueryError> {
        let bound = |flag: &str, v: Option<&str>| {
            v.map(|v| parse_time(flag, v, now).map(rfc3339_nano))
                .transpose()
        };
        let since = bound("--since", since)?;
        let until = bound("--until", until)?;
        let tail = match tail {
            "all" | "-1" => None,
            n => Some(n.parse().map_err(|_| LogQueryError::Tail(n.to_string()))?),
        };
        Ok(LogQuery {
            since,
            until,
            tail,
            follow,
        })
    }

    /// Whether `r` is in [since, until): the bounds and the records' times compare as strings.
    pub fn shows(&self, r: &Record) -> bool {
        self.since
            .as_ref()
            .is_none_or(|s| r.time.as_str() >= s.as_str())
            && self
                .until
                .as_ref()
                .is_none_or(|u| r.time.as_str() < u.as_str())
    }

    fn until_passed(&self) -> bool {
        self.until
            .as_ref()
            .is_some_and(|u| rfc3339_nano(SystemTime::now()) >= *u)
    }
}

/// Gives `emit` the records of the container `container` (an id, name or prefix) that `q`
/// selects, oldest first; with `q.follow`, also those written later, until the container stops
/// or `q.until` has passed.
pub async fn read(
    ctx: &Ctx,
    container: &str,
    q: &LogQuery,
    mut emit: impl FnMut(&Record),
) -> anyhow::Result<()> {
    let c = ctx.find(container).await?;
    let path = ctx.store.log_path(&c.id);
    match LogOpts::load(&path).driver {
        Driver::None => return Err(LogQueryError::NotReadable.into()),
        Driver::Journald => return read_journal(ctx, &c.id, q, emit).await,
        Driver::JsonFile | Driver::Local => {}
    }
    let reading = || {
        format!(
            "reading the log of {container} at {} (check that it is yours and readable)",
            path.display()
        )
    };
    let (records, mut follower) = Follower::start(&path).with_context(reading)?;
    let records: Vec<Record> = records.into_iter().filter(|r| q.shows(r)).collect();
    let skip = q.tail.map(|n| records.len().saturating_sub(n)).unwrap_or(0);
    records[skip..].iter().for_each(&mut emit);
    if !q.follow {
        return Ok(());
    }
    loop {
        let running = record::state(ctx, &c.id).await?.is_running();
        for r in follower.poll().with_context(reading)? {
            if q.shows(&r) {
                emit(&r);
            }
        }
        // As Docker: following ends when the container stops or --until has passed.
        if !running || q.until_passed() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`read`] for a container that logs to the journal (read with journalctl).
async fn read_journal(
    ctx: &Ctx,
    id: &str,
    q: &LogQuery,
    mut emit: impl FnMut(&Record),
) -> anyhow::Result<()> {
    let (records, mut cursor) = crate::connection::blocking(|| journald::read(id, None))?;
    let records: Vec<Record> = records.into_iter().filter(|r| q.shows(r)).collect();
    let skip = q.tail.map(|n| records.len().saturating_sub(n)).unwrap_or(0);
    records[skip..].iter().for_each(&mut emit);
    if !q.follow {
        return Ok(());
    }
    loop {
        let running = record::state(ctx, id).await?.is_running();
        let (more, next) = crate::connection::blocking(|| journald::read(id, cursor.as_deref()))?;
        more.iter().filter(|r| q.shows(r)).for_each(&mut emit);
        cursor = next;
        if !running || q.until_passed() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// [`parse_time`] against the current time, as Unix seconds (a time filter's bound).
pub fn parse_unix_secs(flag: &str, value: &str) -> Result<i64, LogQueryError> {
    let secs = parse_time(flag, value, SystemTime::now())?
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A `--since`/`--until` value as Docker takes it: an RFC 3339 time or date
/// (2026-11-22T10:00:00Z, 2026-11-22T11:00:00+01:00, 2026-11-22), a Unix timestamp
/// (1763805600, 1763805600.5) or a duration before `now` (10m, 1h30m, 90s).
pub fn parse_time(flag: &str, value: &str, now: SystemTime) -> Result<SystemTime, LogQueryError> {
    let bad = || LogQueryError::Time {
        flag: flag.to_string(),
        value: value.to_string(),
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

/// Go's duration syntax, as Docker's `--since`/`--until` take it: numbers with units, e.g.
/// `1h30m`, `2.5s`, `300ms`; "0" is not a duration there (it is the Unix time 0, as Docker's).
pub fn parse_duration(v: &str) -> Option<Duration> {
    if v == "0" {
        return None;
    }
    super::values::parse_go_duration_std(v)
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
    fn flags_become_a_query() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let q = LogQuery::parse(Some("10s"), None, "5", true, now).unwrap();
        assert_eq!(q.since.as_deref(), Some("1970-01-01T02:46:30.000000000Z"));
        assert_eq!((q.until, q.tail, q.follow), (None, Some(5), true));
        assert_eq!(
            LogQuery::parse(None, None, "-1", false, now).unwrap(),
            LogQuery::default()
        );
        let e = LogQuery::parse(None, None, "ten", false, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --tail \"ten\": give a number of lines or \"all\""
        );
        let e = LogQuery::parse(Some("1d"), None, "all", false, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid --since \"1d\": give an RFC 3339 time (2026-11-22T10:00:00Z), a date \
             (2026-11-22), a Unix timestamp (1763805600) or a duration before now (10m, 1h30m)"
        );
    }

    #[test]
    fn the_window_is_half_open() {
        let rec = |t: &str| Record {
            log: String::new(),
            stream: "stdout".into(),
            attrs: Default::default(),
            time: t.into(),
        };
        let q = LogQuery {
            since: Some("2026-11-22T10:00:00.000000000Z".to_string()),
            until: Some("2026-11-22T11:00:00.000000000Z".to_string()),
            ..LogQuery::default()
        };
        assert!(q.shows(&rec("2026-11-22T10:00:00.000000000Z")));
        assert!(q.shows(&rec("2026-11-22T10:59:59.999999999Z")));
        assert!(!q.shows(&rec("2026-11-22T11:00:00.000000000Z")));
        assert!(!q.shows(&rec("2026-11-22T09:59:59.999999999Z")));
        let open = LogQuery { since: None, ..q };
        assert!(open.shows(&rec("2026-11-22T09:00:00.000000000Z")));
    }
}
