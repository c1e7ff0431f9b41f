//! burrow as containerd's `binary://` log driver (as nerdctl is): the shim starts
//! `burrow _BURROW_INTERNAL_LOGGING DATA_ROOT` with the container's stdout on fd 3, stderr on
//! fd 4 and a ready pipe on fd 5, and CONTAINER_ID/CONTAINER_NAMESPACE set; every line becomes
//! a Docker json-file record in `DATA_ROOT/containers/NS/ID/ID-json.log`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::store::Store;

/// The argument containerd passes first (the key of the `binary://` URI's query).
pub const MAGIC_ARG: &str = "_BURROW_INTERNAL_LOGGING";

/// One json-file record, as Docker writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// The `binary://` stdio URI that makes the shim run this binary as the log driver.
pub fn uri(exe: &Path, data_root: &Path) -> String {
    format!(
        "binary://{}?{MAGIC_ARG}={}",
        exe.display(),
        percent_encode(&data_root.display().to_string())
    )
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// RFC 3339 with nanoseconds in UTC, as Docker's `time` field.
pub fn rfc3339_nano(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn inherited(fd: i32) -> Option<OwnedFd> {
    if !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return None;
    }
    // SAFETY: the shim passed fds 3-5 to this process for it to own; each is taken once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn copy(src: OwnedFd, stream: &'static str, out: Arc<Mutex<File>>) {
    let mut r = BufReader::new(File::from(src));
    let mut line = Vec::new();
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let rec = Record {
                    log: String::from_utf8_lossy(&line).into_owned(),
                    stream: stream.to_string(),
                    time: rfc3339_nano(std::time::SystemTime::now()),
                };
                let mut text = serde_json::to_string(&rec).unwrap_or_default();
                text.push('\n');
                if let Ok(mut f) = out.lock() {
                    let _ = f.write_all(text.as_bytes());
                }
            }
        }
    }
}

/// The log driver's main: runs until both streams close.
pub fn main(data_root: &str) -> anyhow::Result<()> {
    let id = std::env::var("CONTAINER_ID")
        .context("CONTAINER_ID is not set (run by containerd's shim only)")?;
    let ns = std::env::var("CONTAINER_NAMESPACE").unwrap_or_else(|_| "default".into());
    let store = Store::new(PathBuf::from(data_root), ns);
    let path = store.log_path(&id);
    if let Some(parent) = path.parent() {
        super::store::private_dir(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let out = Arc::new(Mutex::new(file));
    let stdout = inherited(3);
    let stderr = inherited(4);
    // Closing the ready pipe tells the shim the driver is up.
    drop(inherited(5));
    let mut threads = Vec::new();
    for (fd, name) in [(stdout, "stdout"), (stderr, "stderr")] {
        if let Some(fd) = fd {
            let out = out.clone();
            threads.push(std::thread::spawn(move || copy(fd, name, out)));
        }
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Reads the records of a json-file log (unparsable lines are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_305_600, 5);
        assert_eq!(rfc3339_nano(t), "2026-11-22T00:00:00.000000005Z");
        assert_eq!(
            rfc3339_nano(std::time::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nano(leap), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn uri_names_the_binary_and_data_root() {
        assert_eq!(
            uri(
                Path::new("/usr/bin/burrow"),
                Path::new("/home/u/.local/share/nerdctl")
            ),
            "binary:///usr/bin/burrow?_BURROW_INTERNAL_LOGGING=/home/u/.local/share/nerdctl"
        );
        assert!(uri(Path::new("/b"), Path::new("/a b")).ends_with("=/a%20b"));
    }
}
