//! A container's healthcheck as Docker configures it: `Config.Healthcheck` (the test and its
//! timings, Docker's JSON names, durations in nanoseconds), Go's duration syntax for the
//! `--health-*` flags, Docker's CLI rules for the flags, the daemon's checks of a request, and
//! the merge of the image's HEALTHCHECK under what the user gave (field by field).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::containers::values::ValueError;

/// Docker's defaults (daemon/health.go).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;
/// The shortest interval, timeout, start period or start interval the daemon takes.
pub const MINIMUM: Duration = Duration::from_millis(1);

/// Docker's `HealthConfig`: `Test` is `[]` (inherit the image's), `["NONE"]`, `["CMD", args...]`
/// or `["CMD-SHELL", command]`; zero durations and retries mean "inherit, else the default".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A healthcheck that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    #[error("--no-healthcheck conflicts with --health-* options")]
    Conflict,
    #[error("{0} cannot be negative")]
    Negative(&'static str),
    #[error("{field} in Healthcheck cannot be less than 1ms")]
    TooShort { field: &'static str },
    #[error("Retries in Healthcheck cannot be negative")]
    NegativeRetries,
    #[error("unknown Healthcheck test type {0:?}: use NONE, CMD or CMD-SHELL")]
    UnknownTest(String),
    #[error("Healthcheck test {0} needs a command")]
    EmptyTest(String),
}

impl HealthConfig {
    /// The command the healthcheck runs in the container (`CMD-SHELL` with `/bin/sh -c`), or
    /// none (no test, or `NONE`).
    pub fn probe(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
            Some((kind, [cmd])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
            }
            _ => None,
        }
    }

    /// Whether the test disables the image's healthcheck (`["NONE"]`).
    pub fn is_disabled(&self) -> bool {
        self.test.first().is_some_and(|t| t == "NONE")
    }

    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }
    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }
    pub fn start_period(&self) -> Duration {
        or_default(self.start_period, DEFAULT_START_PERIOD)
    }
    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, DEFAULT_START_INTERVAL)
    }
    pub fn retries(&self) -> u32 {
        if self.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            u32::try_from(self.retries).unwrap_or(u32::MAX)
        }
    }

    /// The daemon's checks: durations zero (default) or at least 1ms, retries not negative, a
    /// test Docker knows.
    pub fn validate(&self) -> Result<(), HealthError> {
        for (field, v) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if v != 0 && v < MINIMUM.as_nanos() as i64 {
                return Err(HealthError::TooShort { field });
            }
        }
        if self.retries < 0 {
            return Err(HealthError::NegativeRetries);
        }
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => Ok(()),
            Some(k @ ("CMD" | "CMD-SHELL")) if self.probe().is_none() => {
                Err(HealthError::EmptyTest(k.to_string()))
            }
            Some("CMD" | "CMD-SHELL") => Ok(()),
            Some(other) => Err(HealthError::UnknownTest(other.to_string())),
        }
    }

    /// Reads the image config's `Healthcheck` (absent or malformed: none).
    pub fn from_image_config(config: &serde_json::Value) -> Option<HealthConfig> {
        Self::from_json(config.get("Healthcheck")?)
    }

    /// Reads a `Healthcheck` value (null or malformed: none).
    pub fn from_json(h: &serde_json::Value) -> Option<HealthConfig> {
        if h.is_null() {
            return None;
        }
        serde_json::from_value(h.clone()).ok()
    }
}

fn or_default(nanos: i64, default: Duration) -> Duration {
    if nanos <= 0 {
        default
    } else {
        Duration::from_nanos(nanos as u64)
    }
}

/// The container's healthcheck as Docker's daemon merges it: the user's fields over the
/// image's, each zero (or empty test) field taken from the image.
pub fn merge(user: Option<&HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    let (user, image) = match (user, image) {
        (None, i) => return i.cloned(),
        (Some(u), None) => return Some(u.clone()),
        (Some(u), Some(i)) => (u, i),
    };
    let pick = |u: i64, i: i64| if u == 0 { i } else { u };
    Some(HealthConfig {
        test: if user.test.is_empty() {
            image.test.clone()
        } else {
            user.test.clone()
        },
        interval: pick(user.interval, image.interval),
        timeout: pick(user.timeout, image.timeout),
        start_period: pick(user.start_period, image.start_period),
        start_interval: pick(user.start_interval, image.start_interval),
        retries: pick(user.retries, image.retries),
    })
}

