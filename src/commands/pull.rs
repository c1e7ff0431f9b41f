//! `burrow pull`: an image from a registry into containerd, unpacked, with progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use burrow::connection::{self, Globals, UserEnv};
use burrow::images::{
    self, auth, hosts, manifest::Platform, progress::Progress, pull, reference::Reference,
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

/// Registry clients for `host`, in the order to try them: the mirrors and server of a
/// certs.d/<host>/hosts.toml when there is one (only push-capable ones for `push`), else the
/// registry itself; each with the user's stored credentials for its host.
pub fn registries_for(
    host: &str,
    insecure: bool,
    push: bool,
    hosts_dirs: &[PathBuf],
) -> anyhow::Result<Vec<Registry>> {
    let path = auth::config_path()?;
    let own = auth::lookup(&path, host)?;
    let env = UserEnv::current();
    let dirs = if hosts_dirs.is_empty() {
        hosts::search_dirs(env.euid, env.config_home.as_deref())
    } else {
        hosts_dirs.to_vec()
    };
    match hosts::find(host, &dirs)? {
        Some(h) if !insecure => {
            tracing::debug!(file = %h.path.display(), "registry hosts");
            let lookup = |h: &str| {
                if h == host {
                    own.clone()
                } else {
                    auth::lookup(&path, h).ok().flatten()
                }
            };
            let regs = hosts::clients(host, &h, push, &lookup)?;
            if regs.is_empty() {
                anyhow::bail!(
                    "{} lists no endpoint that can {} {host}",
                    h.path.display(),
                    if push { "push to" } else { "pull from" }
                );
            }
            Ok(regs)
        }
        _ => Ok(vec![Registry::new(host, own, insecure)?]),
    }
}

/// The first pull endpoint for `host` (prefer [`registries_for`] + [`pull_any`], which fall back
/// to the next mirror).
pub fn registry_for(host: &str, insecure: bool) -> anyhow::Result<Registry> {
    Ok(registries_for(host, insecure, false, &[])?.remove(0))
}

/// Pulls from the first endpoint that works; registry failures move on to the next one.
pub async fn pull_any(
    store: &burrow::images::store::Store,
    regs: Vec<Registry>,
    reference: &Reference,
    opts: &pull::PullOptions,
    progress: Arc<Progress>,
) -> anyhow::Result<pull::Pulled> {
    let count = regs.len();
    for (i, reg) in regs.into_iter().enumerate() {
        let origin = reg.origin();
        match pull::pull(store, Arc::new(reg), reference, opts, progress.clone()).await {
            Err(pull::PullError::Registry(e)) if i + 1 < count => {
                tracing::warn!("{origin}: {e}; trying the next endpoint");
            }
            other => {
                return other.with_context(|| format!("pull {}", reference.familiar()));
            }
        }
    }
    anyhow::bail!(
        "pull {}: no registry endpoint to pull from",
        reference.familiar()
    )
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    let opts = pull::PullOptions {
        platform: platform_arg(args.platform.as_deref())?,
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
