//! `burrow pull`: an image from a registry into containerd, unpacked, with progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use burrow::connection::{self, Globals};
pub use burrow::images::endpoints::{pull_any, registries_for, tags_any};
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
    /// Pull every tagged image of the repository (the registry's tags list).
    #[arg(short, long)]
    pub all_tags: bool,
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
    p.map(platform_arg_of)
        .unwrap_or_else(|| Ok(Platform::host()))
}

/// A `--platform` value.
pub fn platform_arg_of(p: &str) -> anyhow::Result<Platform> {
    Platform::parse(p).map_err(anyhow::Error::msg)
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.image)?;
    if args.all_tags && burrow::images::reference::names_tag_or_digest(&args.image) {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let opts = pull::PullOptions {
        platform: platform_arg(args.platform.as_deref())?,
        strict_platform: args.platform.is_some(),
        all_platforms: args.all_platforms,
        unpack: true,
    };
    let regs = || {
        registries_for(
            &reference.domain,
            args.insecure_registry,
            false,
            &args.hosts_dir,
        )
    };
    let ep = connection::resolve(g)?;
    let progress = Arc::new(Progress::new(args.quiet));
    let (pulled, squashed) = connection::runtime().block_on(async {
        let store = images::open_store(&ep).await?;
        let refs = match args.all_tags {
            true => tagged(&regs()?, &reference).await?,
            false => vec![reference.clone()],
        };
        let mut pulled = Vec::new();
        for r in &refs {
            let p = pull_any(&store, regs()?, r, &opts, progress.clone()).await?;
            if !args.quiet && args.all_tags {
                println!("Digest: {}", p.digest);
            }
            pulled.push(p);
        }
        anyhow::Ok((pulled, store.squashed_owners))
    })?;
    let downloaded = pulled.iter().any(|p| p.downloaded > 0);
    if squashed && downloaded {
        eprintln!("{}", images::SQUASHED_OWNERS_NOTE);
    }
    let status = if pulled.iter().any(|p| p.updated) {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    match (args.all_tags, pulled.first()) {
        (true, _) => {
            if !args.quiet {
                println!("Status: {status} {}", reference.familiar_repository());
            }
            println!("{}", reference.repository());
        }
        (false, Some(p)) => {
            if !args.quiet {
                println!("Digest: {}", p.digest);
                println!("Status: {status} {}", reference.familiar());
            }
            println!("{}", p.name);
        }
        (false, None) => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a reference as typed names a tag or digest (not only a repository).
/// `reference`'s repository at each tag the registry lists.
async fn tagged(
    regs: &[burrow::images::registry::Registry],
    reference: &Reference,
) -> anyhow::Result<Vec<Reference>> {
    let tags = tags_any(regs, reference).await?;
    if tags.is_empty() {
        anyhow::bail!(
            "{} has no tags in its registry",
            reference.familiar_repository()
        );
    }
    Ok(tags
        .into_iter()
        .map(|t| Reference {
            tag: Some(t),
            digest: None,
            ..reference.clone()
        })
        .collect())
}
