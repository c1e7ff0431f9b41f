//! `burrow push NAME[:TAG]`: an image from containerd to its registry.

use std::process::ExitCode;

use anyhow::Context;

use crate::commands::images::with_store;
use crate::commands::pull::{platform_arg, registries_for};
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

/// Pushes `name` as `burrow push NAME` does (`build --push`); `quiet`: no output at all.
pub fn push_one(name: &str, quiet: bool, g: &Globals) -> anyhow::Result<()> {
    let args = Args {
        image: name.to_string(),
        platform: None,
        quiet,
        insecure_registry: false,
        hosts_dir: Vec::new(),
    };
    let pushed = push_with(&args, g)?;
    if !quiet {
        println!(
            "{}: digest: {} size: {}",
            pushed.tag, pushed.digest, pushed.size
        );
    }
    Ok(())
}

fn push_with(args: &Args, g: &Globals) -> anyhow::Result<push::Pushed> {
    let reference = Reference::parse(&args.image)?;
    let platform = platform_arg(args.platform.as_deref())?;
    let reg = registries_for(
        &reference.domain,
        args.insecure_registry,
        true,
        &args.hosts_dir,
    )?
    .remove(0);
    let progress = Progress::new(args.quiet);
    let pushed = with_store(g, async |store| {
        push::push(store, &reg, &reference, &platform, &progress)
            .await
            .with_context(|| format!("push {}", reference.familiar()))
    })?;
    Ok(pushed)
}
