//! `burrow compose`: the project flags every compose command shares (-f, -p,
//! --project-directory, --env-file, --profile) and one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use burrow::compose::{LoadOptions, Project};
use burrow::connection::Globals;

pub mod config;
pub mod version;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: ProjectFlags,
    #[command(subcommand)]
    pub command: Command,
}

// The flags before the subcommand (`burrow compose -f a.yaml -p demo up`); a plain comment,
// since a doc comment here would become `burrow compose --help`'s summary.
#[derive(Debug, clap::Args)]
pub struct ProjectFlags {
    /// Compose file(s), merged in order ("-" reads stdin) [default: compose.yaml,
    /// docker-compose.yml, ... and its .override. file; or COMPOSE_FILE, ":"-separated].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
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
    match args.command {
        Command::Config(a) => config::run(a, &args.project),
        Command::Version(a) => version::run(a),
    }
}

impl ProjectFlags {
    /// The loader's options: these flags, with COMPOSE_FILE when no -f is given.
    pub fn options(&self) -> LoadOptions {
        let files = if self.files.is_empty() {
            std::env::var("COMPOSE_FILE")
                .map(|v| {
                    v.split(':')
                        .filter(|f| !f.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.files.clone()
        };
        LoadOptions {
            files,
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            env_files: self.env_file.clone(),
            profiles: self.profile.clone(),
        }
    }

    /// Loads the project and prints its warnings to stderr.
    pub fn load(&self) -> anyhow::Result<Project> {
        let project = Project::load(&self.options())?;
        for w in &project.warnings {
            eprintln!("WARN: {w}");
        }
        Ok(project)
    }
}
