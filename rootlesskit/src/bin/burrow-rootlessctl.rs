//! burrow-rootlessctl: a client of the launcher's REST API with RootlessKit's `rootlessctl` syntax
//! and output (`info`, `list-ports`, `add-ports`, `remove-ports`, `--json`).

use burrow_rootlesskit::api::ctl::{self, Cli};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    let filter = if cli.debug { "debug" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = ctl::run(cli) {
        eprintln!("burrow-rootlessctl: {e:#}");
        std::process::exit(1);
    }
}
