//! One module per `burrow` command, each with an `Args` struct and a `run()`.

pub mod build;
pub mod completion;
pub mod compose;
pub mod container;
pub mod df;
pub mod error;
pub mod events;
pub mod flags;
pub mod history;
pub mod image;
pub mod image_prune;
pub mod images;
pub mod import;
pub mod info;
pub mod internal;
pub mod load;
pub mod login;
pub mod manifest;
pub mod network;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod save;
pub mod search;
pub mod service;
pub mod setup;
pub mod srun;
pub mod system;
pub mod tag;
pub mod version;
pub mod volume;

/// Asks "are you sure" before a prune removes `what`, as Docker does; true to go on. `force`
/// skips the question; without a terminal to ask on, the command is refused with how to proceed.
pub fn confirm(command: &str, what: &str, force: bool) -> anyhow::Result<bool> {
    use std::io::{BufRead, IsTerminal};
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "{command} asks for confirmation, and stdin is not a terminal: pass -f/--force"
        );
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Logs to stderr: warnings, or everything with --debug.
pub fn init_logging(debug: bool) {
    // A plain level filter: building an EnvFilter costs more than some whole commands take.
    let level = if debug {
        tracing::Level::DEBUG
    } else {
        tracing::Level::WARN
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
