//! The shared read-only image store: an image squashed into one SquashFS file (plus a small
//! JSON file: its name, config and users) under a directory every node reads (`burrow image
//! squash IMAGE --to DIR`), and started from there on any node without a pull or an unpack:
//! the file is mounted with squashfuse inside the launcher's user namespace as the image's
//! committed snapshot, so containers get their usual overlay (a writable upper on node-local
//! disk) over it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::copy::{Op, Root};
use super::Ctx;
use crate::images::manifest::Descriptor;
use crate::images::store::Store;

/// The label of an image record made from the store: the SquashFS file it runs from.
pub const STORE_LABEL: &str = "burrow.shared-store";
/// The label of that record saying where the file is mounted (inside the launcher).
pub const MOUNT_LABEL: &str = "burrow.shared-store.mountpoint";
/// The environment variable naming store dirs (colon-separated), before burrow.toml's.
pub const STORE_ENV: &str = "BURROW_IMAGE_STORE";

/// What the JSON file beside a squashed image says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The image's name as it was squashed (`registry/repo:tag`).
    pub name: String,
    /// Its config blob, byte for byte (the image id is its digest).
    pub config: String,
    pub config_digest: String,
    /// The chain id of its layers: the snapshot containers hang from.
    pub chain_id: String,
    /// /etc/passwd and /etc/group, read once when squashed (a USER by name needs them).
    pub passwd: String,
    pub group: String,
    /// The SquashFS file's name in the same dir.
    pub file: String,
    /// Squashed by a user without subordinate ids: every file is root's (the image's other
    /// owners were lost when it was unpacked there).
    #[serde(default)]
    pub owners_squashed: bool,
}

/// What `squash` made.
#[derive(Debug, Clone)]
pub struct Squashed {
    pub file: PathBuf,
    /// See [`Entry::owners_squashed`].
    pub owners_squashed: bool,
}

/// Whether this endpoint's launcher maps one id only (a user without subordinate ids).
fn single_id(ctx: &Ctx) -> bool {
    ctx.ep.launcher.as_ref().is_some_and(|l| l.single_id())
}

/// The store dirs: `$BURROW_IMAGE_STORE`, then burrow.toml's `image_store`.
pub fn store_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os(STORE_ENV)
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.extend(crate::config::defaults().image_store);
    dirs.retain(|d| d.is_absolute());
    dirs
}

/// The file name (without extension) an image is stored under.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect()
}

/// Every image in `dirs` (a JSON file that does not parse is skipped).
pub fn list(dirs: &[PathBuf]) -> Vec<(PathBuf, Entry)> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Some(entry) = std::fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
                {
                    out.push((d.clone(), entry));
                }
            }
        }
    }
    out
}

/// The stored image `name` names (as Docker resolves names), and its dir.
pub fn find(dirs: &[PathBuf], name: &str) -> Option<(PathBuf, Entry)> {
    let names = crate::images::runnable::candidate_names(name);
    let id = crate::images::catalog::id_prefix(name);
    list(dirs).into_iter().find(|(_, e)| {
        names.iter().any(|n| n == &e.name)
            || id
                .as_deref()
                .is_some_and(|p| e.config_digest.starts_with(p))
    })
}

/// Runs the cp helper (in the launcher's namespaces) with `root` and `op`.
fn helper(ctx: &Ctx, root: Root, op: Op, what: &str) -> anyhow::Result<Vec<u8>> {
    helper_in(ctx.launcher_pid(), root, op, what)
}

/// [`helper`] in the namespaces of the launcher child `launcher_pid` (None: here).
fn helper_in(launcher_pid: Option<i32>, root: Root, op: Op, what: &str) -> anyhow::Result<Vec<u8>> {
    super::copy::run_helper(launcher_pid, root, op, what)
}

