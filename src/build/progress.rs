//! What a build says while it runs, on stderr: BuildKit's plain lines (`#N [stage k/n] INSTR`,
//! the step's output prefixed `#N `, then `#N CACHED` or `#N DONE 1.2s`), a live view on a
//! terminal (every step with its state and time, the running step's last output lines under
//! it, redrawn in place), or nothing (`-q`); and, for callers that show steps their own way
//! (the Docker API's `/build` stream), the same steps as [`Event`]s handed to a [`Sink`].

use std::io::Write;
use std::time::Instant;

/// How a build reports its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// The live view (a terminal).
    Tty,
    Quiet,
}

/// A step's progress as a caller of the builder sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Step `n` begins: `text` is the instruction as written (or what the step does);
    /// `of` is (stage, k, total) for the stage's steps ("[stage k/total]").
    Step {
        n: usize,
        text: String,
        of: Option<(String, usize, usize)>,
    },
    /// Output of step `n`'s command.
    Output { n: usize, data: Vec<u8> },
    /// Step `n` was taken from the cache.
    Cached { n: usize },
    /// Step `n` ran and is over.
    Done { n: usize, secs: f64 },
    /// A note of step `n` (the image written, its names).
    Note { n: usize, text: String },
}

/// Where a build's [`Event`]s go (besides the mode's lines).
#[derive(Clone)]
pub struct Sink(pub std::sync::Arc<dyn Fn(Event) + Send + Sync>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// How many output lines of the running step the live view shows.
const TAIL_LINES: usize = 6;

/// A step as the live view shows it.
struct Row {
    n: usize,
    title: String,
    started: Instant,
    /// None while it runs; "CACHED" or "DONE 1.2s" once over.
    end: Option<String>,
    tail: Vec<String>,
}

/// The step counter and where its lines go.
pub struct Progress {
    mode: Mode,
    next: usize,
    started: Option<Instant>,
    rows: Vec<Row>,
    /// Lines the live view drew last time (to move back over them).
    drawn: usize,
    sink: Option<Sink>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            next: 1,
            started: None,
            rows: Vec::new(),
            drawn: 0,
            sink: None,
        }
    }

    /// Also hands every step's events to `sink`.
    pub fn with_sink(mut self, sink: Option<Sink>) -> Progress {
        self.sink = sink;
        self
    }

    fn emit(&self, e: Event) {
        if let Some(s) = &self.sink {
            (s.0)(e);
        }
    }

    /// A step of a stage, shown "[stage k/total] text"; returns its number.
    pub fn stage_step(&mut self, stage: &str, k: usize, total: usize, text: &str) -> usize {
        self.begin(
            &format!("[{stage} {k}/{total}] {text}"),
            text,
            Some((stage.to_string(), k, total)),
        )
    }

    fn line(&self, text: &str) {
        if self.mode == Mode::Plain {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// A new step; returns its number.
    pub fn step(&mut self, title: &str) -> usize {
        self.begin(title, title, None)
    }

    fn begin(&mut self, title: &str, text: &str, of: Option<(String, usize, usize)>) -> usize {
        let n = self.next;
        self.emit(Event::Step {
            n,
            text: text.to_string(),
            of,
        });
        self.next += 1;
        self.started = Some(Instant::now());
        self.line(&format!("#{n} {title}"));
        self.rows.push(Row {
            n,
            title: title.to_string(),
            started: Instant::now(),
            end: None,
            tail: Vec::new(),
        });
        self.redraw();
        n
    }

    pub fn cached(&mut self, n: usize) {
        self.emit(Event::Cached { n });
        self.line(&format!("#{n} CACHED"));
        self.end(n, "CACHED".into());
    }

    pub fn done(&mut self, n: usize) {
        let secs = self
            .started
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        self.emit(Event::Done { n, secs });
        self.line(&format!("#{n} DONE {secs:.1}s"));
        self.end(n, format!("DONE {secs:.1}s"));
    }

    fn end(&mut self, n: usize, text: String) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.n == n) {
            r.end = Some(text);
            r.tail.clear();
        }
        self.redraw();
    }

    /// A note of the step (the image written, its names).
    pub fn note(&mut self, n: usize, text: &str) {
        self.emit(Event::Note {
            n,
            text: text.to_string(),
        });
        self.line(&format!("#{n} {text}"));
        self.tail(n, text);
        self.redraw();
    }

    /// The output of step `n`'s command, line by line.
    pub fn output(&mut self, n: usize, data: &[u8]) {
        self.emit(Event::Output {
            n,
            data: data.to_vec(),
        });
        let text = String::from_utf8_lossy(data).into_owned();
        if self.mode == Mode::Plain {
            let mut err = std::io::stderr().lock();
            for l in text.lines() {
                let _ = writeln!(err, "#{n} {l}");
            }
        }
        for l in text.lines() {
            self.tail(n, l);
        }
        self.redraw();
    }

    fn tail(&mut self, n: usize, line: &str) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.n == n) {
            r.tail.push(line.to_string());
            let extra = r.tail.len().saturating_sub(TAIL_LINES);
            r.tail.drain(..extra);
        }
    }

    /// Draws the live view again over the last one.
    fn redraw(&mut self) {
        if self.mode != Mode::Tty {
            return;
        }
        let width = terminal_width();
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A\r\x1b[J", self.drawn));
        }
        let mut lines = 0;
        for r in &self.rows {
            let state = match &r.end {
                Some(e) => e.clone(),
                None => format!("{:.1}s", r.started.elapsed().as_secs_f64()),
            };
            let mark = if r.end.is_some() { "=>" } else { "=> ..." };
            out.push_str(&fit(
                &format!("{mark} #{} {}  {state}", r.n, r.title),
                width,
            ));
            out.push('\n');
            lines += 1;
            for t in &r.tail {
                out.push_str(&fit(&format!("   {t}"), width));
                out.push('\n');
                lines += 1;
            }
        }
        self.drawn = lines;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }
}

/// `text` cut to `width` characters (a line must not wrap, or the redraw goes wrong).
fn fit(text: &str, width: usize) -> String {
    text.chars().take(width.saturating_sub(1).max(20)).collect()
}

/// The terminal's width (its stdin's, as the CLI sees it), else $COLUMNS, else 80.
fn terminal_width() -> usize {
    crate::session::terminal::size()
        .map(|(_, cols)| cols as usize)
        .filter(|c| *c > 0)
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_rows_keep_the_last_output_lines() {
        let mut p = Progress::new(Mode::Quiet);
        let n = p.step("[s 2/3] RUN make");
        p.output(n, b"1\n2\n3\n4\n5\n6\n7\n8\n");
        assert_eq!(p.rows[0].tail, ["3", "4", "5", "6", "7", "8"]);
        p.done(n);
        assert!(p.rows[0].tail.is_empty());
        assert!(p.rows[0].end.as_deref().unwrap().starts_with("DONE"));
        assert_eq!(fit("abcdef", 4).len(), 6);
    }

    #[test]
    fn events_go_to_the_sink() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let sink = Sink(std::sync::Arc::new(move |e| s.lock().unwrap().push(e)));
        let mut p = Progress::new(Mode::Quiet).with_sink(Some(sink));
        let n = p.stage_step("s", 2, 3, "RUN make");
        p.output(n, b"hi\n");
        p.cached(n);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0],
            Event::Step {
                n: 1,
                text: "RUN make".into(),
                of: Some(("s".into(), 2, 3))
            }
        );
        assert_eq!(
            seen[1],
            Event::Output {
                n: 1,
                data: b"hi\n".to_vec()
            }
        );
        assert_eq!(seen[2], Event::Cached { n: 1 });
    }
}
