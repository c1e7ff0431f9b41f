//! The /etc/passwd and /etc/group of an image to run, read from its layers (top layer wins) and
//! cached under the data root by the image's config digest, for `run --user NAME` and `exec -u`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::runnable::{Image, ImageError, ImageStore};

/// Where the cached /etc/passwd and /etc/group of images live under the data root.
pub fn cache_dir(data_root: &Path) -> PathBuf {
    data_root.join("usercache")
}

fn cache_file(cache_dir: &Path, config_digest: &str) -> PathBuf {
    cache_dir.join(format!("{}.json", config_digest.replace(':', "-")))
}

/// Records an image's /etc/passwd and /etc/group (read elsewhere: the shared store's JSON) as
/// its cache entry (best effort).
pub fn store_cached(cache_dir: &Path, config_digest: &str, passwd: &str, group: &str) {
    if let Ok(bytes) = serde_json::to_vec(&(passwd, group)) {
        let _ = write_entry(cache_dir, &cache_file(cache_dir, config_digest), &bytes);
    }
}

/// Drops the cache entry of an image that is gone (best effort: a missing entry is fine, and a
/// stale one is only a few hundred bytes that a later run of the same image would use again).
pub fn forget(cache_dir: &Path, config_digest: &str) {
    let _ = std::fs::remove_file(cache_file(cache_dir, config_digest));
}

impl ImageStore {
    /// [`Self::load_user_db`] through a cache in `cache_dir`, keyed by the image's config
    /// digest (which fixes its layers, so an entry never goes stale): reading a layer over
    /// gRPC and scanning its tarball took longer than the rest of `run`'s preparations.
    pub async fn load_user_db_cached(
        &self,
        image: &mut Image,
        cache_dir: &Path,
    ) -> Result<(), ImageError> {
        let file = cache_file(cache_dir, &image.config_digest);
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
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            let _ = write_entry(cache_dir, &file, &bytes);
        }
        Ok(())
    }

    /// Reads /etc/passwd and /etc/group from the image's layers (top layer wins) into
    /// `image.defaults`. Missing files stay empty.
    pub async fn load_user_db(&self, image: &mut Image) -> Result<(), ImageError> {
        let mut found: HashMap<&'static str, String> = HashMap::new();
        for (digest, _) in image.layers.iter().rev() {
            if found.len() == 2 {
                break;
            }
            let blob = self.read_blob(digest).await?;
            let files = files_in_layer(&blob).map_err(|why| ImageError::Malformed {
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

/// Writes a cache entry whole (a temporary file renamed over it) in a directory private to the
/// user; the temporary file does not outlive a failure.
fn write_entry(cache_dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::fsutil::private_dir(cache_dir)?;
    crate::fsutil::replace_file(file, bytes)
}

/// etc/passwd and etc/group from one layer tarball (gzip, zstd or plain).
fn files_in_layer(blob: &[u8]) -> Result<Vec<(&'static str, String)>, String> {
    let reader = super::compression::decompressed(blob).map_err(|e| e.to_string())?;
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
        let files = files_in_layer(&blob).unwrap();
        assert_eq!(
            files,
            [("passwd", String::from_utf8(data.to_vec()).unwrap())]
        );
    }

    #[test]
    fn cache_entries_are_written_whole_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_dir(dir.path());
        let file = cache_file(&cache, "sha256:abc");
        assert_eq!(file, cache.join("sha256-abc.json"));
        write_entry(&cache, &file, b"[\"p\",\"g\"]").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"[\"p\",\"g\"]");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&cache).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
        forget(&cache, "sha256:abc");
        assert!(!file.exists());
    }
}
