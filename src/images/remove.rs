//! Removing images: `rmi`'s names or IDs (refused while a container uses them, or while an ID
//! has several names, unless forced) and `image prune`'s dangling or unused images. When an
//! image itself goes, so does its entry in the user cache (see [`super::userdb::cache_dir`]).

use std::path::Path;

use anyhow::bail;

use super::local;
use super::manifest::{self, Platform};
use super::reference::Reference;
use super::store::Store;
use super::{catalog, userdb};

/// What a removal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The names removed, in Docker's familiar spelling.
    pub untagged: Vec<String>,
    /// The image ID, when no name is left for it and it is gone.
    pub deleted: Option<String>,
}

/// Removes what `arg` names (a name, or an ID and then all its names with `force`).
pub async fn remove(
    store: &Store,
    user_cache: &Path,
    arg: &str,
    force: bool,
) -> anyhow::Result<Removed> {
    remove_as(store, user_cache, arg, Force::from(force)).await
}

/// How a removal treats containers that use the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Force {
    /// Refused while a container uses it.
    No,
    /// `rmi -f`: untagged; kept as `<none>` while a container uses it.
    Yes,
    /// prune's: it already knows no container uses the image.
    Unused,
}

impl From<bool> for Force {
    fn from(force: bool) -> Force {
        if force {
            Force::Yes
        } else {
            Force::No
        }
    }
}

async fn remove_as(
    store: &Store,
    user_cache: &Path,
    arg: &str,
    force: Force,
) -> anyhow::Result<Removed> {
    let platform = Platform::host();
    let name = Reference::parse(arg)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| arg.to_owned());
    let by_name = store.image(&name).await?.map(|i| i.name);
    let by_id = by_name.is_none();
    let (names, id) = match by_name {
        Some(name) => {
            let id = match store.image(&name).await? {
                Some(img) => local::resolve(store, &img, &platform)
                    .await
                    .map(|l| l.id().to_owned())
                    .ok(),
                None => None,
            };
            (vec![name], id)
        }
        None => {
            let found = catalog::find(store, arg, &platform).await?;
            // The build cache's records are hidden and stay (the builder's, not the user's).
            let names: Vec<String> = found
                .iter()
                .map(|l| l.name.clone())
                .filter(|n| !crate::build::cache::is_cache_record(n))
                .collect();
            if names.is_empty() {
                return Err(catalog::CatalogError::NotFound(arg.to_owned()).into());
            }
            if names.len() > 1 && force == Force::No {
                bail!(
                    "conflict: unable to delete {arg} (must be forced) - image is referenced in multiple repositories ({})",
                    names.iter().map(|n| catalog::familiar(n)).collect::<Vec<_>>().join(", ")
                );
            }
            (names, found.first().map(|l| l.id().to_owned()))
        }
    };
    // Named by ID: a running container's image cannot go, even forced (Docker's hard
    // conflict); by name, `-f` untags and the image stays for it.
    if let (true, Force::Yes, Some(id)) = (by_id, force, id.as_deref()) {
        if let Some(c) = catalog::running_user_of(store, id).await? {
            bail!(
                "conflict: unable to delete {arg} (cannot be forced) - image is being used by running container {}: stop it first (`burrow stop {}`), then remove it",
                manifest::short_id(&c),
                manifest::short_id(&c)
            );
        }
    }
    match force {
        Force::No => refuse_if_used(store, &names, id.as_deref()).await?,
        Force::Yes => keep_for_containers(store, &names, id.as_deref(), &platform).await?,
        Force::Unused => {}
    }
    let mut out = Removed::default();
    for n in &names {
        let mounted = store_mount(store, n, &platform).await;
        store.delete_image(n, true).await?;
        out.untagged.push(catalog::familiar(n));
        // A record made from the shared store: once its snapshot is gone, so is the mount.
        if let Some((target, chain)) = mounted {
            if !store.snapshot_exists(&chain).await? {
                if let Err(e) = crate::containers::shared::unmount(store.launcher_pid, &target) {
                    tracing::warn!("{e:#}");
                }
            }
        }
    }
    if let Some(id) = id {
        let still = catalog::all(store, &platform)
            .await?
            .iter()
            .any(|l| l.id() == id && !crate::build::cache::is_cache_record(&l.name));
        if !still {
            userdb::forget(user_cache, &id);
            out.deleted = Some(id);
        }
    }
    Ok(out)
}

