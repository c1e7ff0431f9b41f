//! Docker's status words: "Up 5 minutes", "Exited (3) 2 seconds ago", "2 minutes ago" (ps, the
//! Docker API's container list).

use std::time::SystemTime;

use super::record::State;

/// Docker's "2 minutes ago" wording.
pub fn ago(t: SystemTime) -> String {
    let d = SystemTime::now()
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
pub fn status_text(state: &State, started: Option<SystemTime>) -> String {
    match state {
        State::Created => "Created".to_string(),
        State::Running { .. } | State::Paused { .. } => {
            let up = started
                .and_then(|s| SystemTime::now().duration_since(s).ok())
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
        assert!(
            status_text(&State::Running { pid: 1 }, Some(SystemTime::now())).starts_with("Up ")
        );
    }
}
