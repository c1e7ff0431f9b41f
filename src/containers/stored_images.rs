//! The shared store's images as `images`, `image inspect` and `history` show them: a stored
//! image that is not in the local containerd yet is listed and inspected from its JSON file
//! (name, config) and the size of its SquashFS file, as a pulled image would be.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::shared::{find, list, store_dirs, Entry};
use crate::images::catalog::{self, CatalogError};
use crate::images::list::Candidate;
use crate::images::manifest::{self, Platform};
use crate::images::reference::familiar;
use crate::images::store::Store;
use crate::images::time;

/// Rows of `burrow images` for the stored images not here (`have`: the names that are) that
/// `keep` keeps, as `images` prints them, the SquashFS file's size as the size; "Containers"
/// says "store".
pub fn rows(
    dirs: &[PathBuf],
    have: &[String],
    no_trunc: bool,
    keep: impl Fn(&Candidate) -> bool,
) -> Vec<Value> {
    list(dirs)
        .into_iter()
        .filter(|(_, e)| !have.contains(&e.name))
        .filter_map(|(dir, e)| {
            let doc = inspect_stored(&dir, &e);
            let created = doc["Created"].as_str().and_then(time::parse_rfc3339);
            let c = Candidate {
                name: &e.name,
                labels: &doc["Config"]["Labels"],
                created,
            };
            if !keep(&c) {
                return None;
            }
            let (repo, tag) = catalog::repo_tag(&e.name);
            let size = catalog::human_size(doc["Size"].as_i64().unwrap_or(0));
            let id = match no_trunc {
                true => e.config_digest.clone(),
                false => manifest::short_id(&e.config_digest),
            };
            Some(json!({
                "Containers": "store",
                "CreatedAt": created.map(time::go_string).unwrap_or_default(),
                "CreatedSince": created.map(time::ago).unwrap_or_else(|| "N/A".into()),
                "Digest": "",
                "ID": id,
                "Repository": repo,
                "Tag": tag,
                "Size": size,
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "VirtualSize": size,
                "Name": e.name,
                "Store": doc["GraphDriver"]["Data"]["File"],
            }))
        })
        .collect()
}

/// `image inspect`'s documents for `queries`, in order: each the local image's, else that of
/// the store's image the query names (`GraphDriver` then names the SquashFS file it runs from).
pub async fn inspect_each(
    store: &Store,
    queries: &[String],
    platform: &Platform,
) -> Result<Vec<Result<Value, CatalogError>>, CatalogError> {
    let docs = catalog::inspect_each(store, queries, platform).await?;
    Ok(docs
        .into_iter()
        .zip(queries)
        .map(|(doc, q)| match doc {
            Err(CatalogError::NotFound(n)) => find(&store_dirs(), q)
                .map(|(dir, e)| inspect_stored(&dir, &e))
                .ok_or(CatalogError::NotFound(n)),
            found => found,
        })
        .collect())
}

/// [`inspect_each`] for one query.
pub async fn inspect(store: &Store, q: &str, platform: &Platform) -> Result<Value, CatalogError> {
    inspect_each(store, &[q.to_string()], platform)
        .await?
        .remove(0)
}

/// `history`'s rows for `q` (newest first): the local image's (for the platform `asked`,
/// else this host's), else the store's image `q` names, whose layers' sizes the store does not
/// keep ("N/A").
pub async fn history(
    store: &Store,
    q: &str,
    asked: Option<&Platform>,
    human: bool,
) -> Result<Vec<Value>, CatalogError> {
    let host = Platform::host();
    let platform = asked.unwrap_or(&host);
    match catalog::find(store, q, platform).await {
        // With --platform, another platform's content is never shown for the one asked for
        // (without, an image of another platform only shows its own).
        Ok(found)
            if asked.is_some()
                && (found[0].config.os != platform.os
                    || found[0].config.architecture != platform.architecture) =>
        {
            let c = &found[0].config;
            Err(crate::images::local::LocalError::NoPlatform {
                name: q.to_string(),
                platform: platform.display(),
                available: format!(
                    "{}/{} here; pull the other with --platform",
                    c.os, c.architecture
                ),
            }
            .into())
        }
        Ok(found) => Ok(catalog::history(&found[0], human)),
        Err(CatalogError::NotFound(n)) => find(&store_dirs(), q)
            .map(|(_, e)| history_stored(&e, human))
            .ok_or(CatalogError::NotFound(n)),
        Err(e) => Err(e),
    }
}

/// The inspect documents of the store's images that are not here (`have`: the names that are),
/// for lists that show them beside the local ones (the Docker API's image list).
pub fn inspect_not_here(have: &[String]) -> Vec<Value> {
    list(&store_dirs())
        .into_iter()
        .filter(|(_, e)| !have.contains(&e.name))
        .map(|(dir, e)| inspect_stored(&dir, &e))
        .collect()
}

