//! `burrow version`: the client's version.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    println!("burrow {}", env!("CARGO_PKG_VERSION"));
    Ok(ExitCode::SUCCESS)
}