/// The `--health-*` and `--no-healthcheck` flags, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// `--health-cmd` (run with the container's shell: CMD-SHELL).
    pub cmd: Option<String>,
    pub interval: Option<GoDuration>,
    pub timeout: Option<GoDuration>,
    pub start_period: Option<GoDuration>,
    pub start_interval: Option<GoDuration>,
    pub retries: Option<i64>,
    /// `--no-healthcheck`: the image's healthcheck is off.
    pub disable: bool,
}

impl HealthOptions {
    /// The request's `Config.Healthcheck`, by Docker's CLI rules: none without any flag;
    /// `["NONE"]` with --no-healthcheck (an error with any --health-* flag); else the flags
    /// given, the rest inherited from the image.
    pub fn config(&self) -> Result<Option<HealthConfig>, HealthError> {
        let durations = [
            ("--health-interval", self.interval),
            ("--health-timeout", self.timeout),
            ("--health-start-period", self.start_period),
            ("--health-start-interval", self.start_interval),
        ];
        let any = self.cmd.as_deref().is_some_and(|c| !c.is_empty())
            || durations.iter().any(|(_, d)| d.is_some_and(|d| d.0 != 0))
            || self.retries.is_some_and(|r| r != 0);
        if self.disable {
            if any {
                return Err(HealthError::Conflict);
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            }));
        }
        if !any {
            return Ok(None);
        }
        for (flag, d) in durations {
            if d.is_some_and(|d| d.0 < 0) {
                return Err(HealthError::Negative(flag));
            }
        }
        if self.retries.is_some_and(|r| r < 0) {
            return Err(HealthError::Negative("--health-retries"));
        }
        let ns = |d: Option<GoDuration>| d.map_or(0, |d| d.0);
        Ok(Some(HealthConfig {
            test: match self.cmd.as_deref() {
                Some(c) if !c.is_empty() => vec!["CMD-SHELL".into(), c.into()],
                _ => vec![],
            },
            interval: ns(self.interval),
            timeout: ns(self.timeout),
            start_period: ns(self.start_period),
            start_interval: ns(self.start_interval),
            retries: self.retries.unwrap_or(0),
        }))
    }
}

/// A duration in Go's syntax (`time.ParseDuration`): "1m30s", "500ms", "-1.5h", "0"; held in
/// nanoseconds, as Docker's JSON has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub i64);

