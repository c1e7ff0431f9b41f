//! The local image catalogue as commands see it: finding images by name or ID, the containers
//! that use them, summaries for `images`, and Docker-shaped `image inspect` and `history` data.

use std::collections::HashMap;

use containerd_client::services::v1::{Image, ListContainersRequest};
use serde_json::{json, Value};

use super::local::{self, LocalError, LocalImage};
use super::manifest::{self, Platform};
use super::reference::{self, Reference};
use super::store::{Store, StoreError};
use super::time;
use crate::client::RpcResult;

/// A lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("{arg} matches {count} images ({names}): use a longer ID or a name")]
    Ambiguous {
        arg: String,
        count: usize,
        names: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] LocalError),
}

type Result<T> = std::result::Result<T, CatalogError>;

/// Resolves a record for `platform`, else for the first platform of its index that the store
/// holds (an image pulled with `--platform` for another machine still lists and inspects).
pub async fn resolve_present(
    store: &Store,
    img: &Image,
    platform: &Platform,
) -> std::result::Result<LocalImage, LocalError> {
    let first = match local::resolve(store, img, platform).await {
        Ok(l) => return Ok(l),
        Err(e @ (LocalError::NoPlatform { .. } | LocalError::Missing { .. })) => e,
        Err(e) => return Err(e),
    };
    let Some(target) = img.target.as_ref() else {
        return Err(first);
    };
    let Ok(data) = store.read(&target.digest).await else {
        return Err(first);
    };
    let Ok(index) = serde_json::from_slice::<manifest::Index>(&data) else {
        return Err(first);
    };
    for child in &index.manifests {
        let Some(p) = &child.platform else { continue };
        if store.info(&child.digest).await?.is_some() {
            if let Ok(l) = local::resolve(store, img, p).await {
                return Ok(l);
            }
        }
    }
    Err(first)
}

/// Every record resolved for `platform` (see [`resolve_present`]); records that cannot be
/// resolved are skipped with a debug log (a pull in progress).
pub async fn all(store: &Store, platform: &Platform) -> Result<Vec<LocalImage>> {
    // Records are resolved concurrently, and once per distinct target: a listing costs about one
    // round of reads, not one per name.
    let records = store.images().await?;
    let mut first_of: HashMap<String, usize> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    for (i, img) in records.iter().enumerate() {
        let key = img
            .target
            .as_ref()
            .map(|t| t.digest.clone())
            .unwrap_or_default();
        if first_of.contains_key(&key) {
            continue;
        }
        first_of.insert(key, i);
        let (store, platform, img) = (store.clone(), platform.clone(), img.clone());
        set.spawn(async move { (i, resolve_present(&store, &img, &platform).await) });
    }
    let mut resolved: HashMap<usize, LocalImage> = HashMap::new();
    while let Some(res) = set.join_next().await {
        match res {
            Ok((i, Ok(l))) => {
                resolved.insert(i, l);
            }
            Ok((i, Err(err))) => tracing::debug!(%err, name = %records[i].name, "image skipped"),
            Err(err) => tracing::debug!(%err, "image resolution task failed"),
        }
    }
    let mut out = Vec::new();
    for img in &records {
        let key = img
            .target
            .as_ref()
            .map(|t| t.digest.clone())
            .unwrap_or_default();
        if let Some(l) = first_of.get(&key).and_then(|i| resolved.get(i)) {
            let mut l = l.clone();
            l.name = img.name.clone();
            l.record_created = img.created_at.as_ref().map(|t| t.seconds);
            out.push(l);
        }
    }
    Ok(out)
}

/// Whether `arg` looks like an image ID (a hex prefix, optionally with `sha256:`).
pub fn id_prefix(arg: &str) -> Option<String> {
    let hex = arg.strip_prefix("sha256:").unwrap_or(arg);
    (!hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| format!("sha256:{hex}"))
}

