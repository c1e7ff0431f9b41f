//! A process's stdio as FIFOs the shim opens (stdin, stdout, stderr) in a private dir: creating
//! them, copying them to and from the user's endpoints, and sending stdin's end once the shim
//! has read everything.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::stat::Mode;

use super::pump::{self, Event, Events, InputEnd, Running};
use super::{Endpoints, Options, SessionError, Target};
use crate::containers::lifecycle::Stdio;

/// Where the FIFOs of a container's process go, in the container's state dir `container_dir`:
/// `fifo` for its task, `fifo-EXEC_ID` for an exec.
pub fn dir(container_dir: &Path, exec_id: &str) -> PathBuf {
    if exec_id.is_empty() {
        container_dir.join("fifo")
    } else {
        container_dir.join(format!("fifo-{exec_id}"))
    }
}

/// Whether `path` is the FIFO dir of exec `exec_id` (so its cleanup may remove it).
pub fn is_exec_dir(path: &Path, exec_id: &str) -> bool {
    !exec_id.is_empty()
        && path
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == format!("fifo-{exec_id}"))
}

/// Creates the FIFOs of a process's stdio under `dir` (made private): stdout, stderr unless
/// `tty` (a terminal has one output stream), stdin with `stdin`.
pub fn create(dir: &Path, stdin: bool, tty: bool) -> Result<Stdio, SessionError> {
    crate::containers::store::private_dir(dir)?;
    let mk = |name: &str| -> Result<String, SessionError> {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(|source| {
            SessionError::Fifo {
                path: path.clone(),
                source,
            }
        })?;
        Ok(path.display().to_string())
    };
    Ok(Stdio {
        stdin: if stdin { mk("stdin")? } else { String::new() },
        stdout: mk("stdout")?,
        stderr: if tty { String::new() } else { mk("stderr")? },
        terminal: tty,
    })
}

/// The FIFOs of an attached process and our end of its stdin.
#[derive(Debug)]
pub(crate) struct Fifos {
    dir: PathBuf,
    pub(crate) stdio: Stdio,
    /// Our end of the stdin FIFO once forwarding stopped, kept open until we are done: a FIFO's
    /// buffered bytes are dropped when nobody has it open.
    stdin_keep: Arc<Mutex<Option<File>>>,
    /// A background reader took the FIFOs over: the dir (with its attach socket) stays.
    handed_over: bool,
}

impl Fifos {
    /// Creates the FIFOs under `dir` and starts copying: the output to the endpoints' writers
    /// (and the log), with `opts.stdin` the endpoints' input to the process until it ends or
    /// the detach keys are typed.
    pub(crate) fn open(
        dir: &Path,
        opts: Options,
        ends: Endpoints,
        events: Events,
        running: &Running,
    ) -> Result<Fifos, SessionError> {
        let stdio = create(dir, opts.stdin, opts.tty)?;
        output(&stdio.stdout, false, ends.stdout, &opts, running);
        if !stdio.stderr.is_empty() {
            output(&stdio.stderr, true, ends.stderr, &opts, running);
        }
        let stdin_keep: Arc<Mutex<Option<File>>> = Arc::default();
        if !stdio.stdin.is_empty() {
            // Read-write so the open does not wait for the shim; closing it is the process's EOF.
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(0)
                .open(&stdio.stdin)
                .map_err(|source| SessionError::OpenFifo {
                    path: PathBuf::from(&stdio.stdin),
                    source,
                })?;
            let keep = stdin_keep.clone();
            let (mut input, keys) = (ends.input, opts.detach_keys);
            std::thread::spawn(move || {
                let end = pump::forward_input(&mut input, &mut f, keys);
                if let Ok(mut k) = keep.lock() {
                    *k = Some(f);
                }
                // Detached: the process's stdin stays open (not closed).
                let _ = events.send(match end {
                    InputEnd::Detached => Event::Detached,
                    InputEnd::Eof | InputEnd::SinkClosed => Event::InputEnded,
                });
            });
        }
        Ok(Fifos {
            dir: dir.to_path_buf(),
            stdio,
            stdin_keep,
            handed_over: false,
        })
    }

    /// A background reader holds the FIFOs now and serves the attach socket beside them: they
    /// stay when the session ends (the reader's follow-up or the next start removes them).
    pub(crate) fn hand_over(&mut self) {
        self.handed_over = true;
    }

    /// How long the output may take to drain after the process exited (the shim may still be
    /// writing).
    pub(crate) fn drain_limit(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// The user's input ended: sends it on to the process (containerd's CloseIO) once the shim
    /// has read what we wrote, in the background until the returned task is aborted.
    pub(crate) fn close_stdin(&self, target: &Target) -> tokio::task::JoinHandle<()> {
        let keep = self.stdin_keep.clone();
        let target = target.clone();
        tokio::spawn(async move {
            // Wait until the shim has read everything the CLI wrote.
            loop {
                let left = keep
                    .lock()
                    .ok()
                    .and_then(|k| k.as_ref().and_then(super::sys::pending))
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
            target.close_stdin().await;
        })
    }
}

impl Drop for Fifos {
    fn drop(&mut self) {
        if !self.handed_over {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Copies the output FIFO `path` into `sink` (and the log) in a thread; the open waits for
/// the shim to open the write end.
fn output(
    path: &str,
    to_stderr: bool,
    mut sink: Box<dyn std::io::Write + Send>,
    opts: &Options,
    running: &Running,
) {
    let path = PathBuf::from(path);
    let log = opts.log.clone();
    let running = running.clone();
    running.begin();
    std::thread::spawn(move || {
        if let Ok(mut f) = File::open(&path) {
            pump::copy_output(&mut f, to_stderr, &mut sink, log.as_deref());
        }
        if let Some(l) = &log {
            l.finish(to_stderr);
        }
        running.end();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_of_the_task_and_of_execs() {
        let c = Path::new("/run/c/abc");
        assert_eq!(dir(c, ""), c.join("fifo"));
        assert_eq!(dir(c, "exec-1"), c.join("fifo-exec-1"));
        assert!(is_exec_dir(&dir(c, "exec-1"), "exec-1"));
        assert!(!is_exec_dir(&dir(c, ""), ""));
        assert!(!is_exec_dir(Path::new("/"), "exec-1"));
    }

    #[test]
    fn fifos_for_a_terminal_and_without() {
        let tmp = tempfile::tempdir().unwrap();
        let with = create(&tmp.path().join("a"), true, false).unwrap();
        assert!(!with.stdin.is_empty() && !with.stderr.is_empty() && !with.terminal);
        let tty = create(&tmp.path().join("b"), false, true).unwrap();
        assert!(tty.stdin.is_empty() && tty.stderr.is_empty() && tty.terminal);
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::metadata(&tty.stdout).unwrap();
        assert!(meta.file_type().is_fifo());
    }
}
