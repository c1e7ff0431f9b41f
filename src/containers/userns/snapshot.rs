//! keep-id's remapped copy of an image's snapshot. containerd 1.6 has no idmapped snapshots and
//! runc 1.1 no idmapped mounts, so (as containerd's WithRemappedSnapshot and nerdctl's rootful
//! userns-remap do) the image's rootfs is prepared as a snapshot, every entry chowned through
//! the container's map (by the copy helper, inside the launcher's namespaces), and committed
//! under a name made of the chain id and the map: later containers of that image and map start
//! from it at once. The image's config blob gets a gc reference label to it, so the copy lives
//! as long as the image and goes with it (`rmi` leaves nothing behind).

use std::collections::HashMap;

use anyhow::Context;

use super::KeepId;
use crate::containers::copy::{self, Op, Request, Root};
use crate::containers::Ctx;
use crate::images::runnable::Image;
use crate::images::store::Store;
use crate::selfexec::Helper;

/// The gc label on the image's config blob that keeps the remapped snapshot `key` alive.
pub fn gc_label(snapshotter: &str, k: &KeepId) -> String {
    format!(
        "containerd.io/gc.ref.snapshot.{snapshotter}/burrow-userns-u{}-g{}",
        k.uid_map.key(),
        k.gid_map.key()
    )
}

/// The committed remapped snapshot of `image` for `k`, made now unless it exists (`making` is
/// called first then); returns its name, the parent of the container's snapshot.
pub async fn remapped(
    ctx: &Ctx,
    image: &Image,
    k: &KeepId,
    making: &(dyn Fn() + Sync),
) -> anyhow::Result<String> {
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let key = k.snapshot_key(&image.chain_id);
    if !store.snapshot_exists(&key).await? {
        making();
        let leased = store
            .with_lease("userns")
            .await
            .context("leasing the remapped snapshot")?;
        let made = make(ctx, &leased, image, k, &key).await;
        // The label references it from here on (or the lease's end lets gc take the pieces).
        let labelled = match &made {
            Ok(()) => label(&store, image, k, &key).await,
            Err(_) => Ok(()),
        };
        if let Err(err) = leased.release().await {
            tracing::warn!(%err, "ending the lease of the remapped snapshot (it expires in a day)");
        }
        made.and(labelled)?;
    } else {
        // A snapshot from before a crash between commit and label: label it (idempotent).
        label(&store, image, k, &key).await?;
    }
    Ok(key)
}

async fn label(store: &Store, image: &Image, k: &KeepId, key: &str) -> anyhow::Result<()> {
    let label = gc_label(&store.snapshotter, k);
    store
        .set_labels(
            &image.config_digest,
            HashMap::from([(label, key.to_string())]),
        )
        .await
        .with_context(|| {
            format!(
                "tying the remapped snapshot to the image's config {}",
                image.config_digest
            )
        })
}

/// Prepares, remaps and commits `key` (under the store's lease).
async fn make(
    ctx: &Ctx,
    leased: &Store,
    image: &Image,
    k: &KeepId,
    key: &str,
) -> anyhow::Result<()> {
    let tmp = format!(
        "{key}-prepare-{}-{}",
        std::process::id(),
        crate::containers::store::new_id()
    );
    let mounts = leased
        .prepare(&tmp, &image.chain_id)
        .await
        .with_context(|| {
            format!(
                "preparing a copy of the image's snapshot {}",
                image.chain_id
            )
        })?;
    let req = Request {
        root: Root::of_mounts(&mounts),
        launcher_pid: ctx.launcher_pid(),
        op: Op::Remap {
            uid_map: k.uid_map.clone(),
            gid_map: k.gid_map.clone(),
        },
    };
    let remapped = tokio::task::spawn_blocking(move || run_helper(&req))
        .await
        .context("the remap helper's thread")?;
    let committed = match remapped {
        Ok(()) => match leased.commit_snapshot(key, &tmp).await {
            Ok(()) => return Ok(()),
            // Another create of the same image and map committed it first: use theirs.
            Err(e) if e.code() == Some(tonic::Code::AlreadyExists) => Ok(()),
            Err(e) => Err(anyhow::Error::from(e).context("committing the remapped snapshot")),
        },
        Err(e) => Err(e),
    };
    if let Err(err) = leased.remove_snapshot(&tmp).await {
        tracing::warn!(%err, key = %tmp, "removing the unfinished remapped snapshot");
    }
    committed
}

fn run_helper(req: &Request) -> anyhow::Result<()> {
    let helper = Helper::Cp {
        request: serde_json::to_string(req)?,
    };
    let out = helper
        .command()?
        .stdin(std::process::Stdio::null())
        .output()?;
    copy::check_helper(
        out,
        "remapping the image's files for --userns=keep-id failed",
    )
    .map(|_| ())
}
