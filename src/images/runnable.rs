//! What `run`/`create` need from an image already in containerd: its record (by the name as
//! typed, normalised as Docker does), the manifest for this platform, the config (env, cmd,
//! entrypoint, user, workdir, exposed ports) and the chain id of its rootfs.

use containerd_client::services::v1::{GetImageRequest, ReadContentRequest};

use super::manifest::{chain_ids, Platform};
use crate::client::{self, RpcResult};

/// What the image says about how to run it (the `config` of its OCI image configuration).
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub working_dir: String,
    /// The config's `Healthcheck` (Docker's HEALTHCHECK), as JSON.
    pub healthcheck: Option<serde_json::Value>,
    /// Contents of the image's /etc/passwd and /etc/group ("" when absent).
    pub passwd: String,
    pub group: String,
}

/// The image could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0} (pull it with `burrow pull {0}` or load it with `burrow load`)")]
    NotFound(String),
    #[error("image ID {id} names {count} images: give more of it")]
    Ambiguous { id: String, count: usize },
    #[error("image {image}: no manifest for {platform} in its index (it has: {available})")]
    NoPlatform {
        image: String,
        platform: String,
        available: String,
    },
    /// Docker's words for a local image without the platform asked for (its index lists it,
    /// but only another platform's content is here, or it is a single other platform's image).
    #[error(
        "image with reference {image} was found but does not match the specified platform: \
         wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        image: String,
        wanted: String,
        actual: String,
    },
    #[error(transparent)]
    Containerd(#[from] client::Error),
    #[error("image {image}: malformed {what}: {why}")]
    Malformed {
        image: String,
        what: String,
        why: String,
    },
}

/// An image ready to run: its name, config and the chain id its snapshot hangs from.
#[derive(Debug, Clone)]
pub struct Image {
    /// The name of the image record in containerd.
    pub name: String,
    /// The digest of the image's target (manifest or index).
    pub digest: String,
    pub config_digest: String,
    pub chain_id: String,
    pub defaults: ImageDefaults,
    /// `ExposedPorts` keys, as "80/tcp".
    pub exposed_ports: Vec<String>,
    /// `Volumes` keys (Dockerfile `VOLUME`): paths a container gets an anonymous volume at.
    pub volumes: Vec<String>,
    /// Layer descriptors (digest, media type), bottom first, for reading files.
    pub layers: Vec<(String, String)>,
    /// The platform its config names (os, architecture, variant).
    pub platform: Platform,
    /// The image record's labels (the shared store's file and mountpoint, for one).
    pub labels: std::collections::HashMap<String, String>,
}

/// The names an image typed as `s` may be recorded under, in the order Docker would resolve:
/// as typed, then with `:latest`, then under docker.io (and docker.io/library).
pub fn candidate_names(s: &str) -> Vec<String> {
    let mut out = vec![s.to_string()];
    let last = s.rsplit('/').next().unwrap_or(s);
    let tagged = if s.contains('@') || last.contains(':') {
        s.to_string()
    } else {
        format!("{s}:latest")
    };
    if tagged != s {
        out.push(tagged.clone());
    }
    let first = tagged.split('/').next().unwrap_or("");
    let has_domain = tagged.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_domain {
        if tagged.contains('/') {
            out.push(format!("docker.io/{tagged}"));
        } else {
            out.push(format!("docker.io/library/{tagged}"));
        }
    }
    out
}

/// Reads images from containerd's image and content stores.
#[derive(Debug, Clone)]
pub struct ImageStore {
    containerd: client::Client,
}

impl ImageStore {
    pub fn new(containerd: client::Client) -> ImageStore {
        ImageStore { containerd }
    }

