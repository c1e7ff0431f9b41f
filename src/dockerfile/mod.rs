//! Dockerfile instructions as Docker's builder parses them: the words and quoting of its shell
//! lexer ([`words`]), one instruction line into a typed [`Instruction`] ([`instruction`]), and
//! the image-config instructions applied to an image config ([`apply`]) — what `commit -c` and
//! `import -c` use now and the Dockerfile builder will reuse.

pub mod apply;
pub mod file;
pub mod instruction;
pub mod words;

pub use apply::{apply_changes, apply_step};
pub use instruction::{parse_changes, CommandLine, Healthcheck, Instruction};

/// Why a Dockerfile instruction could not be parsed or applied (Docker's wording where it has
/// one).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DockerfileError {
    #[error("{0} is not a valid change command")]
    NotAChange(String),
    #[error("{0} requires at least one argument")]
    NoArguments(&'static str),
    #[error("{0} requires exactly one argument")]
    OneArgument(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    NoEquals(String),
    #[error("{0} names cannot be empty")]
    EmptyName(&'static str),
    #[error("unterminated quote in {0:?}")]
    Unterminated(String),
    #[error("bad substitution in {0:?}")]
    BadSubstitution(String),
    /// `${VAR?message}` with VAR unset (`:?`: or empty): "VAR: message".
    #[error("{0}")]
    Required(String),
    #[error("invalid port {0:?} in EXPOSE: expected PORT[-PORT][/tcp|udp|sctp]")]
    Expose(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("invalid STOPSIGNAL {0:?}: a signal name (SIGTERM, TERM) or number")]
    Signal(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnBuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnBuildTrigger(String),
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthType(String),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthNoneArgs,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthNoCommand,
    #[error("invalid HEALTHCHECK flag {0:?}: takes --interval, --timeout, --start-period, --start-interval (durations such as 30s) and --retries (a number)")]
    HealthFlag(String),
    #[error("Interval {0:?} cannot be less than 1ms")]
    HealthTooShort(String),
}
