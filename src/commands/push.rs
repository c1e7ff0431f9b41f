//! `burrow push NAME[:TAG]`: an image from containerd to its registry.

use std::process::ExitCode;

use crate::commands::images::with_store;
use crate::commands::pull::platform_arg;
use burrow::connection::Globals;
use burrow::images::{progress::Progress, push};

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
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let pushed = push_with(&args, g)?;
    if args.quiet {
        println!("{}", pushed.digest);
    } else {
        println!(
            "{}: digest: {} size: {}",
            pushed.tag, pushed.digest, pushed.size
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn push_with(args: &Args, g: &Globals) -> anyhow::Result<push::Pushed> {
    let platform = platform_arg(args.platform.as_deref())?;
    let progress = Progress::new(args.quiet);
    with_store(g, async |store| {
        push::push_name(
            store,
            &args.image,
            &platform,
            args.insecure_registry,
            &args.hosts_dir,
            &progress,
        )
        .await
    })
}