/// Finds the records `arg` names: a reference (normalised), else an image ID prefix (every
/// name of that image).
pub async fn find(store: &Store, arg: &str, platform: &Platform) -> Result<Vec<LocalImage>> {
    // A reference (normalised), else the record name exactly as given (dangling records).
    let name = Reference::parse(arg)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| arg.to_owned());
    if let Some(img) = store.image(&name).await? {
        return Ok(vec![resolve_present(store, &img, platform).await?]);
    }
    // A record named exactly as given (imported under a name that is no normalised reference).
    if name != arg {
        if let Some(img) = store.image(arg).await? {
            return Ok(vec![resolve_present(store, &img, platform).await?]);
        }
    }
    if let Some(prefix) = id_prefix(arg) {
        let found: Vec<LocalImage> = all(store, platform)
            .await?
            .into_iter()
            .filter(|l| l.id().starts_with(&prefix) || l.target.digest.starts_with(&prefix))
            .collect();
        let mut ids: Vec<&str> = found.iter().map(|l| l.id()).collect();
        ids.sort();
        ids.dedup();
        if ids.len() > 1 {
            return Err(CatalogError::Ambiguous {
                arg: arg.to_owned(),
                count: ids.len(),
                names: found
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(CatalogError::NotFound(arg.to_owned()))
}

/// The record named `name` (normalised, else exactly as given: a record imported under a name
/// that is no normalised reference), or NotFound.
pub async fn record(store: &Store, arg: &str) -> Result<Image> {
    let name = Reference::parse(arg)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| arg.to_owned());
    if let Some(img) = store.image(&name).await? {
        return Ok(img);
    }
    if name != arg {
        if let Some(img) = store.image(arg).await? {
            return Ok(img);
        }
    }
    Err(CatalogError::NotFound(arg.to_owned()))
}

/// IDs of the containers whose record names this image.
pub async fn containers_using(store: &Store, name: &str) -> Result<Vec<String>> {
    let resp = store
        .containerd()
        .containers()
        .list(ListContainersRequest {
            filters: vec![format!("image=={name}")],
        })
        .await
        .op("container list", name)
        .map_err(StoreError::from)?;
    Ok(resp
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// The image IDs containers were made from (their `burrow/image-id` labels): an image is in
/// use under every name it has, not only the one a container was run by.
pub async fn ids_in_use(store: &Store) -> Result<std::collections::HashSet<String>> {
    Ok(made_from(store, "")
        .await?
        .into_iter()
        .map(|(_, image)| image)
        .collect())
}

/// Each container's id with the image id it was made from (containers without one left out);
/// `subject` names what the listing is for in an error.
async fn made_from(store: &Store, subject: &str) -> Result<Vec<(String, String)>> {
    let resp = store
        .containerd()
        .containers()
        .list(ListContainersRequest { filters: vec![] })
        .await
        .op("container list", subject)
        .map_err(StoreError::from)?;
    Ok(resp
        .into_inner()
        .containers
        .into_iter()
        .filter_map(|mut c| {
            let image = c.labels.remove(crate::containers::labels::IMAGE_ID)?;
            Some((c.id, image))
        })
        .collect())
}

/// The first container made from image `id` whose task is running or paused: an image
/// `rmi -f` cannot remove (Docker's "cannot be forced").
pub async fn running_user_of(store: &Store, id: &str) -> Result<Option<String>> {
    use containerd_client::services::v1::ListTasksRequest;
    use containerd_client::types::v1::Status;
    let users: Vec<String> = made_from(store, id)
        .await?
        .into_iter()
        .filter(|(_, image)| image == id)
        .map(|(container, _)| container)
        .collect();
    if users.is_empty() {
        return Ok(None);
    }
    let tasks = store
        .containerd()
        .tasks()
        .list(ListTasksRequest::default())
        .await
        .op("task list", id)
        .map_err(StoreError::from)?
        .into_inner()
        .tasks;
    Ok(tasks
        .into_iter()
        .find(|t| {
            users.contains(&t.id)
                && matches!(
                    Status::try_from(t.status),
                    Ok(Status::Running | Status::Paused | Status::Pausing)
                )
        })
        .map(|t| t.id))
}

/// Docker's human size: decimal units, four significant digits ("1.036MB", "0B").
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes.max(0) as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as usize) + 1
    };
    let decimals = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    format!("{s}{}", units[i])
}

/// Whether a record is dangling as Docker means it: referenced by neither a tag nor a digest.
/// Every containerd record has a name, so only names that are no reference at all (nerdctl's
/// `<none>@sha256:...`, bare digests) count.
pub fn is_dangling(name: &str) -> bool {
    Reference::parse(name).is_err()
}

/// Repository and tag columns for a record name (`<none>` where absent).
pub fn repo_tag(name: &str) -> (String, String) {
    match Reference::parse(name) {
        Ok(r) => (
            r.familiar_repository(),
            r.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        Err(_) => ("<none>".into(), "<none>".into()),
    }
}

/// The config's creation time in epoch seconds.
pub fn created(l: &LocalImage) -> Option<i64> {
    l.config.created.as_deref().and_then(time::parse_rfc3339)
}

/// A row of `burrow images` with Docker's JSON keys.
pub fn summary(l: &LocalImage, no_trunc: bool) -> Value {
    let (repo, tag) = repo_tag(&l.name);
    let id = if no_trunc {
        l.id().to_owned()
    } else {
        manifest::short_id(l.id())
    };
    let created = created(l);
    json!({
        "Containers": "N/A",
        "CreatedAt": created.map(time::go_string).unwrap_or_default(),
        "CreatedSince": created.map(time::ago).unwrap_or_else(|| "N/A".into()),
        "Digest": l.target.digest,
        "ID": id,
        "Repository": repo,
        "Tag": tag,
        "Size": human_size(l.content_size()),
        "SharedSize": "N/A",
        "UniqueSize": "N/A",
        "VirtualSize": human_size(l.content_size()),
        "Name": l.name,
    })
}

/// The deprecated `ContainerConfig` of image inspect (API 1.44 and older still carry it):
/// the config's `container_config` where the image has one, else an empty container config.
/// docker-compose 1.x reads its `Volumes` whenever it recreates a container.
pub fn container_config(raw: &Value) -> Value {
    match raw.get("container_config") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => empty_container_config(),
    }
}

/// Docker's container config with every field it always shows at its zero value.
fn empty_container_config() -> Value {
    json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    })
}

