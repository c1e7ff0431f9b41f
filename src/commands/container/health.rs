//! The healthcheck flags of `run` and `create` (`--health-*`, `--no-healthcheck`), read into
//! the library's typed [`HealthOptions`]; Docker's rules for them are the library's.

use burrow::containers::health::{GoDuration, HealthConfig, HealthError, HealthOptions};

#[derive(Debug, Clone, clap::Args)]
#[command(mut_args(crate::commands::flags::go_bool))]
pub struct HealthFlags {
    /// Command to run to check health (with the container's /bin/sh -c).
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h), default 30s.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_interval: Option<GoDuration>,
    /// Consecutive failures needed to report unhealthy, default 3.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub health_retries: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h), default 30s.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_timeout: Option<GoDuration>,
    /// Start period for the container to initialize before failures count toward the
    /// retries (ms|s|m|h), default 0s.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_period: Option<GoDuration>,
    /// Time between running the check during the start period (ms|s|m|h), default 5s.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub health_start_interval: Option<GoDuration>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl HealthFlags {
    /// The request's `Config.Healthcheck` (none: the image's applies).
    pub fn config(&self) -> Result<Option<HealthConfig>, HealthError> {
        HealthOptions {
            cmd: self.health_cmd.clone(),
            interval: self.health_interval,
            timeout: self.health_timeout,
            start_period: self.health_start_period,
            start_interval: self.health_start_interval,
            retries: self.health_retries,
            disable: self.no_healthcheck,
        }
        .config()
    }
}
