//! What `run`/`create` need from an image already in containerd: its record (by the name as
//! typed, normalised as Docker does), the manifest for this platform, the config (env, cmd,
//! entrypoint, user, workdir, exposed ports), the chain id of its rootfs, and /etc/passwd and
//! /etc/group read from its layers when a user is given by name.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use containerd_client::services::v1::{
    content_client::ContentClient, images_client::ImagesClient, GetImageRequest, ReadContentRequest,
};
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Request};

use super::spec::ImageDefaults;

/// The image could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0} (pull it with `burrow pull {0}` or load it with `burrow load`)")]
    NotFound(String),
    #[error("image {image}: no manifest for linux/{arch} in its index")]
    NoPlatform { image: String, arch: String },
    #[error("containerd {op} {what}: {message}")]
    Rpc {
        op: &'static str,
        what: String,
        message: String,
    },
    #[error("image {image}: malformed {what}: {why}")]
    Malformed {
        image: String,
        what: String,
        why: String,
    },
    #[error("containerd namespace {0:?} is not valid gRPC metadata")]
    Namespace(String),
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
    /// Layer descriptors (digest, media type), bottom first, for reading files.
    pub layers: Vec<(String, String)>,
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

/// SHA-256 chain id of a list of diff ids (the OCI image spec's ChainID).
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut chain = String::new();
    for diff in diff_ids {
        if chain.is_empty() {
            chain = diff.clone();
        } else {
            let digest = Sha256::digest(format!("{chain} {diff}").as_bytes());
            chain = format!("sha256:{}", hex(&digest));
        }
    }
    chain
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Go architecture name of this machine, as in image indexes.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Reads images from containerd's image and content stores.
#[derive(Debug, Clone)]
pub struct ImageStore {
    channel: Channel,
    namespace: String,
}

impl ImageStore {
    pub fn new(channel: Channel, namespace: impl Into<String>) -> ImageStore {
        ImageStore {
            channel,
            namespace: namespace.into(),
        }
    }

    fn req<T>(&self, msg: T) -> Result<Request<T>, ImageError> {
        let mut req = Request::new(msg);
        let v = self
            .namespace
            .parse()
            .map_err(|_| ImageError::Namespace(self.namespace.clone()))?;
        req.metadata_mut().insert("containerd-namespace", v);
        Ok(req)
    }

