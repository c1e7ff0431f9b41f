//! The journald log driver: each line a journal entry sent to systemd-journald's native socket
//! with Docker's fields (MESSAGE, CONTAINER_ID, CONTAINER_ID_FULL, CONTAINER_NAME,
//! CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER, PRIORITY 6 for stdout and 3 for stderr, and the
//! `--log-opt labels=/env=` attributes with journal-safe keys); `logs` reads them back with
//! `journalctl -o json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::logdriver::Record;
use crate::images::time::rfc3339_nano;

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write to the journal socket {path}: {source}")]
    Send {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading a journald log needs journalctl, which could not run ({0}): install systemd's journalctl")]
    NoJournalctl(std::io::Error),
    #[error("journalctl failed reading the log of {id}: {stderr}")]
    Journalctl { id: String, stderr: String },
}

/// A connection to the journal with the fields every entry of one container carries.
pub struct Journal {
    sock: UnixDatagram,
    path: PathBuf,
    fields: Vec<(String, String)>,
}

/// Docker's journald fields of a container (`attrs` keys made journal-safe).
pub fn container_fields(
    id: &str,
    name: &str,
    image: &str,
    tag: Option<&str>,
    attrs: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let short: String = id.chars().take(12).collect();
    // `--log-opt tag=` replaces the short id in both (Docker's default tag is {{.ID}}).
    let tag = tag.map_or_else(|| short.clone(), str::to_string);
    let mut f = vec![
        ("CONTAINER_ID".to_string(), short),
        ("CONTAINER_ID_FULL".into(), id.to_string()),
        ("CONTAINER_NAME".into(), name.to_string()),
        ("CONTAINER_TAG".into(), tag.clone()),
        ("IMAGE_NAME".into(), image.to_string()),
        ("SYSLOG_IDENTIFIER".into(), tag),
    ];
    for (k, v) in attrs {
        let key = field_key(k);
        if !key.is_empty() {
            f.push((key, v.clone()));
        }
    }
    f
}

