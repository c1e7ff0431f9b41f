//! `burrow diff`: a container's changes against its image, read from its snapshot's overlay
//! upper and lower directories by the cp helper ([`super::copy::changes`]).

use anyhow::{bail, Context};

use super::copy::changes::Change;
use super::copy::{check_helper, Op, Request, Root};
use super::Ctx;

/// The changes of the container `query` names, sorted by path.
pub async fn diff(ctx: &Ctx, query: &str) -> anyhow::Result<Vec<Change>> {
    let c = ctx.find(query).await?;
    let mounts = ctx
        .client
        .snapshot_mounts(&c.snapshotter, &c.snapshot_key)
        .await
        .with_context(|| format!("the filesystem of container {query}"))?;
    let mut upper = None;
    let mut lowers = Vec::new();
    for o in mounts.iter().flat_map(|m| m.options.iter()) {
        if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(u.to_string());
        } else if let Some(l) = o.strip_prefix("lowerdir=") {
            lowers.extend(l.split(':').map(str::to_string));
        }
    }
    let Some(upper) = upper else {
        bail!(
            "container {query}'s snapshot is not an overlay with a writable layer: cannot diff it"
        );
    };
    let req = Request {
        root: Root::Mounts(Vec::new()),
        launcher_pid: ctx.ep.launcher.as_ref().map(|l| l.child_pid),
        op: Op::Changes { upper, lowers },
    };
    let out = crate::selfexec::Helper::Cp {
        request: serde_json::to_string(&req)?,
    }
    .command()?
    .stdin(std::process::Stdio::null())
    .output()?;
    let body = check_helper(out, &format!("cannot diff {query}"))?;
    Ok(serde_json::from_slice(&body)?)
}
