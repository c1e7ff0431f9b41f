//! `burrow setup child` (hidden): runs inside the launcher, binds the user's dirs over containerd's paths, execs containerd.

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::setup::child::{self, ChildConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// containerd's data (bound over /var/lib/containerd).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// containerd's config file; its directory is bound over /etc/containerd.
    #[arg(long, value_name = "FILE")]
    pub containerd_config: PathBuf,
    /// containerd's runtime state and socket (bound over /run/containerd).
    #[arg(long, value_name = "DIR")]
    pub run_dir: PathBuf,
    /// CNI's IP allocations (bound over /var/lib/cni).
    #[arg(long, value_name = "DIR")]
    pub cni_dir: PathBuf,
    /// The OCI runtime containerd's shim runs: runc, or crun (offered to the shim as `runc`).
    #[arg(long, default_value = "runc", value_parser = ["runc", "crun"])]
    pub runtime: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = ChildConfig {
        data_dir: args.data_dir,
        containerd_config: args.containerd_config,
        run_dir: args.run_dir,
        cni_dir: args.cni_dir,
        runtime: args.runtime,
    };
    match child::exec_containerd(&config)? {}
}
