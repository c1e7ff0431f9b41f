//! `burrow setup uninstall`: stops and removes the rootless containerd service; images stay unless --purge.

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::connection::Globals;
use burrow::setup::uninstall::{self, UninstallOptions};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Also delete images, containers, volumes and network state (containerd's data dir, burrow's
    /// state and CNI allocations).
    #[arg(long)]
    pub purge: bool,
    /// The RootlessKit-compatible launcher used to delete data owned by subordinate ids (--purge).
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = UninstallOptions {
        purge: args.purge,
        launcher: args.launcher,
    };
    let done = uninstall::uninstall(g, &opts)?;
    if done.changes.is_empty() {
        println!("nothing to uninstall: no rootless containerd set up by burrow");
    }
    for change in &done.changes {
        println!("{change}");
    }
    if !done.kept.is_empty() {
        println!(
            "kept images and containers' data in {} (burrow setup uninstall --purge deletes them)",
            done.kept
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
