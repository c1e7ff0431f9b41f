//! An ahead-of-time network attach parked between a create and the start expected to follow at
//! once: `docker run --rm` through the Docker API creates the container, then starts it within
//! milliseconds, so the CNI plugins' work (see [`crate::network::prepare`]) is begun at the
//! create, as `burrow run` begins it, instead of inside the start's `createRuntime` hook.
//!
//! While parked, the container's stored spec is the one any start can use (a fresh namespace,
//! attached by the hook), so nothing breaks if the start never comes or comes from elsewhere;
//! [`take`] puts the prepared namespace in the spec just before the task is created. Unclaimed
//! after [`WINDOW`], the attach is torn down and the container is as if created without it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use oci_spec::runtime::Spec;

use super::create::{teardown_leftovers, AheadNet};
use super::spec::set_netns;
use super::Ctx;

/// How long a parked attach waits for its start.
pub const WINDOW: Duration = Duration::from_secs(5);

/// A parked attach and the spec whose namespace is its.
struct Parked {
    net: AheadNet,
    ahead_spec: Spec,
}

fn board() -> &'static Mutex<HashMap<String, Parked>> {
    static BOARD: OnceLock<Mutex<HashMap<String, Parked>>> = OnceLock::new();
    BOARD.get_or_init(Default::default)
}

/// Parks `net`, the ahead attach `create` made for container `id`: the stored spec goes back
/// to the fresh-namespace one, and the attach is torn down unless [`take`]n within [`WINDOW`].
pub async fn park(ctx: Arc<Ctx>, id: &str, net: AheadNet) {
    // The spec `create` stored, derived rather than read back: the fresh one joining the path.
    let mut ahead_spec = net.spec_after.clone();
    set_netns(&mut ahead_spec, Some(&net.helper.path));
    if let Err(err) = ctx.client.update_spec(id, &net.spec_after).await {
        tracing::warn!(%err, "container {id}: storing its spec without the network namespace attached ahead failed; if its start cannot find that namespace, remove the container and create it again");
        return abandon(&ctx, id, net).await;
    }
    let parked = Parked { net, ahead_spec };
    board()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.to_string(), parked);
    let id = id.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(WINDOW).await;
        let left = board()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(p) = left {
            if matches!(ctx.client.get_task(&id).await, Ok(Some(_))) {
                // Started elsewhere (`burrow start`): its hook undid this attach already and
                // made its own, which a teardown now would take away.
                let helper = p.net.helper;
                let _ = tokio::task::spawn_blocking(move || helper.release(true)).await;
            } else {
                abandon(&ctx, &id, p.net).await;
            }
        }
    });
}

/// The parked attach of container `id`, if any, with its namespace put back in the stored spec
/// for the task about to be created; settle it once the task started.
pub async fn take(ctx: &Ctx, id: &str) -> Option<AheadNet> {
    let p = board()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id)?;
    match ctx.client.update_spec(id, &p.ahead_spec).await {
        Ok(()) => Some(p.net),
        Err(err) => {
            tracing::warn!(%err, "resuming the ahead attach; the start attaches as usual");
            abandon(ctx, id, p.net).await;
            None
        }
    }
}

/// Lets the helper go and detaches what it attached (the stored spec is the fresh one).
async fn abandon(ctx: &Ctx, id: &str, net: AheadNet) {
    let helper = net.helper;
    let _ = tokio::task::spawn_blocking(move || helper.release(true)).await;
    // The teardown helper runs to its end (a process; no other way to wait for it here).
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(|| teardown_leftovers(ctx, id));
    } else {
        teardown_leftovers(ctx, id);
    }
}
