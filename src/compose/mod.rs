//! `burrow compose`: Compose projects loaded from their files ([`project`]) and run on
//! containerd by the engine ([`engine`]), named and labelled as Docker Compose does.

pub mod engine;
pub mod project;

/// A Compose operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{0}")]
    Load(String),
    #[error("no such service: {0} (see `burrow compose config --services`)")]
    NoService(String),
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    #[error("service {0} has only `build:`: `burrow build` has not landed yet; build the image elsewhere and give it with `image:`")]
    BuildOnly(String),
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
}
