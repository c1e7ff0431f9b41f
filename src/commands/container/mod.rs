//! The container commands (run, create, start, ps, logs, stop, kill, rm, wait, inspect, port,
//! ...) and what their output shares: Docker's durations and STATUS words. The records they
//! work on are the library's (`burrow::containers::{record, Ctx}`).

pub mod attach;
pub mod commit;
pub mod cp;
pub mod detach;
pub mod devices;
pub mod diff;
pub mod exec;
pub mod export;
pub mod group;
pub mod health;
pub mod inspect;
pub mod logs;
pub mod manage;
pub mod netflags;
pub mod orphan;
pub mod ps;
pub mod run;
pub mod runflags;
pub mod stats;
pub mod userns;

use std::process::ExitCode;

use burrow::connection;
pub use burrow::containers::record::*;
pub use burrow::containers::Ctx;

/// Runs an async command body on the CLI's runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    connection::runtime().block_on(f)
}

pub use burrow::containers::status::{ago, status_text};
