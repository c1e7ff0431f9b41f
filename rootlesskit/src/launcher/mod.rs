//! The launcher itself: flags, the parent and child stages and what they set up.

mod child;
pub mod cli;
mod exec;
mod idmap;
mod mounts;
pub mod netconf;
mod parent;
mod pidns;
mod slirp;
mod state;
mod sync;
mod sys;

/// `burrow-rootlesskit`'s main: the parent stage, or the child stage when re-executed by it.
pub fn main() -> std::process::ExitCode {
    let flags = cli::Flags::parse_go_args(std::env::args_os().collect());
    let filter = if flags.debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
    let code = match std::env::var(sync::CHILD_ENV).ok() {
        Some(v) => match sync::child_channel(&v) {
            Some(chan) => child::run(flags, chan),
            None => {
                eprintln!(
                    "burrow-rootlesskit: error: {} is set but invalid; unset it",
                    sync::CHILD_ENV
                );
                1
            }
        },
        None => match parent::run(flags) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("burrow-rootlesskit: error: {e:#}");
                1
            }
        },
    };
    std::process::ExitCode::from(code.clamp(0, 255) as u8)
}