/// A journal field name from any key, as Docker's driver makes one: uppercase letters, digits
/// and `_`, not starting with `_`.
fn field_key(k: &str) -> String {
    let up: String = k
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            c @ ('A'..='Z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    up.trim_start_matches('_').to_string()
}

impl Journal {
    /// Connects to the journal at `socket` (normally [`super::logopts::JOURNAL_SOCKET`]).
    pub fn connect(socket: &Path, fields: Vec<(String, String)>) -> Result<Journal, JournalError> {
        let send_err = |source| JournalError::Send {
            path: socket.to_path_buf(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(send_err)?;
        Ok(Journal {
            sock,
            path: socket.to_path_buf(),
            fields,
        })
    }

    /// Sends `line` of `stream` as one entry (its final newline dropped, as Docker does).
    pub fn send(&self, stream: &str, line: &[u8]) -> Result<(), JournalError> {
        let msg = line.strip_suffix(b"\n").unwrap_or(line);
        let priority = if stream == "stderr" { "3" } else { "6" };
        let data = entry(&self.fields, msg, priority);
        self.sock
            .send_to(&data, &self.path)
            .map(drop)
            .map_err(|source| JournalError::Send {
                path: self.path.clone(),
                source,
            })
    }
}

/// One entry in the journal's native protocol: `KEY=value\n`, or for values with a newline
/// `KEY\n`, the length as 64-bit little endian, the bytes and `\n`.
pub fn entry(fields: &[(String, String)], message: &[u8], priority: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut put = |k: &str, v: &[u8]| {
        if v.contains(&b'\n') {
            out.extend_from_slice(k.as_bytes());
            out.push(b'\n');
            let _ = out.write_all(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v);
        } else {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v);
        }
        out.push(b'\n');
    };
    put("MESSAGE", message);
    put("PRIORITY", priority.as_bytes());
    for (k, v) in fields {
        put(k, v.as_bytes());
    }
    out
}

/// The entries of container `id` in the journal (after `cursor`, when given), as records, and
/// the cursor of the last one.
pub fn read(id: &str, cursor: Option<&str>) -> Result<(Vec<Record>, Option<String>), JournalError> {
    let mut cmd = Command::new("journalctl");
    cmd.args(["--no-pager", "-o", "json", "--all"]);
    if let Some(c) = cursor {
        cmd.arg(format!("--after-cursor={c}"));
    }
    cmd.arg(format!("CONTAINER_ID_FULL={id}"));
    let out = cmd.output().map_err(JournalError::NoJournalctl)?;
    if !out.status.success() {
        return Err(JournalError::Journalctl {
            id: id.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    let mut last = cursor.map(String::from);
    let mut records = Vec::new();
    for line in out.stdout.split(|b| *b == b'\n') {
        if let Some((r, c)) = parse_entry(line) {
            records.push(r);
            last = Some(c);
        }
    }
    Ok((records, last))
}

/// A `journalctl -o json` line as a record (MESSAGE with its newline back, the realtime stamp,
/// stderr for PRIORITY 3) and its cursor.
fn parse_entry(line: &[u8]) -> Option<(Record, String)> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let mut log = match &v["MESSAGE"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(bytes) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u8)
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => String::new(),
    };
    log.push('\n');
    let micros: u64 = v["__REALTIME_TIMESTAMP"].as_str()?.parse().ok()?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros);
    let stream = match v["PRIORITY"].as_str() {
        Some("3") => "stderr",
        _ => "stdout",
    };
    Some((
        Record {
            log,
            stream: stream.into(),
            attrs: BTreeMap::new(),
            time: rfc3339_nano(time),
        },
        v["__CURSOR"].as_str()?.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_the_native_protocol_reach_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let attrs: BTreeMap<String, String> = [("com.team".to_string(), "a".to_string())].into();
        let fields = container_fields("0123456789abcdef", "web", "busybox", None, &attrs);
        let tagged = container_fields(
            "0123456789abcdef",
            "web",
            "busybox",
            Some("app/web"),
            &attrs,
        );
        assert!(tagged.contains(&("SYSLOG_IDENTIFIER".into(), "app/web".into())));
        assert!(tagged.contains(&("CONTAINER_TAG".into(), "app/web".into())));
        let j = Journal::connect(&path, fields).unwrap();
        j.send("stderr", b"oops\n").unwrap();
        j.send("stdout", b"two\nlines").unwrap();
        let mut buf = vec![0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        for f in [
            "MESSAGE=oops\n",
            "PRIORITY=3\n",
            "CONTAINER_ID=0123456789ab\n",
            "CONTAINER_ID_FULL=0123456789abcdef\n",
            "CONTAINER_NAME=web\n",
            "IMAGE_NAME=busybox\n",
            "SYSLOG_IDENTIFIER=0123456789ab\n",
            "COM_TEAM=a\n",
        ] {
            assert!(text.contains(f), "{f:?} not in {text:?}");
        }
        let n = server.recv(&mut buf).unwrap();
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\nPRIORITY=6\n");
        assert!(buf[..n].starts_with(&want), "{:?}", &buf[..n]);
    }

    #[test]
    fn journalctl_json_lines_become_records() {
        let line = br#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1795305600000001","PRIORITY":"3","MESSAGE":"hi"}"#;
        let (r, c) = parse_entry(line).unwrap();
        assert_eq!(c, "s=1;i=2");
        assert_eq!((r.log.as_str(), r.stream.as_str()), ("hi\n", "stderr"));
        assert_eq!(r.time, "2026-11-22T00:00:00.000001000Z");
        let bytes =
            br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","PRIORITY":"6","MESSAGE":[104,105]}"#;
        assert_eq!(parse_entry(bytes).unwrap().0.log, "hi\n");
        assert!(parse_entry(b"not json").is_none());
    }

    #[test]
    fn field_keys_are_journal_safe() {
        assert_eq!(field_key("com.example-x"), "COM_EXAMPLE_X");
        assert_eq!(field_key("_a"), "A");
    }
}
