//! `burrow setup ...`: provision, inspect and remove the per-user rootless containerd.

use std::process::ExitCode;

use crate::connection::Globals;

#[derive(Debug, clap::Subcommand)]
pub enum Command {}

pub fn run(cmd: Command, _g: &Globals) -> anyhow::Result<ExitCode> {
    match cmd {}
}
