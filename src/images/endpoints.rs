//! Which registry endpoints serve an image's host, in the order to try them (the mirrors of a
//! certs.d hosts.toml, else the registry itself, each with the user's stored credentials), and
//! pulling through the first that answers.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::{auth, hosts, progress::Progress, pull, reference::Reference, registry::Registry};
use crate::connection::UserEnv;

/// Registry clients for `host`, in the order to try them: the mirrors and server of a
/// certs.d/<host>/hosts.toml when there is one (only push-capable ones for `push`), else the
/// registry itself; each with the user's stored credentials for its host.
pub fn registries_for(
    host: &str,
    insecure: bool,
    push: bool,
    hosts_dirs: &[PathBuf],
) -> anyhow::Result<Vec<Registry>> {
    let path = auth::config_path()?;
    let own = auth::lookup(&path, host)?;
    let env = UserEnv::current();
    let dirs = if hosts_dirs.is_empty() {
        hosts::search_dirs(env.euid, env.config_home.as_deref())
    } else {
        hosts_dirs.to_vec()
    };
    match hosts::find(host, &dirs)? {
        Some(h) if !insecure => {
            tracing::debug!(file = %h.path.display(), "registry hosts");
            let lookup = |h: &str| {
                if h == host {
                    own.clone()
                } else {
                    auth::lookup(&path, h).ok().flatten()
                }
            };
            let regs = hosts::clients(host, &h, push, &lookup)?;
            if regs.is_empty() {
                anyhow::bail!(
                    "{} lists no endpoint that can {} {host}",
                    h.path.display(),
                    if push { "push to" } else { "pull from" }
                );
            }
            Ok(regs)
        }
        _ => Ok(vec![Registry::new(host, own, insecure)?]),
    }
}

/// The first pull endpoint for `host` (prefer [`registries_for`] + [`pull_any`], which fall back
/// to the next mirror).
pub fn registry_for(host: &str, insecure: bool) -> anyhow::Result<Registry> {
    Ok(registries_for(host, insecure, false, &[])?.remove(0))
}

/// Pulls from the first endpoint that works; registry failures move on to the next one.
pub async fn pull_any(
    store: &super::store::Store,
    regs: Vec<Registry>,
    reference: &Reference,
    opts: &pull::PullOptions,
    progress: Arc<Progress>,
) -> anyhow::Result<pull::Pulled> {
    let count = regs.len();
    for (i, reg) in regs.into_iter().enumerate() {
        let origin = reg.origin();
        match pull::pull(store, Arc::new(reg), reference, opts, progress.clone()).await {
            Err(pull::PullError::Registry(e)) if i + 1 < count => {
                tracing::warn!("{origin}: {e}; trying the next endpoint");
            }
            other => {
                return other.with_context(|| format!("pull {}", reference.familiar()));
            }
        }
    }
    anyhow::bail!(
        "pull {}: no registry endpoint to pull from",
        reference.familiar()
    )
}

/// Every tag of `reference`'s repository, from the first endpoint that answers.
pub async fn tags_any(regs: &[Registry], reference: &Reference) -> anyhow::Result<Vec<String>> {
    let mut last = None;
    for reg in regs {
        match reg.tags(&reference.path).await {
            Ok(tags) => return Ok(tags),
            Err(e) => {
                tracing::warn!("{}: {e}; trying the next endpoint", reg.origin());
                last = Some(e);
            }
        }
    }
    match last {
        Some(e) => Err(e)
            .with_context(|| format!("listing the tags of {}", reference.familiar_repository())),
        None => anyhow::bail!(
            "{}: no registry endpoint to list tags from",
            reference.familiar_repository()
        ),
    }
}
