//! `burrow pull`: an image from a registry into containerd, unpacked, with progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use burrow::connection::{self, Globals};
pub use burrow::images::endpoints::{pull_any, registries_for};
use burrow::images::{self, manifest::Platform, progress::Progress, pull, reference::Reference};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Image to pull, e.g. busybox, busybox:1.36, registry:5000/app@sha256:...
    pub image: String,
    /// Platform to pull from a multi-platform image [default: this host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Pull the content of every platform (the host's is unpacked).
    #[arg(long)]
    pub all_platforms: bool,
    /// Print only the image name when done.
    #[arg(short, long)]
    pub quiet: bool,
    /// Talk plain HTTP to this registry (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Directory of <host>/hosts.toml registry settings (mirrors, server, CA) [default:
    /// ~/.config/containerd/certs.d rootless, /etc/containerd/certs.d, /etc/docker/certs.d].
    #[arg(long, value_name = "DIR")]
    pub hosts_dir: Vec<PathBuf>,
}

/// Parses `--platform` (default: this host).
pub fn platform_arg(p: Option<&str>) -> anyhow::Result<Platform> {
    match p {
        Some(p) => Platform::parse(p).map_err(anyhow::Error::msg),
        None => Ok(Platform::host()),
    }
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    let opts = pull::PullOptions {
        platform: platform_arg(args.platform.as_deref())?,
        strict_platform: args.platform.is_some(),
        all_platforms: args.all_platforms,
        unpack: true,
    };
    let regs = registries_for(
        &reference.domain,
        args.insecure_registry,
        false,
        &args.hosts_dir,
    )?;
    let ep = connection::resolve(g)?;
    let progress = Arc::new(Progress::new(args.quiet));
    let (pulled, squashed) = connection::runtime().block_on(async {
        let store = images::open_store(&ep).await?;
        let pulled = pull_any(&store, regs, &reference, &opts, progress.clone()).await?;
        anyhow::Ok((pulled, store.squashed_owners))
    })?;
    if squashed && pulled.downloaded > 0 {
        eprintln!("{}", images::SQUASHED_OWNERS_NOTE);
    }
    if !args.quiet {
        println!("Digest: {}", pulled.digest);
        let status = if pulled.downloaded > 0 {
            "Downloaded newer image for"
        } else {
            "Image is up to date for"
        };
        println!("Status: {status} {}", reference.familiar());
    }
    println!("{}", pulled.name);
    Ok(ExitCode::SUCCESS)
}
