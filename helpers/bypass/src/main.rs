//! burrow-bypass: the per-user socket-bypass service runc hands containers' seccomp listeners to.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serves the seccomp listeners of containers run with `burrow run --bypass`: their connects to
/// the outside get host sockets, for native network speed. Started by
/// `burrow setup install --bypass`.
#[derive(Debug, Parser)]
#[command(name = "burrow-bypass", version)]
struct Args {
    /// The socket runc passes listeners to (the OCI spec's listenerPath)
    /// [default: $XDG_RUNTIME_DIR/burrow/bypass.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Log every bypassed connection.
    #[arg(long)]
    debug: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = if args.debug { "debug" } else { "info" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let Some(socket) = args.socket.or_else(burrow_bypass::service::default_socket) else {
        eprintln!("burrow-bypass: XDG_RUNTIME_DIR is not set: pass --socket PATH or export XDG_RUNTIME_DIR");
        return ExitCode::from(2);
    };
    match burrow_bypass::service::run(&socket) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("burrow-bypass: {e}");
            ExitCode::FAILURE
        }
    }
}
