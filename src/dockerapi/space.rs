//! Disk space through the API: `/system/df` (the library's `diskusage`, as `burrow system
//! df`) and the prune endpoints of containers, images, volumes and networks (the library's
//! prunes, as the CLI's `prune` commands), with Docker's filters and answers.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::Response;
use serde_json::{json, Value};

use super::containers::summary;
use super::error::ApiError;
use super::http::{self, Body, Query};
use crate::containers::diskusage::{self, tree_size};
use crate::containers::listing::{self, ListOptions};
use crate::containers::logquery::parse_time;
use crate::containers::volumes::{self, InUse, LabelFilter, Volumes};
use crate::containers::{networks, ops, Ctx};
use crate::images::manifest::Platform;
use crate::images::store::Store;
use crate::images::{catalog, remove, userdb};

/// A prune's filters: `until` (a time), `label`/`label!`, and the flags some prunes take.
#[derive(Debug, Default)]
struct PruneFilters {
    until: Option<i64>,
    labels: Vec<LabelFilter>,
    flags: HashMap<String, bool>,
}

impl PruneFilters {
    /// Reads `filters`, taking `until` when `until` is allowed and the boolean keys `flags`.
    fn parse(q: &Query, until: bool, flags: &[&str]) -> Result<PruneFilters, ApiError> {
        let mut out = PruneFilters::default();
        for f in q.filters()? {
            let (k, v) = f.split_once('=').unwrap_or((f.as_str(), ""));
            match k {
                "label" | "label!" => out.labels.push(f.parse().map_err(
                    |e: crate::containers::volumes::VolumeError| {
                        ApiError::bad_request(e.to_string())
                    },
                )?),
                "until" if until => {
                    let t = parse_time("until", v, SystemTime::now())
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    out.until = Some(i64::try_from(secs).unwrap_or(i64::MAX));
                }
                k if flags.contains(&k) => {
                    let on = match v {
                        "1" | "true" | "True" => true,
                        "0" | "false" | "False" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter '{f}': give {k}=true or {k}=false"
                            )))
                        }
                    };
                    out.flags.insert(k.to_string(), on);
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid filter '{k}' for this prune"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Whether an object created at `created` (epoch seconds) with `labels` passes.
    fn pass(&self, created: Option<i64>, labels: &HashMap<String, String>) -> bool {
        let young = match (self.until, created) {
            (Some(u), Some(c)) => c >= u,
            (Some(_), None) => true,
            (None, _) => false,
        };
        !young && self.labels.iter().all(|l| l.matches(labels))
    }
}

/// `POST /containers/prune?filters=` (until, label): the stopped containers removed.
pub async fn prune_containers(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = PruneFilters::parse(q, true, &[])?;
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
    let removed = ops::prune_matching(ctx, |c| {
        let created = c.created_at.as_ref().map(|t| t.seconds);
        f.pass(created, &c.labels)
    })
    .await?;
    let space: u64 = removed.iter().filter_map(|id| sizes.get(id)).sum();
    Ok(http::json(
        200,
        &json!({ "ContainersDeleted": removed, "SpaceReclaimed": space }),
    ))
}

/// `POST /images/prune?filters=` (dangling, until, label): dangling images no container
/// uses, every unused one with `dangling=false`.
pub async fn prune_images(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    let f = PruneFilters::parse(q, true, &["dangling"])?;
    let all = !f.flags.get("dangling").copied().unwrap_or(true);
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let images = catalog::all(&store, &Platform::host())
        .await
        .map_err(anyhow::Error::from)?;
    let mut passing = std::collections::HashSet::new();
    let mut sizes = HashMap::new();
    for l in &images {
        let labels: HashMap<String, String> = l
            .config
            .config
            .as_ref()
            .and_then(|c| c.get("Labels"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if f.pass(catalog::created(l), &labels) {
            passing.insert(l.name.clone());
        }
        sizes.insert(l.id().to_string(), l.content_size().max(0) as u64);
    }
    let cache = userdb::cache_dir(&ctx.ep.data_root);
    let removed = remove::prune_matching(&store, &cache, all, |name| passing.contains(name))
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
    let f = PruneFilters::parse(q, false, &["all"])?;
    let all = f.flags.get("all").copied().unwrap_or(false);
    let vols = Volumes::of(ctx);
    let sizes: HashMap<String, u64> = vols
        .list()
        .into_iter()
        .map(|v| (v.name.clone(), tree_size(&v.mountpoint)))
        .collect();
    let used = InUse::of(ctx).await?;
    let removed = volumes::prune(ctx, &used, all, &f.labels)
        .await
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    let space: u64 = removed.iter().filter_map(|n| sizes.get(n)).sum();
    Ok(http::json(
        200,
        &json!({ "VolumesDeleted": removed, "SpaceReclaimed": space }),
    ))
}

/// `POST /networks/prune`: the networks no container is on (filters are refused: burrow's
/// networks record neither a creation time nor labels to match).
pub async fn prune_networks(ctx: &Ctx, q: &Query) -> Result<Response<Body>, ApiError> {
    if !q.filters()?.is_empty() {
        return Err(ApiError::bad_request(
            "burrow does not take filters on POST /networks/prune: give none",
        ));
    }
    let deleted: Vec<String> = networks::prune(ctx)
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
            let mut v = summary(&c.summary);
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
        let f = PruneFilters::parse(&q, false, &["all"]).unwrap();
        assert_eq!(f.flags.get("all"), Some(&true));
        let mut labels = HashMap::new();
        assert!(!f.pass(None, &labels));
        labels.insert("a".to_string(), "b".to_string());
        assert!(f.pass(None, &labels));
        let q = Query::parse(Some("filters={\"until\":[\"100\"]}"));
        assert!(PruneFilters::parse(&q, false, &[]).is_err());
        let f = PruneFilters::parse(&q, true, &[]).unwrap();
        assert!(f.pass(Some(50), &HashMap::new()));
        assert!(!f.pass(Some(150), &HashMap::new()));
    }
}
