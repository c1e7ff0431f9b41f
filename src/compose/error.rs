//! The loader's one error type: every variant says which file, which key path and (where the
//! parser knows it) which line, and what to do.

use std::path::PathBuf;

/// A Compose file that cannot be loaded, or a request the project cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no Compose file found in {dir} (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml): create one or pass -f FILE")]
    NoFile { dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: invalid YAML: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// `files`: the file, or the merged files, that hold `key`.
    #[error("{files}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        files: String,
        line: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{path}: {key}: required variable {var} is missing a value: {message}")]
    Required {
        path: PathBuf,
        key: String,
        var: String,
        message: String,
    },
    #[error("{path}: {key}: invalid interpolation format in {value:?}: {message} (write $$ for a literal $)")]
    Interpolation {
        path: PathBuf,
        key: String,
        value: String,
        message: String,
    },
    #[error("{path} line {line}: {message}")]
    EnvFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: services.{service}.extends: {message}")]
    Extends {
        path: PathBuf,
        service: String,
        message: String,
    },
    #[error("no such service: {0} (see `burrow compose config --services`)")]
    NoService(String),
    #[error("service {service} depends on undefined service {dependency}")]
    UndefinedDependency { service: String, dependency: String },
    #[error("dependency cycle between services: {0}")]
    Cycle(String),
    #[error("invalid project name {0:?}: it must contain only a-z, 0-9, _ and -, and start with a letter or digit (pass -p NAME)")]
    ProjectName(String),
    // The engine's (branch compose-engine), kept here so both halves share one error type.
    #[error("{0}")]
    Load(String),
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    #[error("service {service}: dependency {dependency} {why}")]
    Dependency {
        service: String,
        dependency: String,
        why: String,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ComposeError {
    /// A [`ComposeError::Service`] for `service`.
    pub fn service(service: &str, message: impl Into<String>) -> ComposeError {
        ComposeError::Service {
            service: service.to_string(),
            message: message.into(),
        }
    }

    /// A YAML parse error of `path`, with the line serde_yaml knows.
    pub fn yaml(path: &std::path::Path, err: &serde_yaml::Error) -> Self {
        ComposeError::Yaml {
            path: path.to_path_buf(),
            line: err.location().map(|l| l.line()),
            message: err.to_string(),
        }
    }
}
