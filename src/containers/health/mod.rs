//! Docker's healthchecks: the configuration (`config`), the health a container is in and its
//! state file (`state`), and the background monitor that runs the probes (`monitor`). Here:
//! what the rest of burrow (ps, inspect, events, Compose, the Docker API) reads of it.

pub mod config;
pub mod monitor;
pub mod state;

use std::time::Duration;

use containerd_client::services::v1::Container;

pub use config::{GoDuration, HealthConfig, HealthError, HealthOptions};
pub use state::{Health, HealthResult, HealthStatus, StateFile};

use super::record::{self, State};
use super::{labels, Ctx};

/// The containerd event topic burrow publishes health changes on (containerd keeps no such
/// event of its own); `events` shows it as Docker's `health_status: STATUS`.
pub const EVENT_TOPIC: &str = "/burrow/health-status";
/// The type URL of [`HealthStatusEvent`] in the envelope.
pub const EVENT_TYPE_URL: &str = "burrow.health.v1.HealthStatus";

/// A container's health status changed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthStatusEvent {
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// starting, healthy or unhealthy.
    #[prost(string, tag = "2")]
    pub status: String,
}

/// The container's healthcheck as created (Docker's `Config.Healthcheck`), if it has one.
pub fn config_of(c: &Container) -> Option<HealthConfig> {
    let text = c.labels.get(labels::HEALTHCHECK)?;
    serde_json::from_str(text).ok()
}

/// The healthcheck a new container gets: the request's over the image's (`image` is the
/// image config's `Healthcheck` JSON).
pub fn effective(
    requested: Option<&HealthConfig>,
    image: Option<&serde_json::Value>,
) -> Option<HealthConfig> {
    let from_image = image.and_then(HealthConfig::from_json);
    config::merge(requested, from_image.as_ref())
}

/// The container's health (Docker's `State.Health`): none without a healthcheck that runs a
/// probe, or before its first start.
pub fn health_of(ctx: &Ctx, c: &Container) -> Option<Health> {
    config_of(c)?.probe()?;
    StateFile::new(&ctx.store.container_dir(&c.id))
        .read()
        .map(|r| r.health)
}

/// The status `ps` shows and filters on: none without a healthcheck, else the recorded one
/// (starting before the first probe).
pub fn status_of(ctx: &Ctx, c: &Container) -> Option<HealthStatus> {
    config_of(c)?.probe()?;
    Some(health_of(ctx, c).map(|h| h.status).unwrap_or_default())
}

/// The health of the container `query` names (id, name or id prefix).
pub async fn health(ctx: &Ctx, query: &str) -> anyhow::Result<Option<Health>> {
    let c = ctx.find(query).await?;
    Ok(health_of(ctx, &c))
}

/// Why [`wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("container {0} has no healthcheck")]
    NoHealthcheck(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is unhealthy")]
    Unhealthy(String),
    #[error("container {name} did not become {want} within {after:?} (it is {now})")]
    Timeout {
        name: String,
        want: HealthStatus,
        now: HealthStatus,
        after: Duration,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Waits until the container `query` names is `want` (Compose's `service_healthy` waits for
/// healthy): fails when it has no healthcheck, stops running, turns unhealthy while healthy is
/// awaited, or `timeout` passes.
pub async fn wait_for(
    ctx: &Ctx,
    query: &str,
    want: HealthStatus,
    timeout: Duration,
) -> Result<Health, WaitError> {
    let c = ctx.find(query).await?;
    let name = record::name_of(&c);
    if config_of(&c).and_then(|h| h.probe()).is_none() {
        return Err(WaitError::NoHealthcheck(name));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let h = health_of(ctx, &c).unwrap_or_default();
        if h.status == want {
            return Ok(h);
        }
        if want == HealthStatus::Healthy && h.status == HealthStatus::Unhealthy {
            return Err(WaitError::Unhealthy(name));
        }
        if !record::state(ctx, &c.id).await?.is_running() {
            return Err(WaitError::NotRunning(name));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(WaitError::Timeout {
                name,
                want,
                now: h.status,
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether a state counts as running for the monitor (paused: probes wait).
fn probing(st: &State) -> Option<bool> {
    match st {
        State::Running { .. } => Some(true),
        State::Paused { .. } => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::request::ContainerRequest;

    #[test]
    fn a_docker_api_body_maps_onto_the_request_and_merges_with_the_image() {
        let body = r#"{"Config": {"Image": "x", "Healthcheck": {"Test": [], "Retries": 5}}}"#;
        let r: ContainerRequest = serde_json::from_str(body).unwrap();
        let user = r.config.healthcheck.clone().unwrap();
        assert_eq!(user.retries, 5);
        assert!(r.validate(false).is_ok());
        let image = serde_json::json!({"Test": ["CMD", "/check"], "Interval": 2_000_000_000i64});
        let h = effective(Some(&user), Some(&image)).unwrap();
        assert_eq!(h.probe().unwrap(), ["/check"]);
        assert_eq!((h.retries(), h.interval()), (5, Duration::from_secs(2)));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["Config"]["Healthcheck"]["Retries"], 5);
        let mut bad = r.clone();
        bad.config.healthcheck = Some(HealthConfig {
            timeout: 5,
            ..HealthConfig::default()
        });
        assert_eq!(
            bad.validate(false).unwrap_err().to_string(),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        let none: ContainerRequest =
            serde_json::from_str(r#"{"Config": {"Healthcheck": null}}"#).unwrap();
        assert_eq!(none.config.healthcheck, None);
    }
}
