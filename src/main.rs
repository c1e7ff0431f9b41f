//! The `burrow` command line: parses arguments and dispatches to one module per command.

mod cli;
mod commands;
// The spec builder lands before the run/create commands that use it.
#[allow(dead_code)]
mod containers;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
