//! `burrow compose`: the global flags (-f, -p, --project-directory, --env-file, --profile)
//! and one file per subcommand; the work is the library's (`burrow::compose`).

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::compose::engine::state::{Member, ProjectState};
use burrow::compose::{LoadOptions, Project};
use burrow::connection::Globals;
use burrow::containers::Ctx;

pub mod build;
pub mod config;
pub mod down;
pub mod ls;
pub mod manage;
pub mod observe;
pub mod ps;
pub mod run;
pub mod up;
pub mod version;

// `burrow compose [OPTIONS] COMMAND` (a plain comment: a doc comment here would replace the
// summary `burrow compose --help` opens with).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Compose file(s), merged in order ("-" reads stdin) [default: compose.yaml,
    /// docker-compose.yml, ... and its .override. file; or COMPOSE_FILE, ":"-separated].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// Project name [default: COMPOSE_PROJECT_NAME, the file's name:, the directory's name].
    #[arg(short = 'p', long)]
    pub project_name: Option<String>,
    /// Directory that relative paths and .env are taken from [default: the first file's].
    #[arg(long, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Variables for interpolation, instead of the project's .env (repeatable).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Enable services of this profile (repeatable) [default: COMPOSE_PROFILES, ","-separated].
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create and start the project's containers.
    #[command(disable_version_flag = true)]
    Up(up::UpArgs),
    /// Build the images of services with `build:`.
    Build(build::Args),
    /// Create the project's containers without starting them.
    #[command(disable_version_flag = true)]
    Create(up::CreateArgs),
    /// Stop and remove the project's containers and networks (-v: volumes).
    Down(down::Args),
    /// List the project's containers.
    Ps(ps::Args),
    /// Show the output of the project's containers.
    Logs(ps::LogsArgs),
    /// List running Compose projects.
    Ls(ls::Args),
    /// Run a one-off command in a new container of a service.
    Run(run::Args),
    /// Run a command in a running container of a service.
    Exec(run::ExecArgs),
    /// Start the services' existing containers.
    Start(manage::Services),
    /// Stop the services' containers.
    Stop(manage::StopArgs),
    /// Restart the services' containers.
    Restart(manage::StopArgs),
    /// Send a signal to the services' containers.
    Kill(manage::KillArgs),
    /// Remove the services' stopped containers.
    Rm(manage::RmArgs),
    /// Pause the services' containers.
    Pause(manage::Services),
    /// Unpause the services' containers.
    Unpause(manage::Services),
    /// Wait for the services' containers to stop; print their exit codes.
    Wait(manage::Services),
    /// Show the processes of the services' containers.
    Top(manage::Services),
    /// Print the public port of a service's port.
    Port(manage::PortArgs),
    /// List the images of the project's containers.
    Images(manage::Services),
    /// Pull the services' images.
    Pull(manage::PullArgs),
    /// Push the services' images.
    Push(manage::Services),
    /// Copy files between a service container and the local filesystem.
    Cp(manage::CpArgs),
    /// Stream the project's container events.
    Events(observe::EventsArgs),
    /// Show the resource use of the project's containers.
    Stats(observe::StatsArgs),
    /// List the project's volumes.
    Volumes(observe::VolumesArgs),
    /// Start the services, then act on their develop.watch rules as files change.
    Watch(observe::WatchArgs),
    /// Attach to a service container's output (and input).
    Attach(manage::AttachArgs),
    /// Make an image of a service container's changes.
    Commit(manage::CommitArgs),
    /// Write a service container's filesystem as a tar archive.
    Export(manage::ExportArgs),
    /// Run this many containers of services (SERVICE=N ...).
    Scale(manage::ScaleArgs),
    /// Check the Compose files and print the normalised model.
    #[command(alias = "convert")]
    Config(config::Args),
    /// Show burrow compose's version.
    Version(version::Args),
}

