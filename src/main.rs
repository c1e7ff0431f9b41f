//! The `burrow` command line: parses arguments and dispatches to one module per command.

mod cli;
mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