/// Writes `image` (pulled first when it is not here; this host's platform) into `dir` as one
/// SquashFS file and its JSON; returns the file. Written under temporary names and renamed, so
/// a reader on another node never sees half a file; an image already there with the same id is
/// left as it is.
pub async fn squash(ctx: &Ctx, image: &str, dir: &Path) -> anyhow::Result<Squashed> {
    let mut img = match ctx.images.resolve(image).await {
        Ok(i) => i,
        Err(crate::images::runnable::ImageError::NotFound(_)) => {
            super::create::pull(ctx, image, None, &|_| {}).await?;
            ctx.images.resolve(image).await?
        }
        Err(e) => return Err(e.into()),
    };
    if !dir.is_dir() {
        bail!(
            "{}: no such directory (make it, on the filesystem every node reads)",
            dir.display()
        );
    }
    let stem = file_stem(&img.name);
    let file = dir.join(format!("{stem}.sqsh"));
    let json = dir.join(format!("{stem}.json"));
    if let Ok(Some(old)) = std::fs::read(&json).map(|b| serde_json::from_slice::<Entry>(&b).ok()) {
        if old.config_digest == img.config_digest && file.exists() {
            return Ok(Squashed {
                file,
                owners_squashed: old.owners_squashed,
            });
        }
    }
    ctx.images
        .load_user_db(&mut img)
        .await
        .context("reading /etc/passwd from the image")?;
    // Under a lease: containerd's garbage collector removes a snapshot nothing refers to, and
    // runs right after a pull.
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep)
        .with_lease("squash")
        .await?;
    let key = format!("burrow-squash-{}", std::process::id());
    let _ = store.remove_snapshot(&key).await;
    let mounts = store.prepare(&key, &img.chain_id).await?;
    let tmp = dir.join(format!(".{stem}.sqsh.{}", std::process::id()));
    let made = helper(
        ctx,
        Root::of_mounts(&mounts),
        Op::Squash {
            output: tmp.display().to_string(),
        },
        &format!("squashing {}", img.name),
    );
    let _ = store.remove_snapshot(&key).await;
    let _ = store.release().await;
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let config = ctx.images.read_blob(&img.config_digest).await?;
    let entry = Entry {
        name: img.name.clone(),
        config: String::from_utf8(config).context("the image config is not UTF-8")?,
        config_digest: img.config_digest.clone(),
        chain_id: img.chain_id.clone(),
        passwd: img.defaults.passwd.clone(),
        group: img.defaults.group.clone(),
        file: format!("{stem}.sqsh"),
        owners_squashed: single_id(ctx),
    };
    let tmp_json = dir.join(format!(".{stem}.json.{}", std::process::id()));
    std::fs::write(&tmp_json, serde_json::to_vec_pretty(&entry)?)?;
    std::fs::rename(&tmp, &file)?;
    std::fs::rename(&tmp_json, &json)?;
    Ok(Squashed {
        file,
        owners_squashed: entry.owners_squashed,
    })
}

/// Makes the stored image runnable here without a pull: its config and a manifest (no layers)
/// in containerd's content store, its SquashFS mounted as the committed snapshot of its chain
/// id, and an image record under its name labelled with the file. For a user without
/// subordinate ids the file is unpacked instead (squashfuse would show the image's other
/// owners as unmapped ids, whose files root inside could not read or write): a copy, owners all
/// the user's, as a pull gives that user; `unpacked` hears when that happens.
pub async fn import(
    ctx: &Ctx,
    dir: &Path,
    e: &Entry,
    unpacked: &(dyn Fn() + Sync),
) -> anyhow::Result<()> {
    let file = dir.join(&e.file);
    if !file.is_file() {
        bail!(
            "{}: the store's file for {} is missing",
            file.display(),
            e.name
        );
    }
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep)
        .with_lease("shared-store")
        .await?;
    let result = import_leased(ctx, &store, &file, e, unpacked).await;
    let _ = store.release().await;
    result
}

