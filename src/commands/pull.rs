//! `burrow pull`: an image from a registry into containerd, unpacked, with progress.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::connection::{self, Globals};
use crate::images::{
    self, auth, manifest::Platform, progress::Progress, pull, reference::Reference,
    registry::Registry,
};

#[derive(Debug, clap::Args)]
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
}

/// Parses `--platform` (default: this host).
pub fn platform_arg(p: Option<&str>) -> anyhow::Result<Platform> {
    match p {
        Some(p) => Platform::parse(p).map_err(anyhow::Error::msg),
        None => Ok(Platform::host()),
    }
}

/// A registry client for `host` with the user's stored credentials.
pub fn registry_for(host: &str, insecure: bool) -> anyhow::Result<Registry> {
    let path = auth::config_path()?;
    let creds = auth::lookup(&path, host)?;
    Ok(Registry::new(host, creds, insecure)?)
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    let opts = pull::PullOptions {
        platform: platform_arg(args.platform.as_deref())?,
        all_platforms: args.all_platforms,
        unpack: true,
    };
    let reg = Arc::new(registry_for(&reference.domain, args.insecure_registry)?);
    let ep = connection::resolve(g)?;
    let progress = Arc::new(Progress::new(args.quiet));
    let pulled = connection::runtime().block_on(async {
        let store = images::open_store(&ep).await?;
        pull::pull(&store, reg, &reference, &opts, progress.clone())
            .await
            .with_context(|| format!("pull {}", reference.familiar()))
    })?;
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
