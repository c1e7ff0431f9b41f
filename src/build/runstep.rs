//! One RUN: a container made through the same library `burrow run` uses (runtime, seccomp,
//! user namespace, networks) from the image of the step before, its command run with its
//! output streamed to the caller, and its changes committed as a layer through containerd's
//! diff service. The container is removed whatever happens.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::Context;

use super::cancel::Cancel;
use crate::containers::commit::diff_layer;
use crate::containers::copy::transfer::ContainerFs;
use crate::containers::create::{self, CreateOptions};
use crate::containers::health::config::HealthConfig;
use crate::containers::lifecycle::Stdio;
use crate::containers::request::ContainerRequest;
use crate::containers::{ops, record, start, Ctx};
use crate::images::manifest::Descriptor;
use crate::images::store::Store;

/// The label that marks a container as a build step's.
pub const BUILD_LABEL: &str = "io.burrow.build-step";

/// What every RUN container of a build gets (`--add-host`, `--shm-size`, `--ulimit`).
#[derive(Debug, Clone, Default)]
pub struct RunSettings {
    pub extra_hosts: Vec<crate::containers::values::ExtraHost>,
    pub shm_size: Option<crate::containers::values::ByteSize>,
    pub ulimits: Vec<crate::containers::values::Ulimit>,
}

impl RunSettings {
    /// What the settings add to a RUN's cache key: empty when none is set (so that keys of
    /// builds without them stay as they were), as BuildKit keys its steps by them too.
    pub fn cache_text(&self) -> String {
        if self.extra_hosts.is_empty() && self.shm_size.is_none() && self.ulimits.is_empty() {
            return String::new();
        }
        let join = |v: Vec<String>| v.join(",");
        format!(
            "hosts={};shm={};ulimits={}",
            join(self.extra_hosts.iter().map(|h| h.to_string()).collect()),
            self.shm_size.map(|b| b.0).unwrap_or(0),
            join(self.ulimits.iter().map(|u| u.to_string()).collect())
        )
    }
}

/// What a RUN runs and how.
pub struct RunSpec<'a> {
    /// The image record of the state before the step.
    pub image: &'a str,
    pub argv: Vec<String>,
    /// The build args in scope (`KEY=VALUE`), added to the image's environment.
    pub env: Vec<String>,
    /// `none`, `host` or the default network.
    pub network: &'a str,
    /// `RUN --mount`s as binds (cache volumes, bind-mount directories).
    pub binds: Vec<crate::containers::values::VolumeSpec>,
    /// `RUN --mount=type=tmpfs`s.
    pub tmpfs: Vec<crate::containers::values::TmpfsSpec>,
    /// What stops the build: the step then kills its command and removes its container.
    pub cancel: &'a Cancel,
    pub settings: &'a RunSettings,
}

/// A RUN that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the command exited with code {code}")]
    Exit { code: u32, output: Vec<u8> },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Runs `spec` and returns its layer and diff id; `out` gets the output as it comes.