fn config_of(e: &Entry) -> Value {
    serde_json::from_str(&e.config).unwrap_or(Value::Null)
}

fn text(v: &Value) -> Value {
    v.as_str()
        .map_or(Value::String(String::new()), |s| s.into())
}

/// The inspect document of a stored image, shaped as [`catalog::inspect`]'s.
fn inspect_stored(dir: &Path, e: &Entry) -> Value {
    let raw = config_of(e);
    let file = dir.join(&e.file);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    json!({
        "Id": e.config_digest,
        "RepoTags": [familiar(&e.name)],
        "RepoDigests": [],
        "Parent": "",
        "Comment": text(&raw["comment"]),
        "Created": text(&raw["created"]),
        "DockerVersion": text(&raw["docker_version"]),
        "Author": text(&raw["author"]),
        "Config": raw["config"],
        "Container": text(&raw["container"]),
        "ContainerConfig": catalog::container_config(&raw),
        "Architecture": raw["architecture"],
        "Variant": raw["variant"],
        "Os": raw["os"],
        "Size": size,
        "RootFS": {
            "Type": "layers",
            "Layers": raw["rootfs"]["diff_ids"],
        },
        "GraphDriver": {
            "Name": "squashfuse",
            "Data": { "File": file.display().to_string() },
        },
        // Never tagged here: Go's zero time, as Docker gives it (clients parse the field as a time).
        "Metadata": { "LastTagTime": time::ZERO },
    })
}

/// The history rows of a stored image, newest first, as [`catalog::history`]'s.
fn history_stored(e: &Entry, human: bool) -> Vec<Value> {
    let raw = config_of(e);
    let steps = raw["history"].as_array().cloned().unwrap_or_default();
    let mut rows: Vec<Value> = steps
        .iter()
        .map(|h| {
            let created = h["created"].as_str().unwrap_or_default();
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let zero = match human {
                true => catalog::human_size(0),
                false => "0".into(),
            };
            json!({
                "ID": "<missing>",
                "CreatedAt": created,
                "CreatedSince": catalog::history_when(created, human),
                "CreatedBy": text(&h["created_by"]),
                "Size": if empty { zero } else { "N/A".into() },
                "Comment": text(&h["comment"]),
            })
        })
        .collect();
    rows.reverse();
    if let Some(first) = rows.first_mut() {
        first["ID"] = e.config_digest.clone().into();
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dir: &Path) -> Entry {
        let config = json!({
            "created": "2024-01-02T03:04:05Z",
            "architecture": "amd64",
            "os": "linux",
            "config": { "Cmd": ["sh"] },
            "rootfs": { "type": "layers", "diff_ids": ["sha256:aa"] },
            "history": [
                { "created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs /" },
                { "created_by": "CMD [\"sh\"]", "empty_layer": true },
            ],
        });
        std::fs::write(dir.join("docker.io_lab_x_1.sqsh"), vec![0u8; 4096]).unwrap();
        Entry {
            name: "docker.io/lab/x:1".into(),
            config: config.to_string(),
            config_digest: format!("sha256:{}", "b".repeat(64)),
            chain_id: "sha256:aa".into(),
            passwd: String::new(),
            group: String::new(),
            file: "docker.io_lab_x_1.sqsh".into(),
            owners_squashed: false,
        }
    }

    #[test]
    fn a_stored_image_inspects_as_a_pulled_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(dir.path());
        let v = inspect_stored(dir.path(), &e);
        assert_eq!(v["Id"], e.config_digest);
        assert_eq!(v["RepoTags"], json!(["lab/x:1"]));
        assert_eq!(v["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Size"], 4096);
        assert_eq!(v["RootFS"]["Layers"], json!(["sha256:aa"]));
        assert_eq!(v["Comment"], "");
        assert_eq!(v["Metadata"]["LastTagTime"], time::ZERO);
        assert!(v["GraphDriver"]["Data"]["File"]
            .as_str()
            .unwrap()
            .ends_with("docker.io_lab_x_1.sqsh"));
    }

    #[test]
    fn a_stored_images_history_is_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(dir.path());
        let rows = history_stored(&e, true);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["ID"], e.config_digest);
        assert_eq!(rows[0]["CreatedBy"], "CMD [\"sh\"]");
        assert_eq!(rows[0]["Size"], catalog::human_size(0));
        assert_eq!(rows[1]["ID"], "<missing>");
        assert_eq!(rows[1]["Size"], "N/A");
        assert_eq!(
            rows[1]["CreatedSince"],
            time::ago(time::parse_rfc3339("2024-01-02T03:04:05Z").unwrap())
        );
    }
}