async fn import_leased(
    ctx: &Ctx,
    store: &Store,
    file: &Path,
    e: &Entry,
    unpacked: &(dyn Fn() + Sync),
) -> anyhow::Result<()> {
    let snapshotter = ctx.ep.snapshotter.clone();
    let config_desc = Descriptor {
        media_type: "application/vnd.oci.image.config.v1+json".into(),
        digest: e.config_digest.clone(),
        size: e.config.len() as i64,
        ..Default::default()
    };
    let mut labels = HashMap::new();
    labels.insert(
        format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
        e.chain_id.clone(),
    );
    store.put(&config_desc, e.config.as_bytes(), labels).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": config_desc.media_type,
            "digest": config_desc.digest,
            "size": config_desc.size,
        },
        "layers": [],
    });
    let bytes = serde_json::to_vec(&manifest)?;
    let manifest_desc = Descriptor {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: crate::images::manifest::sha256(&bytes),
        size: bytes.len() as i64,
        ..Default::default()
    };
    let mut labels = HashMap::new();
    labels.insert(
        "containerd.io/gc.ref.content.config".to_string(),
        e.config_digest.clone(),
    );
    store.put(&manifest_desc, &bytes, labels).await?;
    let mountpoint = if store.snapshot_exists(&e.chain_id).await? {
        None
    } else {
        let key = format!("burrow-shared-{}", std::process::id());
        let _ = store.remove_snapshot(&key).await;
        let mounts = store.prepare(&key, "").await?;
        let target = match mounts.as_slice() {
            [m] if m.r#type == "bind" => m.source.clone(),
            _ => bail!("the {snapshotter} snapshotter's new snapshot is not one directory: the shared store needs overlayfs or native"),
        };
        let single = single_id(ctx);
        let made = match single {
            true => {
                unpacked();
                unpack(ctx, file, &target)
            }
            false => mount(ctx, file, &target),
        };
        if let Err(err) = made {
            let _ = store.remove_snapshot(&key).await;
            return Err(err);
        }
        store.commit_snapshot(&e.chain_id, &key).await?;
        (!single).then_some(target)
    };
    let mut labels = HashMap::new();
    labels.insert(STORE_LABEL.to_string(), file.display().to_string());
    if let Some(t) = mountpoint {
        labels.insert(MOUNT_LABEL.to_string(), t);
    }
    store.put_image(&e.name, &manifest_desc, labels).await?;
    crate::images::userdb::store_cached(
        &crate::images::userdb::cache_dir(ctx.store.root()),
        &e.config_digest,
        &e.passwd,
        &e.group,
    );
    Ok(())
}

/// Mounts `file` at `target` with squashfuse inside the launcher's namespaces.
fn mount(ctx: &Ctx, file: &Path, target: &str) -> anyhow::Result<()> {
    helper(
        ctx,
        Root::Mounts(Vec::new()),
        Op::MountStore {
            file: file.display().to_string(),
            target: target.to_string(),
        },
        &format!("mounting {}", file.display()),
    )?;
    Ok(())
}

/// Unpacks `file` into `target` with unsquashfs inside the launcher's namespaces.
fn unpack(ctx: &Ctx, file: &Path, target: &str) -> anyhow::Result<()> {
    helper(
        ctx,
        Root::Mounts(Vec::new()),
        Op::UnpackStore {
            file: file.display().to_string(),
            target: target.to_string(),
        },
        &format!("unpacking {}", file.display()),
    )?;
    Ok(())
}

/// Unmounts a store file mounted at `target` (in the launcher's namespaces when
/// `launcher_pid` is set), once the snapshot it served is gone: its squashfuse then exits.
pub fn unmount(launcher_pid: Option<i32>, target: &str) -> anyhow::Result<()> {
    helper_in(
        launcher_pid,
        Root::Mounts(Vec::new()),
        Op::UnmountStore {
            target: target.to_string(),
        },
        &format!("unmounting the shared store's file at {target}"),
    )?;
    Ok(())
}

/// An image record (its `labels`) made from the store whose file is not mounted in this
/// launcher (it was restarted since): mount it again.
pub async fn ensure_mounted(ctx: &Ctx, labels: &HashMap<String, String>) -> anyhow::Result<()> {
    let (Some(file), Some(target)) = (labels.get(STORE_LABEL), labels.get(MOUNT_LABEL)) else {
        return Ok(());
    };
    let launcher = ctx.launcher_pid();
    if !super::mounts::is_mount_point(launcher, Path::new(target)) {
        mount(ctx, Path::new(file), target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_lookup() {
        assert_eq!(
            file_stem("127.0.0.1:5000/lab/solver:2.1"),
            "127.0.0.1_5000_lab_solver_2.1"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = Entry {
            name: "127.0.0.1:5000/lab/solver:latest".into(),
            config: "{}".into(),
            config_digest: "sha256:abcdef".into(),
            chain_id: "sha256:c".into(),
            passwd: String::new(),
            group: String::new(),
            file: "x.sqsh".into(),
            owners_squashed: false,
        };
        std::fs::write(dir.path().join("x.json"), serde_json::to_vec(&e).unwrap()).unwrap();
        std::fs::write(dir.path().join("junk.json"), "{").unwrap();
        let dirs = vec![dir.path().to_path_buf()];
        assert_eq!(list(&dirs).len(), 1);
        assert!(find(&dirs, "127.0.0.1:5000/lab/solver").is_some());
        assert!(find(&dirs, "abcd").is_some());
        assert!(find(&dirs, "127.0.0.1:5000/lab/other").is_none());
    }
}
