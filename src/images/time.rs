//! Time stamps as images, containerd and container logs carry them: RFC 3339 text (with
//! nanoseconds for logs), protobuf timestamps, "2 days ago".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (negative before it).
fn unix(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    }
}

/// `2026-11-22T23:50:00Z` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    format_unix(unix(t).0)
}

/// Formats seconds since the epoch as RFC 3339 UTC.
pub fn format_unix(secs: i64) -> String {
    let ((y, m, d), (h, mi, s)) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Date and time of day (UTC) of epoch seconds.
fn civil(secs: i64) -> ((i64, u32, u32), (i64, i64, i64)) {
    let rem = secs.rem_euclid(86_400);
    (
        civil_from_days(secs.div_euclid(86_400)),
        (rem / 3600, (rem / 60) % 60, rem % 60),
    )
}

/// `2026-11-22 23:50:00 +0000 UTC`: a time as Go prints one, which is how Docker's `CreatedAt`
/// columns (`ps`, `images`, `network ls`) show it; always in UTC here.
pub fn go_string(secs: i64) -> String {
    let ((y, m, d), (h, mi, s)) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
}

/// `2026-11-22 23:50:00`: date and time of epoch seconds (UTC), as Docker Compose's event
/// lines start.
pub fn date_time(secs: i64) -> String {
    let ((y, m, d), (h, mi, s)) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Whole seconds since the epoch (negative before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    unix(t).0
}

/// `2026-11-22T10:00:00.000000000Z`: RFC 3339 in UTC with nine fraction digits, as Docker's
/// json-file log writes times (so that such strings compare in time order).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = unix(t);
    let ((y, m, d), (h, mi, s)) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// Parses RFC 3339 (`2023-11-14T22:13:20Z`, fractions and offsets allowed) to epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    parse_rfc3339_nanos(s).map(|(secs, _)| secs)
}

/// RFC 3339 and the shorter forms Docker takes for a time: `2023-11-14T22:13:20Z`, with a
/// fraction, a `+01:00`/`-02:00` offset, no zone at all (UTC), or a date alone (midnight UTC).
/// Epoch seconds (negative before 1970) and nanoseconds.
pub fn parse_rfc3339_nanos(v: &str) -> Option<(i64, u32)> {
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, time) = match v.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut parts = date.splitn(3, '-');
    let (y, mo, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if date.len() != 10 || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos = 0;
    if let Some(t) = time {
        let (clock, offset) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
            (c, 0)
        } else if let Some(at) = t.rfind(['+', '-']) {
            let (c, o) = t.split_at(at);
            let (oh, om) = o[1..].split_once(':')?;
            let off = num(oh)? * 3600 + num(om)? * 60;
            (c, if o.starts_with('-') { -off } else { off })
        } else {
            // No zone: UTC (Docker would take the client's local time zone).
            (t, 0)
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut hms = hms.splitn(3, ':');
        let (h, mi, s) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        nanos = fraction_nanos(frac)?;
        secs += h * 3600 + mi * 60 + s - offset;
    }
    Some((secs, nanos))
}

/// Up to nine digits after a decimal point, as nanoseconds (`""` is 0).
pub fn fraction_nanos(frac: &str) -> Option<u32> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() {
        return Some(0);
    }
    Some(frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32))
}

/// A protobuf timestamp for a system time.
pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let (seconds, nanos) = unix(t);
    prost_types::Timestamp {
        seconds,
        nanos: nanos as i32,
    }
}

/// Go's zero time as Docker prints it: a time field with no value (clients parse these fields
/// as times, so an empty string is an error for them).
pub const ZERO: &str = "0001-01-01T00:00:00Z";

/// Docker's "About an hour ago" style for an epoch time.
pub fn ago(secs: i64) -> String {
    let now = unix(SystemTime::now()).0;
    let d = Duration::from_secs((now - secs).max(0) as u64).as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("{} {unit} ago", if unit == "hour" { "An" } else { "1" })
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match d {
        0 => "Less than a second ago".into(),
        1..=59 => plural(d, "second"),
        60..=3599 => plural(d / 60, "minute"),
        3600..=86_399 if d / 3600 == 1 => "About an hour ago".into(),
        3600..=86_399 => plural(d / 3600, "hour"),
        86_400..=1_209_599 => plural(d / 86_400, "day"),
        1_209_600..=5_183_999 => plural(d / 604_800, "week"),
        5_184_000..=63_071_999 => plural(d / 2_592_000, "month"),
        _ => plural(d / 31_536_000, "year"),
    }
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(format_unix(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20.123456789+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z")
                .map(format_unix)
                .as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
    }

    #[test]
    fn go_strings() {
        assert_eq!(go_string(1_700_000_000), "2023-11-14 22:13:20 +0000 UTC");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 999_999_999);
        assert_eq!(go_string(unix_secs(t)), "2023-11-14 22:13:20 +0000 UTC");
    }

    #[test]
    fn nanosecond_times() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            parse_rfc3339_nanos("2023-11-14T22:13:20.25Z"),
            Some((1_700_000_000, 250_000_000))
        );
        // The shorter forms: a date alone, no zone.
        assert_eq!(parse_rfc3339_nanos("2023-11-14"), Some((1_699_920_000, 0)));
        assert_eq!(
            parse_rfc3339_nanos("2023-11-14T22:13:20"),
            Some((1_700_000_000, 0))
        );
        assert_eq!(parse_rfc3339_nanos("2023-11-14T22:13:20.1234567890Z"), None);
    }
}
