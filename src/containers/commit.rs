//! `burrow commit`: a container's writable layer (containerd's diff of its snapshot against the
//! snapshot's parent) as a new layer over its image's, with a new config (the `--change`
//! instructions applied), manifest and record; a running container is paused meanwhile unless
//! asked not to be (as Docker's `commit --pause`).

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{bail, Context};
use containerd_client::services::v1::snapshots::{StatSnapshotRequest, ViewSnapshotRequest};
use containerd_client::services::v1::DiffRequest;

use super::record::{self, State};
use super::{ops, Ctx};
use crate::dockerfile::{apply_changes, Instruction};
use crate::images::import::{write_image, Imported};
use crate::images::manifest::{self, History, Platform};
use crate::images::store::{from_pb, Store};
use crate::images::{local, reference::Reference, time};

/// What the new image says about itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub message: Option<String>,
    pub author: Option<String>,
    /// Pause a running container while its changes are read (Docker's default).
    pub pause: bool,
    /// Dockerfile instructions applied to the new image's config (`--change`).
    pub changes: Vec<Instruction>,
    /// A container config the client gave (the Docker API's commit body), which the changes
    /// apply to instead of the container's own; what it leaves empty the container's fills.
    pub config: Option<serde_json::Value>,
}

/// What `commit` made.
#[derive(Debug, Clone)]
pub struct Committed {
    pub image: Imported,
    /// A pause was asked for a running container that cannot be paused here (no freezer
    /// cgroup: rootless on cgroup v1), so it was committed running.
    pub unpausable: bool,
}

/// Commits the container `query` names as an image named `name` (none: untagged).
pub async fn commit(
    ctx: &Ctx,
    query: &str,
    name: Option<&str>,
    opts: &Options,
) -> anyhow::Result<Committed> {
    let name = name
        .map(|n| Reference::parse(n).map(|r| r.to_string()))
        .transpose()
        .context("invalid reference format")?;
    let c = ctx.find(query).await?;
    super::userns::refuse_shifted(&c.labels, "commit", query)?;
    let store = &Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let image = match store.image(&c.image).await? {
        Some(i) => i,
        // Untagged since (`rmi -f`): kept by its ID, under <none>.
        None => {
            let by_id = match c.labels.get(super::labels::IMAGE_ID) {
                Some(id) => crate::images::catalog::find(store, id, &Platform::host())
                    .await
                    .ok()
                    .and_then(|f| f.into_iter().next()),
                None => None,
            };
            let record = match by_id {
                Some(l) => store.image(&l.name).await?,
                None => None,
            };
            record
                .with_context(|| format!("the image of container {query} ({}) is gone", c.image))?
        }
    };
    if let Some(file) = image.labels.get(super::shared::STORE_LABEL) {
        // Its record has the config but no layer blobs: a new image on top would list layers
        // it cannot carry.
        bail!(
            "cannot commit container {query}: its image {} runs from the shared image store ({file}), which holds no layers to build on; pull the image (`burrow pull {}`), run the container from it and commit that",
            c.image,
            c.image
        );
    }
    let base = local::resolve(store, &image, &Platform::host()).await?;
    let mut config = base.config.clone();
    // As Docker: the container's config (what it ran with), or the client's, changes applied,
    // the container's filling what is left empty.
    let from_container =
        super::commit_config::of_container(ctx, &c, &config.config.take().unwrap_or_default());
    let mut image_config = match &opts.config {
        Some(given) => super::commit_config::image_keys(given),
        None => from_container.clone(),
    };
    apply_changes(&mut image_config, &opts.changes).context("commit --change")?;
    super::commit_config::merge(&mut image_config, &from_container);
    config.config = Some(image_config);
    let running = matches!(record::state(ctx, &c.id).await?, State::Running { .. });
    let unpausable = opts.pause && running && !ops::pausable(ctx);
    let paused = opts.pause && running && !unpausable;
    if paused {
        ops::pause(ctx, &c, false).await.context(
            "commit pauses a running container (use --pause=false to commit it running)",
        )?;
    }
    let leased = store.with_lease("commit").await?;
    let result = async {
        let (layer, diff_id) =
            diff_layer(ctx, &leased, &c.snapshotter, &c.snapshot_key, &c.id).await?;
        let now = time::rfc3339(SystemTime::now());
        let mut config = config;
        config.created = Some(now.clone());
        if opts.author.is_some() {
            config.author = opts.author.clone();
        }
        config.rootfs.diff_ids.push(diff_id);
        config.history.push(History {
            created: Some(now),
            author: opts.author.clone(),
            created_by: Some(created_by(&c)),
            comment: opts.message.clone(),
            empty_layer: false,
        });
        let mut layers = base.manifest.layers.clone();
        layers.push(layer);
        write_image(&leased, layers, Vec::new(), &config, name).await
    }
    .await;
    if paused {
        if let Err(err) = ops::pause(ctx, &c, true).await {
            tracing::warn!(%err, "could not unpause the container after committing it");
        }
    }
    if let Err(err) = leased.release().await {
        tracing::warn!(%err, "could not release the commit lease (it expires in a day)");
    }
    result.map(|image| Committed { image, unpausable })
}

/// The changes of the snapshot `key` against its parent as a new gzip layer in the content
/// store (through containerd's diff service, under `leased`'s lease): its descriptor and diff
/// id. `id` names the temporary view and the diff's ingest (`burrow commit`, the builder).
pub async fn diff_layer(
    ctx: &Ctx,
    leased: &Store,
    snapshotter: &str,
    key: &str,
    id: &str,
) -> anyhow::Result<(manifest::Descriptor, String)> {
    let client = leased.containerd();
    let parent = client
        .snapshots()
        .stat(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        })
        .await?
        .into_inner()
        .info
        .map(|i| i.parent)
        .unwrap_or_default();
    let view_key = format!("burrow-commit-{id}");
    let left = client
        .snapshots()
        .view(ViewSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: view_key.clone(),
            parent,
            labels: HashMap::new(),
        })
        .await?
        .into_inner()
        .mounts;
    let right = ctx.client.snapshot_mounts(snapshotter, key).await?;
    let diffed = client
        .diff()
        .diff(DiffRequest {
            left,
            right,
            media_type: manifest::OCI_LAYER_GZIP.into(),
            r#ref: format!("burrow-commit-{id}"),
            labels: HashMap::new(),
            source_date_epoch: None,
        })
        .await;
    let _ = leased.remove_snapshot(&view_key).await;
    let layer = from_pb(
        &diffed?
            .into_inner()
            .diff
            .context("containerd's diff returned no layer")?,
    );
    let info = leased
        .info(&layer.digest)
        .await?
        .context("the new layer is not in the content store")?;
    let diff_id = info
        .labels
        .get("containerd.io/uncompressed")
        .cloned()
        .context("the new layer has no uncompressed digest")?;
    Ok((layer, diff_id))
}

/// The history's `created_by`, as Docker writes it for a commit: the container's command line.
fn created_by(c: &containerd_client::services::v1::Container) -> String {
    record::spec_of(c)
        .and_then(|s| s.process().clone())
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
        .join(" ")
}