impl GoDuration {
    pub fn from_std(d: Duration) -> GoDuration {
        GoDuration(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl FromStr for GoDuration {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<GoDuration, ValueError> {
        crate::containers::values::parse_go_duration(s)
            .map(GoDuration)
            .ok_or_else(|| ValueError::Duration(s.to_string()))
    }
}

impl fmt::Display for GoDuration {
    /// Go's `Duration.String()`: "1m30s", "500ms", "1.5s", "0s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let n = self.0.unsigned_abs();
        let frac = |v: u64, per: u64| -> String {
            let whole = v / per;
            let rest = v % per;
            if rest == 0 {
                return whole.to_string();
            }
            let width = per.to_string().len() - 1;
            let digits = format!("{rest:0width$}");
            format!("{whole}.{}", digits.trim_end_matches('0'))
        };
        if n == 0 {
            return write!(f, "0s");
        }
        if n < 1_000 {
            return write!(f, "{sign}{n}ns");
        }
        if n < 1_000_000 {
            return write!(f, "{sign}{}µs", frac(n, 1_000));
        }
        if n < 1_000_000_000 {
            return write!(f, "{sign}{}ms", frac(n, 1_000_000));
        }
        let secs = n / 1_000_000_000;
        let sub = n % 1_000_000_000;
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let s_text = frac(s * 1_000_000_000 + sub, 1_000_000_000);
        match (h, m) {
            (0, 0) => write!(f, "{sign}{s_text}s"),
            (0, m) => write!(f, "{sign}{m}m{s_text}s"),
            (h, m) => write!(f, "{sign}{h}h{m}m{s_text}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> i64 {
        s.parse::<GoDuration>().unwrap().0
    }

    #[test]
    fn go_durations_parse_and_print_as_go() {
        assert_eq!(d("1m30s"), 90_000_000_000);
        assert_eq!(d("500ms"), 500_000_000);
        assert_eq!(d("1.5h"), 5_400_000_000_000);
        assert_eq!(d("-1s"), -1_000_000_000);
        assert_eq!(d("0"), 0);
        assert_eq!(d("2us"), 2_000);
        for bad in ["", "1", "s", "1x", "1..5s", "-", "1s2"] {
            let e = bad.parse::<GoDuration>().unwrap_err();
            assert!(e.to_string().contains("duration"), "{bad}: {e}");
        }
        for s in ["1m30s", "500ms", "1.5s", "0s", "30s", "1h0m0s", "-2s"] {
            assert_eq!(s.parse::<GoDuration>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn flags_become_a_healthcheck_as_dockers_cli_makes_it() {
        assert_eq!(HealthOptions::default().config(), Ok(None));
        let o = HealthOptions {
            cmd: Some("true".into()),
            interval: Some(GoDuration(1_000_000_000)),
            retries: Some(2),
            ..Default::default()
        };
        let c = o.config().unwrap().unwrap();
        assert_eq!(c.test, ["CMD-SHELL", "true"]);
        assert_eq!((c.interval, c.retries, c.timeout), (1_000_000_000, 2, 0));
        assert_eq!(c.probe().unwrap(), ["/bin/sh", "-c", "true"]);
        let off = HealthOptions {
            disable: true,
            ..Default::default()
        };
        assert!(off.config().unwrap().unwrap().is_disabled());
        let both = HealthOptions {
            disable: true,
            timeout: Some(GoDuration(5)),
            ..Default::default()
        };
        assert_eq!(both.config(), Err(HealthError::Conflict));
        let neg = HealthOptions {
            interval: Some(GoDuration(-1)),
            ..Default::default()
        };
        assert_eq!(
            neg.config().unwrap_err().to_string(),
            "--health-interval cannot be negative"
        );
    }

    #[test]
    fn the_image_fills_what_the_user_left_out() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "/bin/check".into()],
            interval: 5,
            retries: 7,
            ..Default::default()
        };
        let user = HealthConfig {
            interval: 9,
            ..Default::default()
        };
        let m = merge(Some(&user), Some(&image)).unwrap();
        assert_eq!(
            (m.test.clone(), m.interval, m.retries),
            (image.test.clone(), 9, 7)
        );
        assert_eq!(merge(None, Some(&image)), Some(image.clone()));
        assert_eq!(merge(None, None), None);
        let json = serde_json::json!({"Healthcheck": {"Test": ["CMD-SHELL", "x"], "Interval": 1000000000, "Retries": 2}});
        let h = HealthConfig::from_image_config(&json).unwrap();
        assert_eq!(h.interval(), Duration::from_secs(1));
        assert_eq!((h.retries(), h.timeout()), (2, DEFAULT_TIMEOUT));
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            serde_json::json!({"Test": ["CMD-SHELL", "x"], "Interval": 1000000000i64, "Retries": 2})
        );
    }

    #[test]
    fn the_daemon_refuses_what_docker_refuses() {
        let mut h = HealthConfig {
            test: vec!["CMD".into(), "x".into()],
            interval: 10,
            ..Default::default()
        };
        assert_eq!(
            h.validate(),
            Err(HealthError::TooShort { field: "Interval" })
        );
        h.interval = 0;
        h.retries = -1;
        assert_eq!(h.validate(), Err(HealthError::NegativeRetries));
        h.retries = 0;
        assert!(h.validate().is_ok());
        h.test = vec!["CMD".into()];
        assert!(h.validate().is_err());
        h.test = vec!["WHAT".into()];
        assert!(h.validate().is_err());
    }
}
