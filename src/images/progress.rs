//! Transfer progress: live per-layer bars on a terminal (indicatif), Docker-style lines
//! ("abc123def456: Pull complete") otherwise, nothing with -q.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::manifest::short_id;

/// One step of a transfer, for a caller that reports progress its own way (the Docker API's
/// JSON progress stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line of its own ("Pulling from ...").
    Line(String),
    /// A transfer of `total` bytes begins for the layer with this short id (at `at` when
    /// resumed).
    Start { id: String, total: u64, at: u64 },
    /// `n` more bytes arrived.
    Advance { id: String, n: u64 },
    /// The transfer ended: "Pull complete", "Already exists", ...
    Done { id: String, status: String },
}

/// Where progress goes.
pub enum Progress {
    Quiet,
    Plain,
    /// Each step to this function.
    Events(Box<dyn Fn(Event) + Send + Sync>),
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
}

impl Progress {
    /// Bars when stdout is a terminal, lines otherwise, nothing when quiet.
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Quiet
        } else if std::io::stdout().is_terminal() {
            Progress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Progress::Plain
        }
    }

    /// A line above the bars (or on its own).
    pub fn line(&self, s: &str) {
        match self {
            Progress::Quiet => {}
            Progress::Events(f) => f(Event::Line(s.to_owned())),
            Progress::Plain => println!("{s}"),
            Progress::Bars { multi, .. } => {
                let _ = multi.println(s);
            }
        }
    }

    /// A transfer of `total` bytes for `digest` begins (at `at` when resumed).
    pub fn start(&self, digest: &str, total: u64, at: u64) {
        let id = short_id(digest);
        match self {
            Progress::Quiet => {}
            Progress::Events(f) => f(Event::Start { id, total, at }),
            Progress::Plain => {
                if at > 0 {
                    println!("{id}: Resuming download at {at} of {total} bytes");
                }
            }
            Progress::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new(total));
                let style = ProgressStyle::with_template(
                    "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(id);
                bar.set_message("Downloading");
                bar.set_position(at);
                if let Ok(mut b) = bars.lock() {
                    b.insert(digest.to_owned(), bar);
                }
            }
        }
    }

    pub fn advance(&self, digest: &str, n: u64) {
        if let Progress::Events(f) = self {
            f(Event::Advance {
                id: short_id(digest),
                n,
            });
        }
        if let Progress::Bars { bars, .. } = self {
            if let Some(b) = bars.lock().ok().and_then(|b| b.get(digest).cloned()) {
                b.inc(n);
            }
        }
    }

    /// A transfer ended (or was not needed): "Pull complete", "Already exists", ...
    pub fn done(&self, digest: &str, status: &str) {
        let id = short_id(digest);
        match self {
            Progress::Quiet => {}
            Progress::Events(f) => f(Event::Done {
                id,
                status: status.to_owned(),
            }),
            Progress::Plain => println!("{id}: {status}"),
            Progress::Bars { multi, bars } => {
                let bar = bars.lock().ok().and_then(|mut b| b.remove(digest));
                match bar {
                    Some(b) => {
                        b.set_style(
                            ProgressStyle::with_template("{prefix}: {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        b.finish_with_message(status.to_owned());
                    }
                    None => {
                        let _ = multi.println(format!("{id}: {status}"));
                    }
                }
            }
        }
    }
}
