//! The health monitor: a background process per started container with a healthcheck
//! (`burrow::selfexec::Helper::HealthMonitor`) that runs the probe in the container as an exec,
//! on the interval (the start interval while starting within the start period), with the
//! timeout, records each result in the state machine and publishes each status change. It ends
//! when the task exits, the container is removed, or a newer start took over.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use containerd_client::services::v1::{Container, PublishRequest};
use prost::Message;

use super::state::{HealthResult, HealthStatus, LimitedOutput, StateFile};
use super::{config_of, GoDuration, HealthStatusEvent, EVENT_TOPIC, EVENT_TYPE_URL};
use crate::connection::Globals;
use crate::containers::capture::{self, End};
use crate::containers::exec::ExecRequest;
use crate::containers::record;
use crate::containers::Ctx;
use crate::images::time::rfc3339_nano;
use crate::selfexec::{EndpointArgs, Helper};

/// Starts the health monitor of container `id` after its task started, if it has a
/// healthcheck with a probe: its health starts over (starting, no failures) under a new
/// generation, which retires any older monitor. Returns whether one was started.
pub async fn spawn(ctx: &Ctx, id: &str) -> anyhow::Result<bool> {
    let c = ctx.client.get(id).await?;
    if config_of(&c).and_then(|h| h.probe()).is_none() {
        return Ok(false);
    }
    let generation = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string();
    StateFile::new(&ctx.store.container_dir(id)).update(|r| {
        r.generation = generation.clone();
        r.health.restart();
        Some(())
    })?;
    Helper::HealthMonitor {
        endpoint: EndpointArgs::of(&ctx.ep),
        id: id.to_string(),
        generation,
    }
    .command()?
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .process_group(0)
    .spawn()
    .with_context(|| format!("starting the health monitor of {id}"))?;
    Ok(true)
}

/// The monitor process's body (blocking: it runs its own runtime).
pub fn main(g: &Globals, id: &str, generation: &str) -> anyhow::Result<()> {
    crate::connection::runtime().block_on(run(g, id, generation))
}

/// Probes container `id` until its task exits, it is removed or another generation is in
/// charge.
pub async fn run(g: &Globals, id: &str, generation: &str) -> anyhow::Result<()> {
    let ctx = Ctx::connect(g).await?;
    let c = ctx.client.get(id).await?;
    let Some((config, cmd)) = config_of(&c).and_then(|h| h.probe().map(|cmd| (h, cmd))) else {
        return Ok(());
    };
    let file = StateFile::new(&ctx.store.container_dir(id));
    let started = ctx.store.started_at(id).unwrap_or_else(SystemTime::now);
    let since_start = |t: SystemTime| t.duration_since(started).unwrap_or_default();
    let waiter = ctx.client.clone();
    let task_id = id.to_string();
    let mut exited = tokio::spawn(async move { waiter.wait_task(&task_id).await });
    loop {
        let status = match file.read() {
            Some(r) if r.generation == generation => r.health.status,
            _ => return Ok(()),
        };
        let starting = since_start(SystemTime::now()) < config.start_period()
            && status == HealthStatus::Starting;
        let interval = if starting {
            config.start_interval()
        } else {
            config.interval()
        };
        tokio::select! {
            _ = &mut exited => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
        let task = ctx.client.get_task(id).await.ok().flatten();
        match super::probing(&record::State::from_task(task.as_ref())) {
            Some(true) => {}
            Some(false) => continue,
            None => return Ok(()),
        }
        let begun = SystemTime::now();
        let result = probe(&ctx, &c, &cmd, config.timeout()).await;
        if exited.is_finished() {
            // The task ended meanwhile: its probe's result is not the container's health.
            return Ok(());
        }
        let in_period = since_start(begun) < config.start_period();
        let changed = file.update(|r| {
            (r.generation == generation)
                .then(|| r.health.record(result, in_period, config.retries()))
        });
        match changed {
            Ok(Some(Some(now))) => publish(&ctx, id, now).await,
            Ok(Some(None)) => {}
            // Superseded, or the container's dir is gone (removed).
            Ok(None) | Err(_) => return Ok(()),
        }
    }
}

/// Publishes a status change on burrow's topic (`events` shows it as Docker does).
pub async fn publish(ctx: &Ctx, id: &str, status: HealthStatus) {
    let event = HealthStatusEvent {
        container_id: id.to_string(),
        status: status.word().to_string(),
    };
    let req = PublishRequest {
        topic: EVENT_TOPIC.to_string(),
        event: Some(prost_types::Any {
            type_url: EVENT_TYPE_URL.to_string(),
            value: event.encode_to_vec(),
        }),
    };
    if let Err(err) = ctx.client.containerd().events().publish(req).await {
        tracing::warn!(%err, id, "publishing the health status event");
    }
}

/// Runs the probe once: exit 0 is healthy; anything else, a timeout (-1) or a probe that could
/// not run (-1, the error as output) is a failure.
pub async fn probe(ctx: &Ctx, c: &Container, cmd: &[String], timeout: Duration) -> HealthResult {
    let start = SystemTime::now();
    let output = Arc::new(Mutex::new(LimitedOutput::default()));
    let req = ExecRequest {
        cmd: cmd.to_vec(),
        ..ExecRequest::default()
    };
    let ended = capture::run(ctx, c, &req, "health", Some(timeout), output.clone()).await;
    let text = output.lock().map(|o| o.text()).unwrap_or_default();
    let (exit_code, output) = match ended {
        Ok(End::Exited(code)) => (i64::from(code), text),
        Ok(End::TimedOut) => {
            let limit = GoDuration::from_std(timeout);
            let msg = if text.is_empty() {
                format!("Health check exceeded timeout ({limit})")
            } else {
                format!("Health check exceeded timeout ({limit}): {text}")
            };
            (-1, msg)
        }
        Err(e) => (-1, format!("{e:#}")),
    };
    HealthResult {
        start: rfc3339_nano(start),
        end: rfc3339_nano(SystemTime::now()),
        exit_code,
        output,
    }
}
