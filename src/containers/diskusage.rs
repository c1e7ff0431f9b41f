//! `system df`: the disk space images, containers and local volumes use, and how much of it
//! nothing needs (Docker's "reclaimable"), with the per-item detail of `system df -v`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::listing::{self, ListOptions, Summary};
use super::volumes::Volumes;
use super::{record, Ctx};
use crate::images::catalog;
use crate::images::local::LocalImage;
use crate::images::manifest::Platform;
use crate::images::store::Store;

/// One local image (one record: a name) and its share of the space.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: LocalImage,
    /// Bytes of its content (manifest, config, layers).
    pub size: u64,
    /// Bytes of its layers that other images (other ids) also use.
    pub shared: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// One container and the bytes of its writable layer.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub summary: Summary,
    pub size: u64,
    /// How many local volumes it mounts.
    pub volumes: usize,
}

/// One local volume.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    /// Containers that mount it.
    pub links: usize,
    pub size: u64,
}

/// Everything `system df` shows.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Bytes all images take together (shared blobs counted once).
    pub images_size: u64,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
}

/// One line of the `system df` summary, as Docker's fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TypeUsage {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    #[serde(rename = "TotalCount")]
    pub total: usize,
    #[serde(rename = "Active")]
    pub active: usize,
    #[serde(rename = "Size")]
    pub size: u64,
    #[serde(rename = "Reclaimable")]
    pub reclaimable: u64,
}

/// Measures the images, containers and volumes of `ctx`'s containerd.
pub async fn disk_usage(ctx: &Ctx) -> anyhow::Result<DiskUsage> {
    let store = Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    let images = catalog::all(&store, &Platform::host()).await?;
    let all = listing::list(
        ctx,
        &ListOptions {
            all: true,
            size: true,
            ..Default::default()
        },
    )
    .await?;
    let vols = Volumes::of(ctx).list();
    let by_path: HashMap<PathBuf, String> = vols
        .iter()
        .map(|v| (v.mountpoint.clone(), v.name.clone()))
        .collect();
    let mut links: HashMap<String, usize> = HashMap::new();
    let mut containers = Vec::new();
    for s in all {
        let mounted: HashSet<&String> = record::spec_of(&s.container)
            .and_then(|sp| sp.mounts().clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.source().as_ref().and_then(|p| by_path.get(p)))
            .collect();
        for v in &mounted {
            *links.entry((*v).clone()).or_default() += 1;
        }
        containers.push(ContainerUsage {
            size: s.size.map(|(own, _)| own).unwrap_or(0),
            volumes: mounted.len(),
            summary: s,
        });
    }
    let volumes = vols
        .iter()
        .map(|v| VolumeUsage {
            name: v.name.clone(),
            links: links.get(&v.name).copied().unwrap_or(0),
            size: tree_size(&v.mountpoint),
        })
        .collect();
    let (images, images_size) = image_usage(images, &containers);
    Ok(DiskUsage {
        images,
        images_size,
        containers,
        volumes,
    })
}

/// Each image's size, shared bytes and containers; and the bytes of all blobs, each once.
fn image_usage(images: Vec<LocalImage>, containers: &[ContainerUsage]) -> (Vec<ImageUsage>, u64) {
    let mut blob_ids: HashMap<String, HashSet<String>> = HashMap::new();
    let mut blob_size: HashMap<String, u64> = HashMap::new();
    for l in &images {
        let blobs = l
            .manifest
            .layers
            .iter()
            .chain([&l.config_desc, &l.manifest_desc]);
        for d in blobs {
            blob_ids
                .entry(d.digest.clone())
                .or_default()
                .insert(l.id().to_string());
            blob_size.insert(d.digest.clone(), d.size.max(0) as u64);
        }
    }
    let images_size = blob_size.values().sum();
    let rows = images
        .into_iter()
        .map(|l| {
            let shared = l
                .manifest
                .layers
                .iter()
                .filter(|d| blob_ids.get(&d.digest).is_some_and(|ids| ids.len() > 1))
                .map(|d| d.size.max(0) as u64)
                .sum();
            ImageUsage {
                size: l.content_size().max(0) as u64,
                shared,
                containers: containers
                    .iter()
                    .filter(|c| c.summary.container.image == l.name)
                    .count(),
                image: l,
            }
        })
        .collect();
    (rows, images_size)
}

/// Bytes of the regular files under `dir` (hard links once; what cannot be read is left out).
pub fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                todo.push(e.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    total
}

impl DiskUsage {
    /// The summary lines: Images, Containers, Local Volumes, Build Cache (burrow has none yet).
    pub fn summary(&self) -> Vec<TypeUsage> {
        let mut ids: HashMap<&str, bool> = HashMap::new();
        for i in &self.images {
            *ids.entry(i.image.id()).or_default() |= i.containers > 0;
        }
        let mut counted = HashSet::new();
        let used: u64 = self
            .images
            .iter()
            .filter(|i| ids.get(i.image.id()) == Some(&true) && counted.insert(i.image.id()))
            .map(|i| i.size - i.shared)
            .sum();
        let running = |c: &&ContainerUsage| c.summary.state.is_running();
        vec![
            TypeUsage {
                kind: "Images",
                total: ids.len(),
                active: ids.values().filter(|a| **a).count(),
                size: self.images_size,
                reclaimable: self.images_size.saturating_sub(used),
            },
            TypeUsage {
                kind: "Containers",
                total: self.containers.len(),
                active: self.containers.iter().filter(running).count(),
                size: self.containers.iter().map(|c| c.size).sum(),
                reclaimable: self
                    .containers
                    .iter()
                    .filter(|c| !running(c))
                    .map(|c| c.size)
                    .sum(),
            },
            TypeUsage {
                kind: "Local Volumes",
                total: self.volumes.len(),
                active: self.volumes.iter().filter(|v| v.links > 0).count(),
                size: self.volumes.iter().map(|v| v.size).sum(),
                reclaimable: self
                    .volumes
                    .iter()
                    .filter(|v| v.links == 0)
                    .map(|v| v.size)
                    .sum(),
            },
            TypeUsage {
                kind: "Build Cache",
                total: 0,
                active: 0,
                size: 0,
                reclaimable: 0,
            },
        ]
    }
}

/// Docker's RECLAIMABLE column: the size, and its share of the total when there is one (the
/// build cache shows the size alone).
pub fn reclaimable_text(t: &TypeUsage) -> String {
    let size = catalog::human_size(i64::try_from(t.reclaimable).unwrap_or(i64::MAX));
    if t.size > 0 && t.kind != "Build Cache" {
        format!("{size} ({}%)", t.reclaimable * 100 / t.size)
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_as_docker_writes_it() {
        let t = |kind, size, reclaimable| TypeUsage {
            kind,
            total: 1,
            active: 0,
            size,
            reclaimable,
        };
        assert_eq!(
            reclaimable_text(&t("Images", 4_260_000, 2_130_000)),
            "2.13MB (50%)"
        );
        assert_eq!(reclaimable_text(&t("Containers", 0, 0)), "0B");
        assert_eq!(reclaimable_text(&t("Build Cache", 0, 0)), "0B");
    }

    #[test]
    fn tree_size_counts_files_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), [0u8; 100]).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/b"), [0u8; 20]).unwrap();
        std::fs::hard_link(d.path().join("sub/b"), d.path().join("sub/c")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("l")).unwrap();
        assert_eq!(tree_size(d.path()), 120);
    }
}
