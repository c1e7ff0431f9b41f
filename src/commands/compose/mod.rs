//! `burrow compose`: the global flags (-f, -p, --project-directory, --env-file, --profile)
//! and one file per subcommand; the work is the library's (`burrow::compose`).

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::compose::{LoadOptions, Project};
use burrow::connection::Globals;

pub mod config;
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
    /// Check the Compose files and print the normalised model.
    #[command(alias = "convert")]
    Config(config::Args),
    /// Show burrow compose's version.
    Version(version::Args),
}

/// Runs one compose subcommand; `_g` is for the subcommands that reach containerd.
pub fn run(args: Args, _g: &Globals) -> anyhow::Result<ExitCode> {
    let opts = load_options(&args);
    match args.command {
        Command::Config(a) => config::run(a, &opts),
        Command::Version(a) => version::run(a),
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
