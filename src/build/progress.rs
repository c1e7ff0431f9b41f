//! What a build says while it runs: BuildKit's plain lines on stderr (`#N [stage k/n] INSTR`,
//! the step's output prefixed `#N `, then `#N CACHED` or `#N DONE 1.2s`), or nothing (`-q`).

use std::io::Write;
use std::time::Instant;

/// How a build reports its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Quiet,
}

/// The step counter and where its lines go.
pub struct Progress {
    mode: Mode,
    next: usize,
    started: Option<Instant>,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            next: 1,
            started: None,
        }
    }

    fn line(&self, text: &str) {
        if self.mode == Mode::Plain {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// A new step; returns its number.
    pub fn step(&mut self, title: &str) -> usize {
        let n = self.next;
        self.next += 1;
        self.started = Some(Instant::now());
        self.line(&format!("#{n} {title}"));
        n
    }

    pub fn cached(&self, n: usize) {
        self.line(&format!("#{n} CACHED"));
    }

    pub fn done(&self, n: usize) {
        let secs = self
            .started
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        self.line(&format!("#{n} DONE {secs:.1}s"));
    }

    /// A note of the step (a pull, the image written).
    pub fn note(&self, n: usize, text: &str) {
        self.line(&format!("#{n} {text}"));
    }

    /// The output of step `n`'s command, line by line.
    pub fn output(&self, n: usize, data: &[u8]) {
        if self.mode != Mode::Plain {
            return;
        }
        let text = String::from_utf8_lossy(data);
        let mut err = std::io::stderr().lock();
        for l in text.lines() {
            let _ = writeln!(err, "#{n} {l}");
        }
    }
}
