//! `burrow diff`: a container's changes against its image, read from its snapshot's overlay
//! upper and lower directories by the cp helper ([`super::copy::changes`]), less the mount
//! points the runtime makes (as Docker's init layer hides them).

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
        launcher_pid: ctx.launcher_pid(),
        op: Op::Changes { upper, lowers },
    };
    let out = crate::selfexec::Helper::Cp {
        request: serde_json::to_string(&req)?,
    }
    .command()?
    .stdin(std::process::Stdio::null())
    .output()?;
    let body = check_helper(out, &format!("cannot diff {query}"))?;
    Ok(without_runtime_paths(serde_json::from_slice(&body)?))
}

/// What the runtime adds to every container's filesystem: the mount points of its own files
/// and filesystems. Docker keeps them in an init layer, so its diff never shows them.
const RUNTIME_PATHS: &[&str] = &[
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/proc",
    "/sys",
];

/// `changes` less the runtime's additions ([`RUNTIME_PATHS`]), and less the changed
/// directories that only hold them (`C /etc` when all there is in /etc is the new
/// /etc/hostname mount point), as Docker's diff reads.
fn without_runtime_paths(changes: Vec<Change>) -> Vec<Change> {
    use std::collections::HashSet;
    let dropped = |c: &Change| c.kind == 'A' && RUNTIME_PATHS.contains(&c.path.as_str());
    // The directories above each path, once per path (depth, not the list's length).
    fn parents(path: &str) -> impl Iterator<Item = &str> {
        path.rmatch_indices('/')
            .map(move |(i, _)| &path[..i])
            .filter(|p| !p.is_empty())
    }
    let (mut above_runtime, mut above_user) = (HashSet::new(), HashSet::new());
    for c in &changes {
        let set = if dropped(c) {
            &mut above_runtime
        } else {
            &mut above_user
        };
        set.extend(parents(&c.path).map(str::to_string));
    }
    changes
        .into_iter()
        .filter(|c| !dropped(c))
        // A changed directory holding only the runtime's additions.
        .filter(|c| {
            c.kind != 'C' || !above_runtime.contains(&c.path) || above_user.contains(&c.path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Vec<Change> {
        lines
            .iter()
            .map(|l| Change {
                kind: l.chars().next().unwrap(),
                path: l[2..].to_string(),
            })
            .collect()
    }

    #[test]
    fn the_runtimes_mount_points_are_not_changes() {
        let got = without_runtime_paths(parse(&[
            "C /etc",
            "A /etc/hostname",
            "A /etc/hosts",
            "A /etc/resolv.conf",
            "A /newfile",
            "C /var",
            "A /proc",
        ]));
        assert_eq!(got, parse(&["A /newfile", "C /var"]));
        // /etc stays changed when something of the user's is in it.
        let got = without_runtime_paths(parse(&["C /etc", "A /etc/hostname", "A /etc/app.conf"]));
        assert_eq!(got, parse(&["C /etc", "A /etc/app.conf"]));
        // A file the image had and the container changed is the user's.
        let got = without_runtime_paths(parse(&["C /etc", "C /etc/hosts"]));
        assert_eq!(got, parse(&["C /etc", "C /etc/hosts"]));
    }
}
