//! `burrow push NAME[:TAG]`: an image from containerd to its registry.

use std::process::ExitCode;

use crate::commands::images::with_store;
use crate::commands::pull::platform_arg;
use burrow::connection::Globals;
use burrow::images::{progress::Progress, push, reference::Reference};

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// The image name to push, e.g. 127.0.0.1:5000/app:v1.
    pub image: String,
    /// Platform to push when only some platforms of an index are here [default: this host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    /// Talk plain HTTP to this registry (always allowed for localhost and 127.0.0.1).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Directory of <host>/hosts.toml registry settings [default: as for pull].
    #[arg(long, value_name = "DIR")]
    pub hosts_dir: Vec<std::path::PathBuf>,
    /// Push every tag of the repository that is here (give the name without a tag).
    #[arg(short, long)]
    pub all_tags: bool,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    if args.all_tags && burrow::images::reference::names_tag_or_digest(&args.image) {
        anyhow::bail!(
            "tag can't be used with --all-tags/-a: give the repository's name alone (e.g. 127.0.0.1:5000/app)"
        );
    }
    let platform = platform_arg(args.platform.as_deref())?;
    let progress = Progress::new(args.quiet);
    let pushed = with_store(g, async |store| {
        let names = match args.all_tags {
            true => {
                let repo = Reference::parse(&args.image)?;
                let tags = push::repository_tags(store, &repo).await?;
                if tags.is_empty() {
                    anyhow::bail!(
                        "An image does not exist locally with the tag: {}",
                        repo.familiar_repository()
                    );
                }
                tags
            }
            false => vec![args.image.clone()],
        };
        let mut pushed = Vec::new();
        for name in &names {
            let p = push::push_name(
                store,
                name,
                &platform,
                args.insecure_registry,
                &args.hosts_dir,
                &progress,
            )
            .await?;
            pushed.push(p);
        }
        Ok(pushed)
    })?;
    for p in pushed {
        match args.quiet {
            true => println!("{}", p.digest),
            false => println!("{}: digest: {} size: {}", p.tag, p.digest, p.size),
        }
    }
    Ok(ExitCode::SUCCESS)
}