/// Image inspect's `Config`: the image's config over Docker's always-present fields, so
/// `{{.Config.User}}` of an image without a user is "" as in Docker, not a template error.
pub fn docker_config(config: Option<&Value>) -> Value {
    let Some(Value::Object(given)) = config else {
        return Value::Null;
    };
    let mut out = empty_container_config();
    if let Value::Object(o) = &mut out {
        o.extend(given.clone());
    }
    out
}

/// `image inspect` output for one image, given every record that shares its ID.
pub fn inspect(l: &LocalImage, names: &[String]) -> Value {
    let mut tags = Vec::new();
    let mut digests = Vec::new();
    for n in names {
        if let Ok(r) = Reference::parse(n) {
            if r.tag.is_some() {
                tags.push(r.familiar());
            }
            let d = format!("{}@{}", r.familiar_repository(), l.target.digest);
            if !digests.contains(&d) {
                digests.push(d);
            }
        }
    }
    let raw = &l.config_raw;
    json!({
        "Id": l.id(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(Value::String(String::new())),
        "Created": l.config.created.clone().unwrap_or_default(),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(Value::String(String::new())),
        "Author": l.config.author.clone().unwrap_or_default(),
        "Config": docker_config(l.config.config.as_ref()),
        "Container": raw.get("container").cloned().unwrap_or(Value::String(String::new())),
        "ContainerConfig": container_config(raw),
        "Architecture": l.config.architecture,
        "Variant": l.config.variant,
        "Os": l.config.os,
        "Size": l.content_size(),
        "RootFS": {
            "Type": if l.config.rootfs.kind.is_empty() { "layers".to_owned() } else { l.config.rootfs.kind.clone() },
            "Layers": l.config.rootfs.diff_ids,
        },
        "Metadata": {
            "LastTagTime": l.record_created.map(time::format_unix).unwrap_or_else(|| time::ZERO.into()),
        },
    })
}

/// `image inspect` output for each of `args` (names or IDs) in order, resolved for `platform`,
/// or why that one was not found; RepoTags list every name of the image.
pub async fn inspect_each(
    store: &Store,
    args: &[String],
    platform: &Platform,
) -> Result<Vec<Result<Value>>> {
    let everything = all(store, &Platform::host()).await?;
    let names = names_by_id(&everything);
    let mut docs = Vec::new();
    for arg in args {
        docs.push(find(store, arg, platform).await.map(|found| {
            let l = &found[0];
            let all_names = names
                .get(l.id())
                .cloned()
                .unwrap_or_else(|| vec![l.name.clone()]);
            let mut doc = inspect(l, &all_names);
            // Docker always has it (clients' templates index it); the snapshotter holds the
            // image's filesystem here.
            doc["GraphDriver"] = json!({ "Data": null, "Name": store.snapshotter });
            doc
        }));
    }
    Ok(docs)
}

/// One step of an image's history, newest first in [`history_entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image ID on the newest step, `<missing>` on the others (as Docker shows them).
    pub id: String,
    /// When the step ran, as the config says it (RFC 3339), if it does.
    pub created: Option<String>,
    pub created_by: String,
    /// The size of the layer the step made (0 for an empty layer).
    pub size: i64,
    pub comment: String,
}

