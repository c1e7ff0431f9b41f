//! An exec into a running container: the process spec it runs with, built from the
//! container's own (environment, user, capabilities) and what the exec asks for, as Docker
//! builds it: the command, a terminal (with TERM), extra environment, a working directory, a
//! user resolved against the image's /etc/passwd, and extended privileges.

use anyhow::Context;
use containerd_client::services::v1::Container;
use oci_spec::runtime::Process;

use super::user::ResolvedUser;
use super::{record, Ctx};

/// What an exec asks for (Docker's ExecConfig).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    pub tty: bool,
    /// `KEY=VALUE`, or `KEY` to pass the caller's value.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub privileged: bool,
}

/// What `process` tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecNote {
    /// The user runs as uid 0: the launcher maps a single id.
    SingleIdUser { user: String },
}

/// The exec's process: the container's process spec with the command, terminal, env, cwd,
/// user and privileges of `req`.
pub async fn process(
    ctx: &Ctx,
    c: &Container,
    req: &ExecRequest,
    notify: &(dyn Fn(ExecNote) + Sync),
) -> anyhow::Result<Process> {
    let spec = record::spec_of(c).context("the container has no OCI spec")?;
    let mut process = spec
        .process()
        .clone()
        .context("the container spec has no process")?;
    process.set_args(Some(req.cmd.clone()));
    process.set_terminal(Some(req.tty));
    process.set_env(Some(environment(
        process.env().clone().unwrap_or_default(),
        req,
    )));
    if let Some(w) = &req.working_dir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &req.user {
        let resolved = user(ctx, c, u, notify).await?;
        let mut user = process.user().clone();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.additional_gids).filter(|g| !g.is_empty()));
        process.set_user(user);
    }
    if req.privileged {
        let all: oci_spec::runtime::Capabilities = super::caps::resolve(true, &[], &[])?
            .iter()
            .filter_map(|n| n.strip_prefix("CAP_").and_then(|s| s.parse().ok()))
            .collect();
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_bounding(Some(all.clone()));
            caps.set_effective(Some(all.clone()));
            caps.set_permitted(Some(all));
            process.set_capabilities(Some(caps));
        }
    }
    Ok(process)
}

/// The container's environment with the exec's on top (later wins per key); TERM=xterm with a
/// terminal unless set, as Docker does.
fn environment(mut env: Vec<String>, req: &ExecRequest) -> Vec<String> {
    let key = |kv: &str| kv.split('=').next().unwrap_or(kv).to_string();
    let mut set = |kv: String| {
        let k = key(&kv);
        env.retain(|e| key(e) != k);
        env.push(kv);
    };
    if req.tty && !req.env.iter().any(|kv| key(kv) == "TERM") {
        set("TERM=xterm".to_string());
    }
    for kv in &req.env {
        if kv.contains('=') {
            set(kv.clone());
        } else if let Ok(v) = std::env::var(kv) {
            set(format!("{kv}={v}"));
        }
    }
    env
}

/// `exec --user`: names and numbers resolved against the image's /etc/passwd and /etc/group,
/// as `run --user` is; where the launcher maps a single id, every user is root (noted).
async fn user(
    ctx: &Ctx,
    c: &Container,
    spec: &str,
    notify: &(dyn Fn(ExecNote) + Sync),
) -> anyhow::Result<ResolvedUser> {
    let mut passwd_group = (String::new(), String::new());
    // The image of the platform the container runs (`run --platform`).
    let platform = c
        .labels
        .get(super::labels::PLATFORM)
        .and_then(|p| crate::images::manifest::Platform::parse(p).ok());
    if let Ok(mut image) = ctx.images.resolve_for(&c.image, platform.as_ref()).await {
        let cache = crate::images::userdb::cache_dir(ctx.store.root());
        if ctx
            .images
            .load_user_db_cached(&mut image, &cache)
            .await
            .is_ok()
        {
            passwd_group = (image.defaults.passwd, image.defaults.group);
        }
    }
    let resolved = super::user::resolve(spec, &passwd_group.0, &passwd_group.1)
        .with_context(|| format!("exec --user {spec:?}"))?;
    if ctx.ep.launcher.as_ref().is_some_and(|l| l.single_id()) && !resolved.fits_single_id() {
        notify(ExecNote::SingleIdUser {
            user: spec.to_string(),
        });
        return Ok(resolved.squashed());
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_environment_as_docker() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let req = ExecRequest {
            tty: true,
            env: vec!["A=2".into(), "B=3".into()],
            ..Default::default()
        };
        assert_eq!(
            environment(base.clone(), &req),
            ["PATH=/bin", "TERM=xterm", "A=2", "B=3"]
        );
        let req = ExecRequest {
            tty: true,
            env: vec!["TERM=vt100".into()],
            ..Default::default()
        };
        assert_eq!(
            environment(base.clone(), &req),
            ["PATH=/bin", "A=1", "TERM=vt100"]
        );
        let req = ExecRequest::default();
        assert_eq!(environment(base, &req), ["PATH=/bin", "A=1"]);
    }
}
