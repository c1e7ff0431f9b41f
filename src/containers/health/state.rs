//! A container's health as Docker keeps it (`State.Health`: Status, FailingStreak, the last 5
//! results) and the state machine that moves it: starting until the first success; healthy on
//! a success; unhealthy after `retries` failures in a row; failures in the start period not
//! counted while starting. Kept in `health.json` in the container's state dir, with the
//! generation of the monitor in charge, written atomically under a lock.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// The file's name in the container's state dir.
pub const STATE_FILE: &str = "health.json";
const LOCK_FILE: &str = "health.lock";
/// Docker keeps this many results.
pub const MAX_LOG_ENTRIES: usize = 5;
/// Docker keeps this many bytes of a probe's output (then "...").
pub const MAX_OUTPUT_LEN: usize = 4096;

/// Docker's health words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn word(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }

    /// What `ps` adds to "Up 5 seconds": "(healthy)", "(health: starting)", "(unhealthy)".
    pub fn ps_suffix(self) -> String {
        match self {
            HealthStatus::Starting => "(health: starting)".into(),
            other => format!("({})", other.word()),
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// One probe's result, as Docker's `HealthcheckResult` (times in RFC 3339 with nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    /// 0 healthy, else unhealthy; -1 when the probe timed out or could not run.
    pub exit_code: i64,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<HealthResult>,
}

impl Health {
    /// Takes a probe's result: `in_start_period` when it began within the start period,
    /// `retries` failures in a row make it unhealthy. Returns the new status when it changed.
    pub fn record(
        &mut self,
        result: HealthResult,
        in_start_period: bool,
        retries: u32,
    ) -> Option<HealthStatus> {
        let old = self.status;
        let ok = result.exit_code == 0;
        self.log.push(result);
        if self.log.len() > MAX_LOG_ENTRIES {
            let extra = self.log.len() - MAX_LOG_ENTRIES;
            self.log.drain(..extra);
        }
        if ok {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        (self.status != old).then_some(self.status)
    }

    /// A new start: starting again, no failures, the log kept (as Docker does).
    pub fn restart(&mut self) {
        self.status = HealthStatus::Starting;
        self.failing_streak = 0;
    }
}

/// A probe's output as Docker keeps it: the first 4096 bytes, then "..." when there was more.
#[derive(Debug, Default)]
pub struct LimitedOutput {
    buf: Vec<u8>,
    truncated: bool,
}

impl LimitedOutput {
    pub fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.buf.len())
            .min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// The file: the health, and which monitor keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The generation of the monitor in charge (a newer start replaces it).
    pub generation: String,
    pub health: Health,
}

/// The health state of the container whose state dir is `dir`.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
}

/// The health state file cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("health state of the container in {dir}: {source}")]
pub struct StateError {
    dir: PathBuf,
    source: std::io::Error,
}

impl StateFile {
    pub fn new(container_dir: &Path) -> StateFile {
        StateFile {
            dir: container_dir.to_path_buf(),
        }
    }

    /// The record, if there is one (none before the first start with a healthcheck).
    pub fn read(&self) -> Option<Record> {
        let data = std::fs::read(self.dir.join(STATE_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Changes the record under the lock and writes it atomically; `change` returns what to
    /// give back, or `None` to leave the file as it was. Fails when the container's dir is
    /// gone (the container was removed).
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Record) -> Option<T>,
    ) -> Result<Option<T>, StateError> {
        let err = |source| StateError {
            dir: self.dir.clone(),
            source,
        };
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
            .map_err(err)?;
        let _held = Flock::lock(lock, FlockArg::LockExclusive)
            .map_err(|(_, e)| err(std::io::Error::from(e)))?;
        let mut rec = self.read().unwrap_or_default();
        let Some(out) = change(&mut rec) else {
            return Ok(None);
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
        let data = serde_json::to_vec(&rec).map_err(|e| err(e.into()))?;
        tmp.write_all(&data).map_err(err)?;
        tmp.persist(self.dir.join(STATE_FILE))
            .map_err(|e| err(e.error))?;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(code: i64) -> HealthResult {
        HealthResult {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn dockers_state_machine() {
        let mut h = Health::default();
        assert_eq!(h.record(result(1), true, 2), None, "start period");
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(1), false, 2), None);
        assert_eq!(h.record(result(1), false, 2), Some(HealthStatus::Unhealthy));
        assert_eq!(h.failing_streak, 2);
        assert_eq!(h.record(result(0), false, 2), Some(HealthStatus::Healthy));
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(1), true, 2), None, "healthy: counted");
        assert_eq!(h.failing_streak, 1);
        for _ in 0..5 {
            h.record(result(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG_ENTRIES);
        h.restart();
        assert_eq!(
            (h.status, h.failing_streak, h.log.len()),
            (HealthStatus::Starting, 0, 5)
        );
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["Status"], "starting");
        assert_eq!(json["FailingStreak"], 0);
        assert_eq!(json["Log"][0]["ExitCode"], 0);
        assert_eq!(HealthStatus::Starting.ps_suffix(), "(health: starting)");
        assert_eq!(HealthStatus::Healthy.ps_suffix(), "(healthy)");
    }

    #[test]
    fn output_is_truncated_as_docker_does() {
        let mut o = LimitedOutput::default();
        o.push(b"ok\n");
        assert_eq!(o.text(), "ok\n");
        o.push(&[b'x'; 5000]);
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT_LEN + 3);
        assert!(t.ends_with("..."));
    }

    #[test]
    fn the_file_is_updated_under_its_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let f = StateFile::new(tmp.path());
        assert!(f.read().is_none());
        f.update(|r| {
            r.generation = "g1".into();
            Some(())
        })
        .unwrap();
        assert_eq!(f.read().unwrap().generation, "g1");
        assert_eq!(f.update(|_| None::<()>).unwrap(), None);
        let gone = StateFile::new(&tmp.path().join("removed"));
        assert!(gone.update(|_| Some(())).is_err());
    }
}
