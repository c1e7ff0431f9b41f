//! Attaching the CLI to a container's stdio through FIFOs the shim opens (stdin, stdout,
//! stderr), and Docker's exit codes for a process that could not be started.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::stat::Mode;

use burrow::containers::lifecycle::Stdio;
use burrow::containers::logdriver::AttachLog;

/// FIFOs in a private dir and the threads copying them to and from the terminal.
pub struct Attached {
    dir: PathBuf,
    pub stdio: Stdio,
    running: Arc<AtomicUsize>,
    stdin_closed: Arc<std::sync::atomic::AtomicBool>,
    /// Our end of the stdin FIFO, kept open until we are done: a FIFO's buffered bytes are
    /// dropped when nobody has it open.
    stdin_keep: Arc<std::sync::Mutex<Option<File>>>,
    /// Told when the detach key sequence was typed.
    detach: Arc<tokio::sync::Notify>,
}

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses Docker's `--detach-keys` syntax: comma-separated keys, each a single character or
/// `ctrl-X` with X one of a-z, @, [, \, ], ^ and _.
pub fn parse_detach_keys(spec: &str) -> anyhow::Result<Vec<u8>> {
    let bad = |k: &str| {
        anyhow::anyhow!(
            "invalid --detach-keys {spec:?} at {k:?}: use comma-separated keys, each one character \
             or ctrl-X with X in a-z, @, [, \\, ], ^, _ (e.g. ctrl-p,ctrl-q)"
        )
    };
    let mut out = Vec::new();
    for k in spec.split(',') {
        let b = k.as_bytes();
        match b {
            [c] => out.push(*c),
            [b'c', b't', b'r', b'l', b'-', c] => match c.to_ascii_lowercase() {
                c @ b'a'..=b'z' => out.push(c - b'a' + 1),
                b'@' => out.push(0),
                c @ (b'[' | b'\\' | b']' | b'^' | b'_') => out.push(c - b'@'),
                _ => return Err(bad(k)),
            },
            _ => return Err(bad(k)),
        }
    }
    Ok(out)
}

/// Scans forwarded input for the detach sequence, holding back a partial match until it is
/// either completed or broken.
struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    /// Appends to `out` what may be forwarded of `input`; true when the sequence completed (the
    /// rest of `input` is dropped, as Docker does).
    fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

fn reader(path: PathBuf, to_stderr: bool, running: Arc<AtomicUsize>, log: Option<Arc<AttachLog>>) {
    running.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        // Blocks until the shim opens the write end.
        if let Ok(mut f) = File::open(&path) {
            let mut buf = [0u8; 8192];
            loop {
                match f.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(l) = &log {
                            l.feed(to_stderr, &buf[..n]);
                        }
                        let res = if to_stderr {
                            let mut e = std::io::stderr().lock();
                            e.write_all(&buf[..n]).and_then(|_| e.flush())
                        } else {
                            let mut o = std::io::stdout().lock();
                            o.write_all(&buf[..n]).and_then(|_| o.flush())
                        };
                        if res.is_err() && log.is_none() {
                            break;
                        }
                    }
                }
            }
        }
        if let Some(l) = &log {
            l.finish(to_stderr);
        }
        running.fetch_sub(1, Ordering::SeqCst);
    });
}

/// Creates the FIFOs of a container's stdio under `dir` (a private dir) for a background reader:
/// stdout, stderr unless `tty`, stdin with `stdin`.
pub fn make_fifos(dir: &Path, stdin: bool, tty: bool) -> anyhow::Result<Stdio> {
    burrow::containers::store::private_dir(dir)?;
    let mk = |name: &str| -> anyhow::Result<String> {
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600))
            .with_context(|| format!("creating the FIFO {}", p.display()))?;
        Ok(p.display().to_string())
    };
    Ok(Stdio {
        stdin: if stdin { mk("stdin")? } else { String::new() },
        stdout: mk("stdout")?,
        stderr: if tty { String::new() } else { mk("stderr")? },
        terminal: tty,
    })
}

/// How forwarding the CLI's stdin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEnd {
    /// The CLI's stdin ended (or failed).
    Eof,
    /// The detach keys were typed.
    Detached,
    /// The other side stopped taking input.
    SinkClosed,
}

/// Copies the CLI's stdin into `sink`, holding back the detach `keys` (none: no detaching).
pub fn forward_stdin(sink: &mut impl Write, keys: Vec<u8>) -> InputEnd {
    let mut scanner = DetachScanner::new(keys);
    let mut buf = [0u8; 8192];
    let mut fwd = Vec::with_capacity(8192);
    let mut input = std::io::stdin().lock();
    loop {
        match input.read(&mut buf) {
            Ok(0) | Err(_) => return InputEnd::Eof,
            Ok(n) => {
                fwd.clear();
                let detached = scanner.scan(&buf[..n], &mut fwd);
                if sink.write_all(&fwd).and_then(|()| sink.flush()).is_err() {
                    return InputEnd::SinkClosed;
                }
                if detached {
                    return InputEnd::Detached;
                }
            }
        }
    }
}

