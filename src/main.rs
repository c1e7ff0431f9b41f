//! The `burrow` command line: parses arguments and dispatches to one module per command.

mod cli;
mod commands;
mod config;
// The connection API is used by commands landing from several engineers.
#[allow(dead_code)]
mod connection;
// The spec builder lands before the run/create commands that use it.
#[allow(dead_code)]
mod containers;
mod images;
// Networks (CNI configs, the OCI hook) are used by the container commands.
#[allow(dead_code)]
mod network;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
