//! The copying threads of a session: a process's output into the user's writers (and the
//! container's log), and the user's input into the process, watching for the detach keys.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::keys::{DetachKeys, Scanner};
use crate::containers::logdriver::AttachLog;

/// What the copying threads tell the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The detach keys were typed.
    Detached,
    /// The user's input ended (or the process stopped taking it).
    InputEnded,
    /// The process's output ended (the attach socket closed).
    OutputEnded,
}

pub(crate) type Events = tokio::sync::mpsc::UnboundedSender<Event>;

/// How many output copies still run, to wait for them to drain.
#[derive(Debug, Clone, Default)]
pub(crate) struct Running(Arc<AtomicUsize>);

impl Running {
    /// Counts a copy that is about to start; [`Running::end`] when it is done.
    pub(crate) fn begin(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn end(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits (at most `limit`) until every copy is done.
    pub(crate) async fn drained(&self, limit: Duration) {
        let start = Instant::now();
        while self.0.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Copies one output stream of the process into `sink` and, when given, the log (`to_stderr`
/// says which stream), until the stream ends. A sink that fails ends the copy unless the log
/// still wants the output.
pub(crate) fn copy_output(
    source: &mut impl Read,
    to_stderr: bool,
    sink: &mut dyn Write,
    log: Option<&AttachLog>,
) {
    let mut buf = [0u8; 8192];
    loop {
        match source.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(l) = log {
                    l.feed(to_stderr, &buf[..n]);
                }
                let res = sink.write_all(&buf[..n]).and_then(|()| sink.flush());
                if res.is_err() && log.is_none() {
                    break;
                }
            }
        }
    }
}

/// How forwarding the user's input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputEnd {
    /// The input ended (or failed).
    Eof,
    /// The detach keys were typed.
    Detached,
    /// The process's side stopped taking input.
    SinkClosed,
}

/// Copies `input` into `sink`, holding back the detach `keys` (none: no detaching).
pub(crate) fn forward_input(
    input: &mut dyn Read,
    sink: &mut impl Write,
    keys: Option<DetachKeys>,
) -> InputEnd {
    let mut scanner = Scanner::new(keys);
    let mut buf = [0u8; 8192];
    let mut fwd = Vec::with_capacity(8192);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_stops_at_the_detach_keys() {
        let keys = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        let mut input: &[u8] = b"echo hi\n\x10\x11after";
        let mut sink = Vec::new();
        assert_eq!(
            forward_input(&mut input, &mut sink, Some(keys)),
            InputEnd::Detached
        );
        assert_eq!(sink, b"echo hi\n");
        let mut input: &[u8] = b"all of it";
        let mut sink = Vec::new();
        assert_eq!(forward_input(&mut input, &mut sink, None), InputEnd::Eof);
        assert_eq!(sink, b"all of it");
    }

    #[test]
    fn output_goes_on_to_the_log_when_the_sink_fails() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut source: &[u8] = b"out";
        let mut sink = Vec::new();
        copy_output(&mut source, false, &mut sink, None);
        assert_eq!(sink, b"out");
        // Without a log a failed sink stops the copy; the rest stays unread.
        let mut source = std::io::Cursor::new(vec![b'x'; 20000]);
        copy_output(&mut source, false, &mut Closed, None);
        assert_eq!(source.position(), 8192);
    }
}
