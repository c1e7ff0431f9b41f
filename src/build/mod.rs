//! `burrow build`: a Dockerfile built on containerd without BuildKit — parsed ([`crate::dockerfile`]),
//! split into stages ([`stages`]), each step run ([`engine`]): RUN in a container like `burrow
//! run`'s ([`runstep`]), COPY/ADD written as layers directly ([`copy`], [`files`]), the rest applied
//! to the image config; results cached as image records ([`cache`]); the context filtered by
//! `.dockerignore` ([`ignore`]); progress in BuildKit's plain form ([`progress`]); stopped by
//! Ctrl-C or its caller ([`cancel`]).

pub mod cache;
pub mod cancel;
pub mod contexts;
pub mod copy;
pub mod downloads;
pub mod engine;
pub mod fetch;
pub mod files;
pub mod ignore;
pub mod mounts;
pub mod progress;
pub mod runstep;
pub mod stages;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use engine::build;

/// Where the build context comes from.
#[derive(Debug, Clone)]
pub enum ContextSource {
    /// A directory.
    Dir(PathBuf),
    /// A tar archive (plain or gzip), e.g. read from stdin.
    Tar(Vec<u8>),
    /// A tar archive (plain or gzip) in a file (the Docker API's request body, spooled).
    TarFile(PathBuf),
    /// A Git repository (`URL#REF:SUBDIR`) checked out, or an HTTP(S) URL downloaded: a tar
    /// archive is the context, a text file the Dockerfile (with an empty context), as Docker
    /// reads remote contexts.
    Remote(String),
}

impl ContextSource {
    /// A context argument that names a remote context (a Git repository or an HTTP(S) URL).
    pub fn remote(arg: &str) -> Option<ContextSource> {
        (fetch::is_git(arg) || fetch::is_url(arg)).then(|| ContextSource::Remote(arg.to_string()))
    }
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
pub enum DockerfileSource {
    /// A path: relative ones are in the context (default `Dockerfile`).
    Path(PathBuf),
    /// The text itself (`-f -`).
    Text(String),
}

/// What to build and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub context: ContextSource,
    pub dockerfile: DockerfileSource,
    /// Names to tag the result with (already valid references).
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when they are here.
    pub pull: bool,
    /// Labels added to the final image.
    pub labels: BTreeMap<String, String>,
    /// The network mode of RUN containers (`none`, `host`, or the default network).
    pub network: String,
    pub progress: progress::Mode,
    /// Write the result somewhere instead of naming it in the image store (`-o`).
    pub output: Option<Output>,
    /// Also hand the steps' events here (the Docker API's stream).
    pub events: Option<progress::Sink>,
    /// What stops the build (Ctrl-C by default).
    pub cancel: cancel::Cancel,
    /// Credentials for pulling base images, by registry host (else `burrow login`'s).
    pub pull_auth: PullAuth,
    /// Secrets RUN steps may mount (`--secret`).
    pub secrets: mounts::Secrets,
    /// `--ssh`: agents RUN --mount=type=ssh reaches.
    pub ssh: mounts::SshAgents,
    /// Push the image under each of `tags` to its registry once built (`--push`).
    pub push: bool,
    /// What RUN containers get (`--add-host`, `--shm-size`, `--ulimit`).
    pub run: runstep::RunSettings,
    /// Named contexts (`--build-context`).
    pub contexts: contexts::NamedContexts,
}

/// Where `-o` writes a build's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The image as one tar that is an OCI layout and a docker-archive (`type=oci|docker`).
    Archive(PathBuf),
    /// The final stage's files, into a directory (`type=local`, BuildKit's).
    Local(PathBuf),
    /// The final stage's files as one tar (`type=tar`).
    Tar(PathBuf),
}

/// Credentials for pulling base images by registry host (the Docker API's
/// `X-Registry-Config`); a host not named uses `burrow login`'s.
#[derive(Clone, Default)]
pub struct PullAuth(pub BTreeMap<String, crate::images::auth::Credentials>);

impl std::fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image id (config digest).
    pub id: String,
    /// The record names it was written under.
    pub names: Vec<String>,
    /// Build args given but never declared by an ARG.
    pub unused_args: Vec<String>,
    /// What `push` pushed, one per tag.
    pub pushed: Vec<crate::images::push::Pushed>,
}

/// A build that failed at a step: the Dockerfile line and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] crate::dockerfile::file::ParseError),
    /// A context archive that could not be read (not a tar, or compressed in a way not read).
    #[error("{0:#}")]
    Context(anyhow::Error),
    #[error("Dockerfile line {line}: {instruction}: {err}")]
    Copy {
        line: usize,
        instruction: String,
        err: copy::CopyError,
    },
    #[error("Dockerfile line {line}: {instruction}: the command exited with code {code}{}", output_tail(.output))]
    Run {
        line: usize,
        instruction: String,
        code: u32,
        output: String,
    },
    #[error("Dockerfile line {line}: {instruction}: {message}")]
    Refused {
        line: usize,
        instruction: String,
        message: String,
    },
    #[error("Dockerfile line {line}: {instruction}: {err:#}")]
    Step {
        line: usize,
        instruction: String,
        err: anyhow::Error,
    },
}

/// The end of a failed command's output, for the error message.
fn output_tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    if lines.is_empty() {
        return " (no output)".into();
    }
    let from = lines.len().saturating_sub(20);
    format!("; its output:\n{}", lines[from..].join("\n"))
}