impl Attached {
    /// Creates the FIFOs under `dir` and starts copying. With a terminal everything comes on
    /// stdout; with `stdin` the CLI's stdin is forwarded until it ends. With `log` the output
    /// also goes to the container's json-file log (a container's main process; not exec).
    /// `detach_keys` (with `stdin`): typing them detaches the CLI, see [`Attached::detached`].
    pub fn new(
        dir: &Path,
        stdin: bool,
        tty: bool,
        log: Option<Arc<AttachLog>>,
        detach_keys: Option<Vec<u8>>,
    ) -> anyhow::Result<Attached> {
        let stdio = make_fifos(dir, stdin, tty)?;
        let running = Arc::new(AtomicUsize::new(0));
        reader(
            PathBuf::from(&stdio.stdout),
            false,
            running.clone(),
            log.clone(),
        );
        if !stdio.stderr.is_empty() {
            reader(PathBuf::from(&stdio.stderr), true, running.clone(), log);
        }
        let stdin_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let closed = stdin_closed.clone();
        let stdin_keep: Arc<std::sync::Mutex<Option<File>>> = Arc::default();
        let keep = stdin_keep.clone();
        let detach = Arc::new(tokio::sync::Notify::new());
        let detach_tx = detach.clone();
        if !stdio.stdin.is_empty() {
            // Read-write so the open does not wait for the shim; closing it is the container's EOF.
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(0)
                .open(&stdio.stdin)
                .with_context(|| format!("opening the FIFO {}", stdio.stdin))?;
            std::thread::spawn(move || {
                let end = forward_stdin(&mut f, detach_keys.unwrap_or_default());
                if let Ok(mut k) = keep.lock() {
                    *k = Some(f);
                }
                if end == InputEnd::Detached {
                    // Detached: the container's stdin stays open (not closed).
                    detach_tx.notify_one();
                } else {
                    closed.store(true, Ordering::SeqCst);
                }
            });
        }
        Ok(Attached {
            dir: dir.to_path_buf(),
            stdio,
            running,
            stdin_closed,
            stdin_keep,
            detach,
        })
    }

    /// Resolves when the detach keys were typed (never, without stdin or keys).
    pub async fn detached(&self) {
        self.detach.notified().await;
    }

    /// Forwards the end of the CLI's stdin to the process (containerd's CloseIO), in the
    /// background until the returned task is aborted.
    pub fn close_stdin_on_eof(
        &self,
        client: burrow::containers::lifecycle::Client,
        id: String,
        exec_id: String,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.stdio.stdin.is_empty() {
            return None;
        }
        let closed = self.stdin_closed.clone();
        let keep = self.stdin_keep.clone();
        Some(tokio::spawn(async move {
            while !closed.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Wait until the shim has read everything the CLI wrote.
            loop {
                let left = keep
                    .lock()
                    .ok()
                    .and_then(|k| k.as_ref().and_then(super::fionread::pending))
                    .unwrap_or(0);
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Every writer must be gone for the reader to see EOF: ours, then the shim's.
            if let Ok(mut k) = keep.lock() {
                k.take();
            }
            if let Err(err) = client.close_stdin(&id, &exec_id).await {
                tracing::debug!(%err, "closing stdin");
            }
        }))
    }

    /// Waits (boundedly) until the output copies have drained.
    pub fn drain(&self, limit: Duration) {
        let start = Instant::now();
        while self.running.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Docker's exit code for a container that could not be started: 127 when the command does
/// not exist, 126 when it cannot be executed, else 125.
pub fn start_failure_code(message: &str) -> u8 {
    let m = message.to_ascii_lowercase();
    let exec = m.contains("exec:") || m.contains("starting container process");
    if m.contains("executable file not found") || (exec && m.contains("no such file or directory"))
    {
        127
    } else if exec && (m.contains("permission denied") || m.contains("exec format error")) {
        126
    } else {
        125
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_as_docker() {
        assert_eq!(
            parse_detach_keys(DEFAULT_DETACH_KEYS).unwrap(),
            [0x10, 0x11]
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,a,ctrl-[").unwrap(),
            [0, b'a', 0x1b]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        let mut s = DetachScanner {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        let mut out = Vec::new();
        // A ctrl-p not followed by ctrl-q is forwarded, late, with what broke the match.
        assert!(!s.scan(b"ls\x10", &mut out));
        assert_eq!(out, b"ls");
        assert!(!s.scan(b"x\x10\x10", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
        assert!(s.scan(b"\x11rest", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
    }

    #[test]
    fn exit_codes_as_docker() {
        assert_eq!(
            start_failure_code(
                r#"OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH: unknown"#
            ),
            127
        );
        assert_eq!(
            start_failure_code(
                r#"unable to start container process: exec: "/etc": permission denied"#
            ),
            126
        );
        assert_eq!(
            start_failure_code(
                r#"unable to start container process: exec: "/x": stat /x: no such file or directory"#
            ),
            127
        );
        assert_eq!(
            start_failure_code("failed to mount: no such file or directory"),
            125
        );
    }
}