/// Where the record `name`, made from the shared image store, has its file mounted, and the
/// snapshot (chain id) that mount serves.
async fn store_mount(store: &Store, name: &str, platform: &Platform) -> Option<(String, String)> {
    let img = store.image(name).await.ok()??;
    let target = img
        .labels
        .get(crate::containers::shared::MOUNT_LABEL)?
        .clone();
    let local = local::resolve(store, &img, platform).await.ok()?;
    let chain = manifest::chain_ids(&local.config.rootfs.diff_ids).pop()?;
    Some((target, chain))
}

/// A forced removal of an image's last names while a container uses it: as Docker, the
/// image stays, untagged (`<none>`), for the containers made from it (their inspect, commit
/// and export read it); a later prune removes it once they are gone.
async fn keep_for_containers(
    store: &Store,
    names: &[String],
    id: Option<&str>,
    platform: &Platform,
) -> anyhow::Result<()> {
    let Some(id) = id else { return Ok(()) };
    if names.iter().all(|n| catalog::is_dangling(n)) {
        return Ok(());
    }
    // Whether a container uses it (one list) before whether other names keep it (which reads
    // every image's config).
    let mut used = catalog::ids_in_use(store).await?.contains(id);
    for n in names {
        used = used || !catalog::containers_using(store, n).await?.is_empty();
    }
    if !used {
        return Ok(());
    }
    let others = catalog::all(store, platform)
        .await?
        .iter()
        .any(|l| l.id() == id && !names.contains(&l.name));
    let Some(img) = (match (others, names.first()) {
        (false, Some(n)) => store.image(n).await?,
        _ => None,
    }) else {
        return Ok(());
    };
    let Some(target) = img.target.as_ref() else {
        return Ok(());
    };
    store
        .put_image(
            &format!("<none>@{}", target.digest),
            &super::store::from_pb(target),
            img.labels.clone(),
        )
        .await?;
    Ok(())
}

/// Fails naming the first container that uses one of `names`.
async fn refuse_if_used(store: &Store, names: &[String], id: Option<&str>) -> anyhow::Result<()> {
    for n in names {
        let users = catalog::containers_using(store, n).await?;
        if let Some(c) = users.first() {
            bail!(
                "conflict: unable to remove repository reference {:?} (must force) - container {} is using its referenced image {}: remove the container first (`burrow rm {}`) or pass -f",
                catalog::familiar(n),
                manifest::short_id(c),
                id.map(manifest::short_id).unwrap_or_default(),
                manifest::short_id(c)
            );
        }
    }
    Ok(())
}

/// Removes every image no container uses: with `all` all of them, else the dangling ones.
pub async fn prune(store: &Store, user_cache: &Path, all: bool) -> anyhow::Result<Vec<Removed>> {
    prune_matching(store, user_cache, all, |_| true).await
}

/// [`prune`] of the images that pass `filters` (`until`: created before; `label`, `label!`:
/// the image config's labels).
pub async fn prune_filtered(
    store: &Store,
    user_cache: &Path,
    all: bool,
    filters: &crate::containers::prunefilter::PruneFilters,
) -> anyhow::Result<Vec<Removed>> {
    let mut passing = std::collections::HashSet::new();
    for l in catalog::all(store, &Platform::host()).await? {
        let labels: std::collections::HashMap<String, String> = l
            .config
            .config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if filters.pass(catalog::created(&l), &labels) {
            passing.insert(l.name.clone());
        }
    }
    prune_matching(store, user_cache, all, |name| passing.contains(name)).await
}

/// [`prune`], of the records whose name `wanted` accepts.
pub async fn prune_matching(
    store: &Store,
    user_cache: &Path,
    all: bool,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Removed>> {
    let mut out = Vec::new();
    let in_use = catalog::ids_in_use(store).await?;
    let platform = Platform::host();
    for img in store.images().await? {
        if !(all || catalog::is_dangling(&img.name)) || !wanted(&img.name) {
            continue;
        }
        // The build cache is `builder prune`'s to remove, as in Docker.
        if crate::build::cache::is_cache_record(&img.name) {
            continue;
        }
        // In use by name, or by ID under another of its names (Docker decides by ID).
        if !catalog::containers_using(store, &img.name)
            .await?
            .is_empty()
        {
            continue;
        }
        let id = local::resolve(store, &img, &platform)
            .await
            .map(|l| l.id().to_owned())
            .ok();
        if id.is_some_and(|id| in_use.contains(&id)) {
            continue;
        }
        out.push(remove_as(store, user_cache, &img.name, Force::Unused).await?);
    }
    Ok(out)
}
