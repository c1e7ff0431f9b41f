//! `burrow compose build`: flags to the engine's build [`Flags`]; every selected service with
//! `build:` built (the work is [`burrow::compose::engine::build`]'s).

use std::io::IsTerminal;
use std::process::ExitCode;

use burrow::build::progress::Mode;
use burrow::compose::engine::build::{self as engine, Flags, Policy};
use burrow::compose::engine::service::Service;
use burrow::compose::project::Project;
use burrow::connection::Globals;
use burrow::containers::Ctx;

#[derive(Debug, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct Args {
    /// Do not use the build cache: run every step.
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images even when they are here.
    #[arg(long)]
    pub pull: bool,
    /// Set a build-time variable for every service (KEY=VALUE, or KEY from the environment).
    #[arg(long, value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Push each built image to its registry (the service's image: name and build.tags).
    #[arg(long)]
    pub push: bool,
    /// Progress output: auto (tty on a terminal, else plain), plain, tty or quiet.
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Services (default: all with `build:`).
    pub services: Vec<String>,
}

pub fn run(args: Args, project: &Project, g: &Globals) -> anyhow::Result<ExitCode> {
    let flags = flags(&args)?;
    let mut services = Vec::new();
    for s in project.services_for(&args.services)? {
        if args.services.is_empty() || args.services.contains(&s) {
            services.push(Service::of(project, &s)?);
        }
    }
    // Every service's build: is checked before anything is built.
    for s in &services {
        engine::options(project, s, &flags)?;
    }
    let quiet = args.quiet;
    let report = move |line: String| {
        if !quiet {
            super::report(line)
        }
    };
    crate::commands::container::block_on(async move {
        let ctx = Ctx::connect(g).await?;
        engine::ensure(
            &ctx,
            project,
            &mut services,
            Policy::Always,
            &flags,
            &report,
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn flags(args: &Args) -> anyhow::Result<Flags> {
    let progress = match args.progress.as_str() {
        _ if args.quiet => Mode::Quiet,
        "auto" if std::io::stderr().is_terminal() => Mode::Tty,
        "auto" | "plain" => Mode::Plain,
        "tty" => Mode::Tty,
        "quiet" => Mode::Quiet,
        other => anyhow::bail!("--progress {other}: use auto, plain, tty or quiet"),
    };
    let mut build_args = std::collections::BTreeMap::new();
    for kv in &args.build_arg {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
            _ => anyhow::bail!("invalid --build-arg {kv:?}: give KEY=VALUE"),
        }
    }
    Ok(Flags {
        no_cache: args.no_cache,
        pull: args.pull,
        args: build_args,
        progress: Some(progress),
        push: args.push,
    })
}
