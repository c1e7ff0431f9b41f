//! Disk space through the API: `/system/df` (the library's `diskusage`, as `burrow system
//! df`) and the prune endpoints of containers, images, volumes and networks (the library's
//! prunes, as the CLI's `prune` commands), with Docker's filters and answers.

use std::collections::HashMap;

use hyper::Response;
use serde_json::{json, Value};

use super::containers::listed;
use super::error::ApiError;
use super::http::{self, Body, Query};
use crate::containers::diskusage::{self, tree_size};
use crate::containers::listing::{self, ListOptions};
use crate::containers::prunefilter::PruneFilters;
use crate::containers::volumes::{self, InUse, Volumes};
use crate::containers::{networks, ops, Ctx};
use crate::images::manifest::Platform;
use crate::images::store::Store;
use crate::images::{catalog, remove, userdb};

/// A prune's `filters=`, as the library parses them; a bad one answers 400.
fn prune_filters(q: &Query, until: bool, flags: &[&str]) -> Result<PruneFilters, ApiError> {
    let filters = q.filters()?;
    PruneFilters::parse(filters.iter().map(String::as_str), until, flags)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `POST /containers/prune?filters=` (until, label): the stopped containers removed.
pub async fn prune_containers(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = prune_filters(q, true, &[])?;
    let sizes: HashMap<String, u64> = listing::list(
        ctx,
        &ListOptions {
            all: true,
            size: true,
            ..Default::default()
        },
    )
    .await?
    .into_iter()
    .map(|s| (s.container.id.clone(), s.size.map_or(0, |(own, _)| own)))
    .collect();
    let removed = ops::prune_filtered(ctx, &f).await?;
    let space: u64 = removed.iter().filter_map(|id| sizes.get(id)).sum();
    Ok(http::json(
        200,
        &json!({ "ContainersDeleted": removed, "SpaceReclaimed": space }),
    ))
}

/// `POST /images/prune?filters=` (dangling, until, label): dangling images no container
/// uses, every unused one with `dangling=false`.
pub async fn prune_images(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = prune_filters(q, true, &["dangling"])?;
    let all = !f.flag("dangling").unwrap_or(true);
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let sizes: HashMap<String, u64> = catalog::all(&store, &Platform::host())
        .await
        .map_err(anyhow::Error::from)?
        .iter()
        .map(|l| (l.id().to_string(), l.content_size().max(0) as u64))
        .collect();
    let cache = userdb::cache_dir(&ctx.ep.data_root);
    let removed = remove::prune_filtered(&store, &cache, all, &f)
        .await
        .map_err(ApiError::from)?;
    let mut deleted = Vec::new();
    let mut space = 0;
    for r in &removed {
        deleted.extend(r.untagged.iter().map(|n| json!({ "Untagged": n })));
        if let Some(d) = &r.deleted {
            space += sizes.get(d).copied().unwrap_or(0);
            deleted.push(json!({ "Deleted": d }));
        }
    }
    Ok(http::json(
        200,
        &json!({ "ImagesDeleted": deleted, "SpaceReclaimed": space }),
    ))
}

/// `POST /volumes/prune?filters=` (label, all): the unused anonymous volumes, every unused one
/// only with `all=true` (as Docker's API 1.42 and later, whatever version the client asks:
/// a named volume is never pruned unless asked).
pub async fn prune_volumes(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = prune_filters(q, false, &["all"])?;
    let all = f.flag("all").unwrap_or(false);
    let vols = Volumes::of(ctx);
    let sizes: HashMap<String, u64> = vols
        .list()
        .into_iter()
        .map(|v| (v.name.clone(), tree_size(&v.mountpoint)))
        .collect();
    let used = InUse::of(ctx).await?;
    let removed = volumes::prune(ctx, &used, all, f.labels())
        .await
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    let space: u64 = removed.iter().filter_map(|n| sizes.get(n)).sum();
    Ok(http::json(
        200,
        &json!({ "VolumesDeleted": removed, "SpaceReclaimed": space }),
    ))
}

/// `POST /networks/prune`: the networks no container is on that the filters (`until`,
/// `label`, `label!`) pass.
pub async fn prune_networks(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = prune_filters(q, true, &[])?;
    let deleted: Vec<String> = networks::prune(ctx, &f)
        .await?
        .into_iter()
        .map(|n| n.name)
        .collect();
    Ok(http::json(200, &json!({ "NetworksDeleted": deleted })))
}

/// `GET /system/df`: images, containers (with their sizes), volumes (with size and the
/// containers using them), no build cache.
pub async fn df(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let du = diskusage::disk_usage(ctx).await?;
    let images: Vec<Value> = du
        .images
        .iter()
        .map(|i| {
            let l = &i.image;
            let tags: Vec<String> = if catalog::is_dangling(&l.name) {
                Vec::new()
            } else {
                vec![catalog::familiar(&l.name)]
            };
            json!({
                "Id": l.id(),
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": [],
                "Created": catalog::created(l).unwrap_or(0),
                "Size": i.size,
                "SharedSize": i.shared,
                "VirtualSize": i.size,
                "Labels": {},
                "Containers": i.containers,
            })
        })
        .collect();
    let containers: Vec<Value> = du
        .containers
        .iter()
        .map(|c| {
            let mut v = listed(ctx, &c.summary);
            v["SizeRw"] = c.size.into();
            v
        })
        .collect();
    let listed: HashMap<String, _> = Volumes::of(ctx)
        .list()
        .into_iter()
        .map(|v| (v.name.clone(), v))
        .collect();
    let volumes: Vec<Value> = du
        .volumes
        .iter()
        .map(|u| {
            let mut v = listed
                .get(&u.name)
                .and_then(|v| serde_json::to_value(v).ok())
                .unwrap_or_else(|| json!({ "Name": u.name, "Driver": "local" }));
            v["UsageData"] = json!({ "Size": u.size, "RefCount": u.links });
            v
        })
        .collect();
    Ok(http::json(
        200,
        &json!({
            "LayersSize": du.images_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_filters_read_as_dockers() {
        let q = Query::parse(Some(
            "filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%2C%22all%22%3A%5B%22true%22%5D%7D",
        ));
        let f = prune_filters(&q, false, &["all"]).unwrap();
        assert_eq!(f.flag("all"), Some(true));
        let mut labels = HashMap::new();
        assert!(!f.pass(None, &labels));
        labels.insert("a".to_string(), "b".to_string());
        assert!(f.pass(None, &labels));
        let q = Query::parse(Some("filters={\"until\":[\"100\"]}"));
        assert_eq!(prune_filters(&q, false, &[]).unwrap_err().status, 400);
        let f = prune_filters(&q, true, &[]).unwrap();
        assert!(f.pass(Some(50), &HashMap::new()));
        assert!(!f.pass(Some(150), &HashMap::new()));
    }
}