    /// A blob from the content store.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let mut stream = self
            .containerd
            .content()
            .read(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            })
            .await
            .op("content read", digest)?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream.message().await.op("content read", digest)? {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }

    async fn json(
        &self,
        image: &str,
        digest: &str,
        what: &str,
    ) -> Result<serde_json::Value, ImageError> {
        let data = self.read_blob(digest).await?;
        serde_json::from_slice(&data).map_err(|e| ImageError::Malformed {
            image: image.to_string(),
            what: what.to_string(),
            why: e.to_string(),
        })
    }

    /// Finds the image record for `name` (trying Docker's normalised forms).
    pub async fn find(
        &self,
        name: &str,
    ) -> Result<containerd_client::services::v1::Image, ImageError> {
        for candidate in candidate_names(name) {
            let resp = self
                .containerd
                .images()
                .get(GetImageRequest {
                    name: candidate.clone(),
                })
                .await
                .optional_op("image get", &candidate)?;
            if let Some(img) = resp.and_then(|r| r.into_inner().image) {
                return Ok(img);
            }
        }
        Err(ImageError::NotFound(name.to_string()))
    }

    /// Resolves `name` to a runnable image for this platform: a reference, or (as Docker
    /// takes them) an image ID or a unique prefix of one.
    pub async fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        self.resolve_for(name, None).await
    }

    /// [`Self::resolve`] for `platform` (`--platform`; None: this host's): picked from a
    /// multi-platform image; [`ImageError::PlatformMismatch`] when only another platform's
    /// image is here.
    pub async fn resolve_for(
        &self,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<Image, ImageError> {
        let image = match self.resolve_name(name, platform).await {
            Err(ImageError::NotFound(_)) if super::catalog::id_prefix(name).is_some() => {
                self.resolve_id(name).await?
            }
            other => other?,
        };
        match platform {
            Some(p) if !p.matches(&image.platform) => Err(ImageError::PlatformMismatch {
                image: name.to_string(),
                wanted: p.display(),
                actual: image.platform.display(),
            }),
            _ => Ok(image),
        }
    }

    /// The image whose ID (config digest) or manifest digest starts with `id`.
    async fn resolve_id(&self, id: &str) -> Result<Image, ImageError> {
        let prefix = super::catalog::id_prefix(id).unwrap_or_default();
        let records = self
            .containerd
            .images()
            .list(containerd_client::services::v1::ListImagesRequest::default())
            .await
            .op("image list", "")?
            .into_inner()
            .images;
        let mut found: Vec<Image> = Vec::new();
        for r in records {
            let target = r
                .target
                .as_ref()
                .map(|t| t.digest.clone())
                .unwrap_or_default();
            let Ok(img) = self.resolve_name(&r.name, None).await else {
                continue;
            };
            if (img.config_digest.starts_with(&prefix) || target.starts_with(&prefix))
                && !found.iter().any(|f| f.config_digest == img.config_digest)
            {
                found.push(img);
            }
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(ImageError::NotFound(id.to_string())),
            count => Err(ImageError::Ambiguous {
                id: id.to_string(),
                count,
            }),
        }
    }

    async fn resolve_name(
        &self,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<Image, ImageError> {
        let record = self.find(name).await?;
        let target = record.target.clone().unwrap_or_default();
        let mut manifest = self.json(name, &target.digest, "manifest").await?;
        if manifest.get("manifests").is_some() {
            manifest = self.pick(name, &manifest, platform).await?;
        }
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| ImageError::Malformed {
                image: name.to_string(),
                what: "manifest".into(),
                why: "no config digest".into(),
            })?
            .to_string();
        let layers = manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| {
                Some((
                    l["digest"].as_str()?.to_string(),
                    l["mediaType"].as_str().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        let config = self.json(name, &config_digest, "config").await?;
        let diff_ids: Vec<String> = strings(&config["rootfs"]["diff_ids"]);
        let c = &config["config"];
        let exposed_ports = c["ExposedPorts"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let volumes = c["Volumes"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        Ok(Image {
            labels: record.labels.clone(),
            name: record.name,
            digest: target.digest,
            config_digest,
            chain_id: chain_ids(&diff_ids).pop().unwrap_or_default(),
            defaults: ImageDefaults {
                env: strings(&c["Env"]),
                entrypoint: strings(&c["Entrypoint"]),
                cmd: strings(&c["Cmd"]),
                user: c["User"].as_str().unwrap_or_default().to_string(),
                working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
                healthcheck: c.get("Healthcheck").filter(|h| !h.is_null()).cloned(),
                passwd: String::new(),
                group: String::new(),
            },
            exposed_ports,
            volumes,
            layers,
            platform: Platform {
                os: config["os"].as_str().unwrap_or("linux").to_string(),
                // An image that does not say is taken as this host's (as its record was).
                architecture: config["architecture"]
                    .as_str()
                    .filter(|a| !a.is_empty())
                    .unwrap_or(super::manifest::go_arch())
                    .to_string(),
                variant: config["variant"].as_str().map(str::to_string),
            },
        })
    }

    /// The manifest for `platform` (None: this host's) of an index; its content missing here
    /// is [`ImageError::PlatformMismatch`] naming a platform that is here.
    async fn pick(
        &self,
        name: &str,
        index: &serde_json::Value,
        platform: Option<&Platform>,
    ) -> Result<serde_json::Value, ImageError> {
        let wanted = platform.cloned().unwrap_or_else(Platform::host);
        let entries: Vec<(Platform, String)> = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let p: Platform = serde_json::from_value(m["platform"].clone()).ok()?;
                Some((p, m["digest"].as_str()?.to_string()))
            })
            .collect();
        let Some((_, digest)) = entries.iter().find(|(p, _)| wanted.matches(p)) else {
            let available: Vec<String> = entries.iter().map(|(p, _)| p.display()).collect();
            return Err(ImageError::NoPlatform {
                image: name.to_string(),
                platform: wanted.display(),
                available: available.join(", "),
            });
        };
        match self.json(name, digest, "manifest").await {
            Err(ImageError::Containerd(e)) if e.is_not_found() => {
                let mut actual = "none".to_string();
                for (p, d) in &entries {
                    if self.read_blob(d).await.is_ok() {
                        actual = p.display();
                        break;
                    }
                }
                Err(ImageError::PlatformMismatch {
                    image: name.to_string(),
                    wanted: wanted.display(),
                    actual,
                })
            }
            other => other,
        }
    }
}

/// The strings of a JSON array (others skipped; nothing for a non-array).
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tried_as_docker_normalises() {
        assert_eq!(
            candidate_names("busybox"),
            [
                "busybox",
                "busybox:latest",
                "docker.io/library/busybox:latest"
            ]
        );
        assert_eq!(
            candidate_names("burrow-demo/web"),
            [
                "burrow-demo/web",
                "burrow-demo/web:latest",
                "docker.io/burrow-demo/web:latest"
            ]
        );
        assert_eq!(
            candidate_names("127.0.0.1:5000/x/y:1"),
            ["127.0.0.1:5000/x/y:1"]
        );
    }
}