pub async fn run(
    ctx: &Ctx,
    leased: &Store,
    spec: &RunSpec<'_>,
    out: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(Descriptor, String), RunError> {
    let mut req = ContainerRequest::new(spec.image);
    req.name = Some(format!("burrow-build-{}", unique()));
    req.config.cmd = spec.argv.clone();
    req.config.entrypoint = Some(Vec::new());
    req.config.env = spec.env.clone();
    req.config.healthcheck = Some(HealthConfig {
        test: vec!["NONE".into()],
        ..Default::default()
    });
    req.config.labels.insert(BUILD_LABEL.into(), "1".into());
    req.host_config.network_mode = spec.network.to_string();
    req.host_config.binds = spec.binds.clone();
    req.host_config.tmpfs = spec.tmpfs.clone();
    req.host_config.extra_hosts = spec.settings.extra_hosts.clone();
    req.host_config.shm_size = spec.settings.shm_size;
    req.host_config.ulimits = spec.settings.ulimits.clone();
    spec.cancel.set_in_step(true);
    let result = run_container(ctx, leased, &req, spec.cancel, out).await;
    spec.cancel.set_in_step(false);
    result
}

async fn run_container(
    ctx: &Ctx,
    leased: &Store,
    req: &ContainerRequest,
    cancel: &Cancel,
    out: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(Descriptor, String), RunError> {
    let created = create::create(
        ctx,
        req,
        CreateOptions {
            bare: true,
            ..CreateOptions::default()
        },
        &|_| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))
    .context("creating the RUN container")?;
    let id = created.id.clone();
    // The mounts' targets: what the runtime makes for them is tidied out of the layer.
    let targets: Vec<String> = req
        .host_config
        .binds
        .iter()
        .map(|b| b.target.clone())
        .chain(req.host_config.tmpfs.iter().map(|t| t.target.clone()))
        .collect();
    let result = run_created(ctx, leased, &id, created.rootfs, &targets, cancel, out).await;
    if let Ok(c) = ctx.client.get(&id).await {
        if let Err(err) = ops::remove(ctx, &c, true, true).await {
            tracing::warn!(%err, %id, "removing the RUN container");
        }
    }
    result
}

async fn run_created(
    ctx: &Ctx,
    leased: &Store,
    id: &str,
    rootfs: Vec<containerd_client::types::Mount>,
    targets: &[String],
    cancel: &Cancel,
    out: &mut (dyn FnMut(&[u8]) + Send),
) -> Result<(Descriptor, String), RunError> {
    let fs = ContainerFs::of_mounts(ctx, "the RUN step's filesystem", &rootfs);
    let stubs = match targets.is_empty() {
        true => Vec::new(),
        false => fs.missing(targets)?,
    };
    let log = ctx.store.container_dir(id).join("build-output");
    std::fs::write(&log, b"").with_context(|| format!("creating {}", log.display()))?;
    let uri = format!("file://{}", log.display());
    let stdio = Stdio {
        stdin: String::new(),
        stdout: uri.clone(),
        stderr: uri,
        terminal: false,
    };
    start::start_task(ctx, id, rootfs, &stdio).await?;
    let mut output = Vec::new();
    let mut pos = 0u64;
    let wait = ctx.client.wait_task(id);
    tokio::pin!(wait);
    let mut interrupted = false;
    let code = loop {
        tokio::select! {
            code = &mut wait => break code.context("waiting for the RUN command")?,
            _ = cancel.stopped(), if !interrupted => {
                // Interrupted: the command is killed, and the caller removes its container.
                interrupted = true;
                tracing::debug!(%id, "build stopped: killing the RUN command");
                // The command is the init of the step's PID namespace: killing it ends them
                // all (`--all` needs a cgroup, which rootless on cgroup v1 has not).
                if let Err(err) = ctx.client.kill_task(id, 9, false).await {
                    tracing::warn!(%err, %id, "killing the RUN command");
                }
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                pos = tail(&log, pos, &mut output, out);
            }
        }
    };
    tail(&log, pos, &mut output, out);
    record::delete_task_recording(ctx, id).await?;
    if interrupted {
        return Err(anyhow::anyhow!(
            "interrupted: the build stopped and removed its step container"
        )
        .into());
    }
    if code != 0 {
        return Err(RunError::Exit { code, output });
    }
    if !stubs.is_empty() {
        fs.remove_stubs(&stubs)?;
    }
    let c = ctx
        .client
        .get(id)
        .await
        .context("the RUN container is gone")?;
    Ok(diff_layer(ctx, leased, &c.snapshotter, &c.snapshot_key, id).await?)
}

/// Hands what `path` got past `pos` to `out` (and keeps it); returns the new position.
fn tail(path: &Path, pos: u64, kept: &mut Vec<u8>, out: &mut (dyn FnMut(&[u8]) + Send)) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return pos;
    };
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(pos)).is_err() || f.read_to_end(&mut buf).is_err() {
        return pos;
    }
    if !buf.is_empty() {
        out(&buf);
        kept.extend_from_slice(&buf);
    }
    pos + buf.len() as u64
}

/// A short unique suffix for a step container's name.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos & 0xffff_ffff)
}