    /// A blob from the content store.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let mut stream = ContentClient::new(self.channel.clone())
            .read(self.req(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            })?)
            .await
            .map_err(|s| ImageError::Rpc {
                op: "content read",
                what: digest.to_string(),
                message: s.message().to_string(),
            })?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(|s| ImageError::Rpc {
            op: "content read",
            what: digest.to_string(),
            message: s.message().to_string(),
        })? {
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
            let resp = ImagesClient::new(self.channel.clone())
                .get(self.req(GetImageRequest {
                    name: candidate.clone(),
                })?)
                .await;
            match resp {
                Ok(r) => {
                    if let Some(img) = r.into_inner().image {
                        return Ok(img);
                    }
                }
                Err(s) if s.code() == Code::NotFound => {}
                Err(s) => {
                    return Err(ImageError::Rpc {
                        op: "image get",
                        what: candidate,
                        message: s.message().to_string(),
                    })
                }
            }
        }
        Err(ImageError::NotFound(name.to_string()))
    }

    /// Resolves `name` to a runnable image for this platform.
    pub async fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let record = self.find(name).await?;
        let target = record.target.clone().unwrap_or_default();
        let mut manifest = self.json(name, &target.digest, "manifest").await?;
        if manifest.get("manifests").is_some() {
            let arch = go_arch();
            let chosen = manifest["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
                .and_then(|m| m["digest"].as_str())
                .map(str::to_string)
                .ok_or_else(|| ImageError::NoPlatform {
                    image: name.to_string(),
                    arch: arch.to_string(),
                })?;
            manifest = self.json(name, &chosen, "manifest").await?;
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
        Ok(Image {
            name: record.name,
            digest: target.digest,
            config_digest,
            chain_id: chain_id(&diff_ids),
            defaults: ImageDefaults {
                env: strings(&c["Env"]),
                entrypoint: strings(&c["Entrypoint"]),
                cmd: strings(&c["Cmd"]),
                user: c["User"].as_str().unwrap_or_default().to_string(),
                working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
                passwd: String::new(),
                group: String::new(),
            },
            exposed_ports,
            layers,
        })
    }

    /// [`Self::load_user_db`] through a cache in `cache_dir`, keyed by the image's config
    /// digest (which fixes its layers, so an entry never goes stale): reading a layer over
    /// gRPC and scanning its tarball took longer than the rest of `run`'s preparations.
    pub async fn load_user_db_cached(
        &self,
        image: &mut Image,
        cache_dir: &Path,
    ) -> Result<(), ImageError> {
        let file = user_db_cache_file(cache_dir, &image.config_digest);
        if let Some((passwd, group)) = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<(String, String)>(&b).ok())
        {
            image.defaults.passwd = passwd;
            image.defaults.group = group;
            return Ok(());
        }
        self.load_user_db(image).await?;
        // Best effort: a cache that cannot be written only costs the next run the read.
        let entry = (&image.defaults.passwd, &image.defaults.group);
        if let (Ok(()), Ok(bytes)) = (
            super::store::private_dir(cache_dir).map_err(drop),
            serde_json::to_vec(&entry),
        ) {
            let _ = super::store::replace_file(&file, bytes);
        }
        Ok(())
    }

    /// Reads /etc/passwd and /etc/group from the image's layers (top layer wins) into
    /// `image.defaults`. Missing files stay empty.
    pub async fn load_user_db(&self, image: &mut Image) -> Result<(), ImageError> {
        let mut found: HashMap<&'static str, String> = HashMap::new();
        for (digest, media_type) in image.layers.iter().rev() {
            if found.len() == 2 {
                break;
            }
            let blob = self.read_blob(digest).await?;
            let files = files_in_layer(&blob, media_type).map_err(|why| ImageError::Malformed {
                image: image.name.clone(),
                what: format!("layer {digest}"),
                why,
            })?;
            for (key, content) in files {
                found.entry(key).or_insert(content);
            }
        }
        image.defaults.passwd = found.remove("passwd").unwrap_or_default();
        image.defaults.group = found.remove("group").unwrap_or_default();
        Ok(())
    }
}

/// Where the cached /etc/passwd and /etc/group of images live under the data root.
pub fn user_db_cache_dir(data_root: &Path) -> PathBuf {
    data_root.join("usercache")
}

fn user_db_cache_file(cache_dir: &Path, config_digest: &str) -> PathBuf {
    cache_dir.join(format!("{}.json", config_digest.replace(':', "-")))
}

/// Drops the cache entry of an image that is gone (best effort: a missing entry is fine, and a
/// stale one is only a few hundred bytes that a later run of the same image would use again).
pub fn forget_user_db(cache_dir: &Path, config_digest: &str) {
    let _ = std::fs::remove_file(user_db_cache_file(cache_dir, config_digest));
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// etc/passwd and etc/group from one layer tarball (gzip or plain).
fn files_in_layer(blob: &[u8], media_type: &str) -> Result<Vec<(&'static str, String)>, String> {
    let gz = media_type.ends_with("gzip") || blob.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gz {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else {
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .to_string();
        let key = match path.trim_start_matches("./").trim_start_matches('/') {
            "etc/passwd" => "passwd",
            "etc/group" => "group",
            _ => continue,
        };
        let mut s = String::new();
        entry.read_to_string(&mut s).map_err(|e| e.to_string())?;
        out.push((key, s));
    }
    Ok(out)
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

    #[test]
    fn chain_id_follows_the_image_spec() {
        let a = "sha256:aaaa".to_string();
        assert_eq!(chain_id(std::slice::from_ref(&a)), a);
        let two = chain_id(&[a.clone(), "sha256:bbbb".into()]);
        let want = format!(
            "sha256:{}",
            hex(&Sha256::digest(b"sha256:aaaa sha256:bbbb"))
        );
        assert_eq!(two, want);
    }

    #[test]
    fn passwd_is_read_from_a_layer() {
        let mut builder = tar::Builder::new(Vec::new());
        let data = b"root:x:0:0::/root:/bin/sh\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "etc/passwd", &data[..])
            .unwrap();
        let blob = builder.into_inner().unwrap();
        let files = files_in_layer(&blob, "application/vnd.oci.image.layer.v1.tar").unwrap();
        assert_eq!(
            files,
            [("passwd", String::from_utf8(data.to_vec()).unwrap())]
        );
    }
}
