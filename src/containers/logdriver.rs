//! burrow as containerd's `binary://` log driver (as nerdctl is): the shim starts
//! `burrow _BURROW_INTERNAL_LOGGING DATA_ROOT` with the container's stdout on fd 3, stderr on
//! fd 4 and a ready pipe on fd 5, and CONTAINER_ID/CONTAINER_NAMESPACE set; every line becomes
//! a Docker json-file record in `DATA_ROOT/containers/NS/ID/ID-json.log` (with the `attrs` the
//! `--log-opt`s chose), or with `--log-driver journald` a journal entry ([`super::journald`]).
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::journald::{self, Journal};
use super::logopts::JOURNAL_SOCKET;
use super::store::Store;
use crate::images::time::rfc3339_nano;

/// One json-file record, as Docker writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub log: String,
    pub stream: String,
    /// The extra attributes `--log-opt labels=/env=...` selected (Docker's `attrs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    pub time: String,
}

impl Record {
    /// A record of `line` on `stream` ("stdout" or "stderr"), timed now.
    pub fn stamped(stream: &str, line: &[u8]) -> Record {
        Record {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: stream.to_string(),
            attrs: BTreeMap::new(),
            time: rfc3339_nano(std::time::SystemTime::now()),
        }
    }

    /// The record as one line of the json-file log, newline included.
    pub fn json_line(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The records in json-file log text (unparsable lines are skipped).
pub fn parse_lines(text: &[u8]) -> Vec<Record> {
    text.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

pub use super::logopts::{opts_path, parse_opts, Driver, LogOpts};

/// The rotated files of a log (`.N`, or `.N.gz` when compressed), oldest first, then the
/// current one.
pub fn files(log: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    for i in 1..=1000u32 {
        let p = PathBuf::from(format!("{}.{i}", log.display()));
        let gz = PathBuf::from(format!("{}.{i}.gz", log.display()));
        let p = match (p.exists(), gz.exists()) {
            (true, _) => p,
            (false, true) => gz,
            (false, false) => break,
        };
        rotated.push((i, p));
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut v: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    v.push(log.to_path_buf());
    v
}

/// The `binary://` stdio URI that makes the shim run this binary as the log driver.
pub fn uri(exe: &Path, data_root: &Path) -> String {
    format!(
        "binary://{}?{}={}",
        exe.display(),
        crate::selfexec::LOG_DRIVER_ARG,
        percent_encode(&data_root.display().to_string())
    )
}

/// The stdio URI for container `id`'s task: the log driver, or none (`--log-driver none`:
/// the shim discards the output).
pub fn stdio_uri(store: &Store, id: &str) -> anyhow::Result<String> {
    if LogOpts::load(&store.log_path(id)).driver == Driver::None {
        return Ok(String::new());
    }
    let exe = std::env::current_exe().context("finding the burrow binary for logging")?;
    Ok(uri(&exe, store.root()))
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

fn inherited(fd: i32) -> Option<OwnedFd> {
    if !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
        return None;
    }
    // SAFETY: the shim passed fds 3-5 to this process for it to own; each is taken once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The log file being written, rotated by size.
pub(crate) struct Sink {
    path: PathBuf,
    file: File,
    size: u64,
    opts: LogOpts,
}

impl Sink {
    pub(crate) fn open(path: PathBuf, opts: LogOpts) -> std::io::Result<Sink> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Sink {
            path,
            file,
            size,
            opts,
        })
    }

    /// Writes `line` of `stream` as a record stamped now, with the options' attributes.
    pub(crate) fn record(&mut self, stream: &str, line: &[u8]) -> std::io::Result<()> {
        let mut rec = Record::stamped(stream, line);
        rec.attrs = self.opts.attrs.clone();
        self.write(rec.json_line().as_bytes())
    }

    pub(crate) fn write(&mut self, text: &[u8]) -> std::io::Result<()> {
        let n = text.len() as u64;
        if self.opts.max_size > 0 && self.size > 0 && self.size + n > self.opts.max_size {
            self.rotate()?;
        }
        self.file.write_all(text)?;
        self.size += n;
        Ok(())
    }

    /// ID-json.log → .1 → .2 ...; the oldest beyond max-file goes (max-file 1: a new empty file).
    /// With compress, the rotated files are `.1.gz`, `.2.gz` ..., as Docker names them.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.opts.max_file.max(1);
        let gz = if self.opts.compress { ".gz" } else { "" };
        let name = |i: u32| PathBuf::from(format!("{}.{i}{gz}", self.path.display()));
        if keep > 1 {
            let _ = std::fs::remove_file(name(keep - 1));
            for i in (1..keep - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            if self.opts.compress {
                compress(&self.path, &name(1))?;
            } else {
                std::fs::rename(&self.path, name(1))?;
            }
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        } else {
            // A new file put in place, not the old one truncated, so that a reader following
            // the log (`logs -f`) sees a new inode instead of the same file rewritten.
            let fresh = PathBuf::from(format!("{}.new", self.path.display()));
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&fresh)?;
            std::fs::rename(&fresh, &self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// `from` gzip-compressed into `to` (written aside, then renamed into place), then removed.
fn compress(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", to.display()));
    {
        let mut input = std::io::BufReader::new(File::open(from)?);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        std::io::copy(&mut input, &mut gz)?;
        gz.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)
}

/// Where a container's lines go: its json-file log, or the journal.
pub(crate) enum Output {
    File(Box<Sink>),
    Journal(Journal),
}

impl Output {
    /// The output `opts` choose for container `id` whose log is `path` (none for
    /// `--log-driver none`).
    pub(crate) fn open(path: PathBuf, opts: LogOpts, id: &str) -> anyhow::Result<Option<Output>> {
        Ok(match opts.driver {
            Driver::None => None,
            Driver::Journald => {
                let fields = journald::container_fields(
                    id,
                    &opts.name,
                    &opts.image,
                    opts.tag.as_deref(),
                    &opts.attrs,
                );
                Some(Output::Journal(Journal::connect(
                    Path::new(JOURNAL_SOCKET),
                    fields,
                )?))
            }
            Driver::JsonFile | Driver::Local => Some(Output::File(Box::new(
                Sink::open(path.clone(), opts)
                    .with_context(|| format!("opening the log file {}", path.display()))?,
            ))),
        })
    }

    /// Writes one line of `stream` (failures are dropped: the container must not block).
    fn record(&mut self, stream: &str, line: &[u8]) {
        match self {
            Output::File(s) => {
                let _ = s.record(stream, line);
            }
            Output::Journal(j) => {
                if let Err(err) = j.send(stream, line) {
                    tracing::debug!(%err, "journal entry dropped");
                }
            }
        }
    }
}

/// How long the end of a line may wait for its newline before it is logged as it is.
const PARTIAL_WAIT_MS: u16 = 100;

/// Copies one stream to the log, a record per line. The shim keeps the pipe's write end open
/// until the task is deleted, so a last line without a newline (`printf done`) would wait for
/// an end that may never come: what is left once nothing has followed for a moment is logged
/// as a partial record (its next part, when it comes, is the next record; `logs` joins them,
/// as with Docker's partial messages).
fn copy(src: OwnedFd, stream: &'static str, out: Arc<Mutex<Option<Output>>>) {
    let mut file = File::from(src);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let emit = |bytes: &[u8]| {
        if let Ok(Some(f)) = out.lock().as_deref_mut() {
            f.record(stream, bytes);
        }
    };
    loop {
        if !pending.is_empty() && !readable_within(&file, PARTIAL_WAIT_MS) {
            emit(&pending);
            pending.clear();
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    emit(&line);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        emit(&pending);
    }
}

/// Whether `f` has something to read within `ms` milliseconds (or its end).
fn readable_within(f: &File, ms: u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// The json-file log the CLI writes itself while a container runs attached (its output then
/// goes to the terminal through FIFOs, not through the shim's log driver), so `logs` shows it
/// afterwards as Docker's does.
pub struct AttachLog {
    /// None with `--log-driver none`: nothing is kept.
    sink: Option<Mutex<Output>>,
    /// Each stream's bytes after its last newline (stdout, stderr).
    partial: Mutex<[Vec<u8>; 2]>,
}

impl AttachLog {
    /// Opens (appends to) container `id`'s log with the options it was created with.
    pub fn open(store: &Store, id: &str) -> std::io::Result<Arc<AttachLog>> {
        let path = store.log_path(id);
        if let Some(parent) = path.parent() {
            super::store::private_dir(parent).map_err(std::io::Error::other)?;
        }
        let opts = LogOpts::load(&path);
        let sink = Output::open(path, opts, id)
            .map_err(std::io::Error::other)?
            .map(Mutex::new);
        Ok(Arc::new(AttachLog {
            sink,
            partial: Mutex::default(),
        }))
    }

    /// Logs the complete lines of `bytes` (the rest waits for its newline).
    pub fn feed(&self, stderr: bool, bytes: &[u8]) {
        let Ok(mut partial) = self.partial.lock() else {
            return;
        };
        let buf = &mut partial[usize::from(stderr)];
        buf.extend_from_slice(bytes);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            self.record(stderr, &line);
        }
    }

    /// Logs what is left of a stream without a final newline (at its end).
    pub fn finish(&self, stderr: bool) {
        let rest = match self.partial.lock() {
            Ok(mut p) => std::mem::take(&mut p[usize::from(stderr)]),
            Err(_) => return,
        };
        if !rest.is_empty() {
            self.record(stderr, &rest);
        }
    }

    fn record(&self, stderr: bool, line: &[u8]) {
        let stream = if stderr { "stderr" } else { "stdout" };
        if let Some(Ok(mut f)) = self.sink.as_ref().map(|s| s.lock()) {
            f.record(stream, line);
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
    let opts = LogOpts::load(&path);
    // None (`--log-driver none`, which normally never starts the driver): read and drop.
    let sink = Output::open(path.clone(), opts, &id)?;
    // The shim starts the driver with each new task, including those containerd's restart
    // monitor makes for `--restart always`, which no burrow command sees: the start time of
    // `ps` and `inspect` comes from here for them (burrow's own starts record it again).
    store.record_start(&id);
    // The shim closes the pipes' write ends and sends SIGTERM at once when the task ends: what
    // is still in the pipes (a last line without its newline, for one) must reach the log, so
    // SIGTERM waits, blocked, until both streams are read to their end (the shim kills the
    // driver after 12 s if it never gets there). Blocked before the copy threads inherit it.
    let mut term = nix::sys::signal::SigSet::empty();
    term.add(nix::sys::signal::Signal::SIGTERM);
    if let Err(err) = term.thread_block() {
        tracing::debug!(%err, "blocking SIGTERM in the log driver");
    }
    let out = Arc::new(Mutex::new(sink));
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

/// Reads the records of one json-file log (unparsable lines are skipped).
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = if path.extension().is_some_and(|e| e == "gz") {
        std::fs::File::open(path).and_then(|f| {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(std::io::BufReader::new(f)).read_to_end(&mut text)?;
            Ok(text)
        })
    } else {
        std::fs::read(path)
    };
    match text {
        Ok(text) => Ok(parse_lines(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rotation_keeps_max_file_files_and_reads_them_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let mut s = Sink::open(
            log.clone(),
            LogOpts {
                max_size: 100,
                max_file: 3,
                ..Default::default()
            },
        )
        .unwrap();
        for i in 0..30 {
            let rec = Record::stamped("stdout", format!("line {i:02}\n").as_bytes());
            s.write(rec.json_line().as_bytes()).unwrap();
        }
        let fs = files(&log);
        assert_eq!(fs.len(), 3, "{fs:?}");
        for f in &fs {
            assert!(
                std::fs::metadata(f).unwrap().len() <= 100,
                "{}",
                f.display()
            );
        }
        // Oldest file first, the current one last (as `logs` reads them).
        let mut all = Vec::new();
        for f in fs.iter().filter(|p| **p != log) {
            all.extend(read(f).unwrap());
        }
        all.extend(read(&log).unwrap());
        assert_eq!(all.last().unwrap().log, "line 29\n");
        let nums: Vec<String> = all.iter().map(|r| r.log.clone()).collect();
        let mut sorted = nums.clone();
        sorted.sort();
        assert_eq!(nums, sorted, "records out of order");
        assert!(all.len() < 30, "nothing was dropped");
    }

    #[test]
    fn compressed_rotations_are_gzip_files_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let opts = super::parse_opts(
            "json-file",
            &[
                "max-size=200".into(),
                "max-file=3".into(),
                "compress=true".into(),
            ],
        )
        .unwrap();
        let mut s = Sink::open(log.clone(), opts).unwrap();
        for i in 0..20 {
            let rec = Record::stamped("stdout", format!("line {i:02}\n").as_bytes());
            s.write(rec.json_line().as_bytes()).unwrap();
        }
        let fs = files(&log);
        let names: Vec<String> = fs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["c-json.log.2.gz", "c-json.log.1.gz", "c-json.log"]);
        let head = std::fs::read(&fs[0]).unwrap();
        assert_eq!(&head[..2], &[0x1f, 0x8b], "gzip");
        let all: Vec<String> = fs
            .iter()
            .flat_map(|f| read(f).unwrap())
            .map(|r| r.log)
            .collect();
        assert_eq!(all.last().unwrap(), "line 19\n");
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "records out of order");
        assert!(super::parse_opts("json-file", &["compress=true".into()]).is_err());
        assert!(super::parse_opts("json-file", &["compress=maybe".into()]).is_err());
        assert!(
            super::parse_opts("local", &[]).unwrap().compress,
            "local compresses"
        );
        assert!(
            !super::parse_opts("local", &["compress=false".into()])
                .unwrap()
                .compress
        );
    }

    #[test]
    fn tags_render_docker_template_fields() {
        let o = super::parse_opts(
            "json-file",
            &["tag={{.ImageName}}/{{.Name}}/{{.ID}}".into()],
        )
        .unwrap()
        .with_tag(
            "0123456789abcdef",
            "web",
            "docker.io/library/busybox:latest",
            "sha256:feedface0000111",
        )
        .unwrap();
        assert_eq!(o.attrs["tag"], "busybox:latest/web/0123456789ab");
        let e = super::parse_opts("json-file", &["tag={{.Name".into()]).unwrap_err();
        assert!(e.to_string().contains("not a template"), "{e}");
        assert!(super::parse_opts("local", &["tag=x".into()]).is_err());
    }

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