impl HistoryEntry {
    /// The step's time as Unix seconds (0 when unknown).
    pub fn created_unix(&self) -> i64 {
        self.created
            .as_deref()
            .and_then(time::parse_rfc3339)
            .unwrap_or(0)
    }
}

/// The image's history, newest first: the config's steps with their layers' sizes, or one
/// step per layer when the config has no history.
pub fn history_entries(l: &LocalImage) -> Vec<HistoryEntry> {
    let mut layers = l.manifest.layers.iter();
    let mut rows: Vec<HistoryEntry> = l
        .config
        .history
        .iter()
        .map(|h| HistoryEntry {
            id: "<missing>".into(),
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size: if h.empty_layer {
                0
            } else {
                layers.next().map(|d| d.size).unwrap_or(0)
            },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    if rows.is_empty() {
        rows = l
            .manifest
            .layers
            .iter()
            .map(|d| HistoryEntry {
                id: "<missing>".into(),
                created: None,
                created_by: String::new(),
                size: d.size,
                comment: String::new(),
            })
            .collect();
    }
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first.id = l.id().to_owned();
    }
    rows
}

/// The image's history as `burrow history` shows it, newest first: times ago and sizes in
/// units when `human`, else the RFC 3339 time and bytes (Docker's `--human=false`).
pub fn history(l: &LocalImage, human: bool) -> Vec<Value> {
    history_entries(l)
        .into_iter()
        .map(|h| {
            let at = h.created.clone().unwrap_or_default();
            json!({
                "ID": h.id,
                "CreatedAt": at,
                "CreatedSince": history_when(&at, human),
                "CreatedBy": h.created_by,
                "Size": match human {
                    true => human_size(h.size),
                    false => h.size.to_string(),
                },
                "Comment": h.comment,
            })
        })
        .collect()
}

/// A history step's time as the CREATED column shows it (`human`: how long ago).
pub fn history_when(created: &str, human: bool) -> String {
    match time::parse_rfc3339(created) {
        Some(t) if human => time::ago(t),
        Some(_) => created.to_string(),
        None => "N/A".into(),
    }
}

/// Groups record names by image ID (for RepoTags and for rmi's "referenced in multiple").
pub fn names_by_id(images: &[LocalImage]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for l in images {
        m.entry(l.id().to_owned()).or_default().push(l.name.clone());
    }
    m
}

/// Docker's familiar spelling of a record name.
pub fn familiar(name: &str) -> String {
    reference::familiar(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_config_is_the_images_or_an_empty_one() {
        let empty = container_config(&json!({"config": {}}));
        assert_eq!(empty["Volumes"], Value::Null);
        assert_eq!(empty["Image"], "");
        let built = json!({"container_config": {"Cmd": ["/bin/sh"], "Volumes": {"/v": {}}}});
        assert_eq!(container_config(&built)["Volumes"], json!({"/v": {}}));
    }

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1036386), "1.036MB");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(1000), "1kB");
    }

    #[test]
    fn ids_and_names() {
        assert_eq!(id_prefix("abc"), Some("sha256:abc".into()));
        assert_eq!(id_prefix("busybox"), None);
        assert_eq!(
            repo_tag("docker.io/library/busybox:latest"),
            ("busybox".to_owned(), "latest".to_owned())
        );
    }
}