/// Runs one compose subcommand.
pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = load_options(&args);
    // What needs no project (or loads it its own way) first.
    let command = match args.command {
        Command::Config(a) => return config::run(a, &opts),
        Command::Version(a) => return version::run(a),
        Command::Ls(a) => return ls::run(a, g),
        other => other,
    };
    let project = load(&opts)?;
    match command {
        Command::Up(a) => up::up(a, &project, g),
        Command::Create(a) => up::create(a, &project, g),
        Command::Build(a) => build::run(a, &project, g),
        Command::Down(a) => down::run(a, &project, g),
        Command::Ps(a) => ps::run(a, &project, g),
        Command::Logs(a) => ps::logs(a, &project, g),
        Command::Run(a) => run::run(a, &project, g),
        Command::Exec(a) => run::exec(a, &project, g),
        Command::Start(a) => manage::start(a, &project, g),
        Command::Stop(a) => manage::stop(a, &project, g),
        Command::Restart(a) => manage::restart(a, &project, g),
        Command::Kill(a) => manage::kill(a, &project, g),
        Command::Rm(a) => manage::rm(a, &project, g),
        Command::Pause(a) => manage::pause(a, &project, g, false),
        Command::Unpause(a) => manage::pause(a, &project, g, true),
        Command::Wait(a) => manage::wait(a, &project, g),
        Command::Top(a) => manage::top(a, &project, g),
        Command::Port(a) => manage::port(a, &project, g),
        Command::Images(a) => manage::images(a, &project, g),
        Command::Pull(a) => manage::pull(a, &project, g),
        Command::Push(a) => manage::push(a, &project, g),
        Command::Cp(a) => manage::cp(a, &project, g),
        Command::Events(a) => observe::events(a, &project, g),
        Command::Stats(a) => observe::stats(a, &project, g),
        Command::Volumes(a) => observe::volumes(a, &project, g),
        Command::Watch(a) => observe::watch(a, &project, g),
        Command::Attach(a) => manage::attach(a, &project, g),
        Command::Commit(a) => manage::commit(a, &project, g),
        Command::Export(a) => manage::export(a, &project, g),
        Command::Scale(a) => manage::scale(a, &project, g),
        Command::Config(_) | Command::Version(_) | Command::Ls(_) => unreachable!("handled above"),
    }
}

/// The loader's options: the flags, with COMPOSE_FILE when no -f is given.
pub fn load_options(args: &Args) -> LoadOptions {
    let files = if args.file.is_empty() {
        std::env::var("COMPOSE_FILE")
            .map(|v| {
                v.split(':')
                    .filter(|f| !f.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        args.file.clone()
    };
    LoadOptions {
        files,
        project_name: args.project_name.clone(),
        project_directory: args.project_directory.clone(),
        env_files: args.env_file.clone(),
        profiles: args.profile.clone(),
    }
}

/// Loads the project and prints its warnings to stderr.
pub fn load(opts: &LoadOptions) -> anyhow::Result<Project> {
    let project = Project::load(opts)?;
    for w in &project.warnings {
        eprintln!("burrow: warning: {w}");
    }
    Ok(project)
}

/// Prints a progress line of the engine on stderr, as Docker Compose does.
pub fn report(line: String) {
    match line.strip_prefix("warning: ") {
        Some(w) => eprintln!("burrow: warning: {w}"),
        None => eprintln!(" {line}"),
    }
}

/// The project's containers of these services (all when empty), checked to be services.
pub async fn members(
    ctx: &Ctx,
    project: &Project,
    services: &[String],
    oneoff: bool,
) -> anyhow::Result<Vec<Member>> {
    for s in services {
        if !project.compose.services.keys().any(|k| k.as_str() == s) {
            return Err(burrow::compose::ComposeError::NoService(s.clone()).into());
        }
    }
    let state = ProjectState::read(ctx, &project.name).await?;
    Ok(state
        .selected(services, oneoff)
        .into_iter()
        .cloned()
        .collect())
}

/// The name of container `index` of `service` (running or not).
pub fn container_of(
    g: &Globals,
    project: &Project,
    service: &str,
    index: u32,
) -> anyhow::Result<String> {
    burrow::connection::runtime().block_on(async {
        let ctx = Ctx::connect(g).await?;
        let all = members(&ctx, project, &[service.to_string()], false).await?;
        all.into_iter()
            .find(|m| m.number == index)
            .map(|m| m.name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "service {service} has no container {index}: run `burrow compose up -d {service}` first"
                )
            })
    })
}
