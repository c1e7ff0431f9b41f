//! The container commands (run, create, start, ps, logs, stop, kill, rm, wait, inspect, port,
//! ...) and what their output shares: Docker's durations and STATUS words. The records they
//! work on are the library's (`burrow::containers::{record, labels, Ctx}`).

pub mod attach;
pub mod commit;
pub mod cp;
pub mod detach;
pub mod devices;
pub mod diff;
pub mod exec;
pub mod export;
pub mod group;
pub mod health;
pub mod inspect;
pub mod logs;
pub mod manage;
pub mod netflags;
pub mod orphan;
pub mod ps;
pub mod restart;
pub mod run;
pub mod runflags;
pub mod stats;
pub mod userns;

use std::process::ExitCode;

use burrow::connection;
pub use burrow::containers::record::*;
pub use burrow::containers::{labels, Ctx};

/// Runs an async command body on the CLI's runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    connection::runtime().block_on(f)
}

/// Docker's "2 minutes ago" wording.
pub fn ago(t: std::time::SystemTime) -> String {
    let d = std::time::SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_secs();
    format!("{} ago", human_duration(d))
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0 => "Less than a second".to_string(),
        1..=59 => plural(secs, "second"),
        60..=3599 => {
            if secs / 60 == 1 {
                "About a minute".to_string()
            } else {
                plural(secs / 60, "minute")
            }
        }
        3600..=172_799 => {
            if secs / 3600 == 1 {
                "About an hour".to_string()
            } else {
                plural(secs / 3600, "hour")
            }
        }
        172_800..=1_209_599 => plural(secs / 86400, "day"),
        1_209_600..=5_183_999 => plural(secs / 604_800, "week"),
        5_184_000..=63_071_999 => plural(secs / 2_592_000, "month"),
        _ => plural(secs / 31_536_000, "year"),
    }
}

/// Docker's STATUS column: "Up 5 minutes", "Exited (3) 2 seconds ago", "Created".
pub fn status_text(state: &State, started: Option<std::time::SystemTime>) -> String {
    match state {
        State::Created => "Created".to_string(),
        State::Running { .. } | State::Paused { .. } => {
            let up = started
                .and_then(|s| std::time::SystemTime::now().duration_since(s).ok())
                .map(|d| human_duration(d.as_secs()))
                .unwrap_or_else(|| "Less than a second".to_string());
            if matches!(state, State::Paused { .. }) {
                format!("Up {up} (Paused)")
            } else {
                format!("Up {up}")
            }
        }
        State::Exited { code, at } => match at {
            Some(t) => format!("Exited ({code}) {}", ago(*t)),
            None => format!("Exited ({code})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(7300), "2 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn status_words() {
        assert_eq!(status_text(&State::Created, None), "Created");
        let s = status_text(&State::Exited { code: 3, at: None }, None);
        assert_eq!(s, "Exited (3)");
        assert!(status_text(
            &State::Running { pid: 1 },
            Some(std::time::SystemTime::now())
        )
        .starts_with("Up "));
    }
}
