//! The build cache: each step's result is an image record in containerd under a burrow-internal
//! name (`burrow.build/cache:<key>`), the key a digest of the parent chain's key, the
//! instruction as written, the build args in scope and, for COPY/ADD, the content it copies.
//! The records keep their layers and snapshots from containerd's garbage collection;
//! `builder prune` deletes them.

use crate::images::manifest;
use crate::images::store::Store;

/// The repository the cache records live under.
pub const CACHE_REPO: &str = "burrow.build/cache";

/// The cache key of a step: `parent`'s chain, the instruction, the args, the copied content.
pub fn key(parent: &str, instruction: &str, args: &[String], content: Option<&str>) -> String {
    let mut text = format!("{parent}\n{instruction}\n");
    let mut args = args.to_vec();
    args.sort();
    for a in args {
        text.push_str(&a);
        text.push('\0');
    }
    text.push('\n');
    text.push_str(content.unwrap_or(""));
    manifest::sha256(text.as_bytes())
}

/// The key of a stage's base: the base image's manifest digest (or `scratch`).
pub fn base_key(base: &str) -> String {
    manifest::sha256(format!("FROM {base}").as_bytes())
}

/// The record name of `key`.
pub fn record_name(key: &str) -> String {
    format!(
        "{CACHE_REPO}:{}",
        key.strip_prefix("sha256:").unwrap_or(key)
    )
}

/// Whether an image record is a build cache entry (hidden from `images`).
pub fn is_cache_record(name: &str) -> bool {
    name.starts_with(&format!("{CACHE_REPO}:"))
}

/// Deletes every cache record and the volumes of `RUN --mount=type=cache`; returns the names of
/// what went (volume names, then record names).
pub async fn prune(ctx: &crate::containers::Ctx) -> anyhow::Result<Vec<String>> {
    let volumes = crate::containers::volumes::Volumes::of(ctx);
    let names: Vec<String> = volumes
        .list()
        .into_iter()
        .map(|v| v.name)
        .filter(|n| n.starts_with(super::mounts::CACHE_VOLUME_PREFIX))
        .collect();
    let mut gone = volumes.remove_quietly(&names);
    gone.extend(super::downloads::Cache::new(&ctx.ep.data_root).prune()?);
    let store = &Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep);
    for img in store.images().await? {
        if is_cache_record(&img.name) {
            store.delete_image(&img.name, false).await?;
            gone.push(img.name);
        }
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_chain_instruction_args_and_content() {
        let p = base_key("sha256:aa");
        let k = key(&p, "RUN make", &["A=1".into(), "B=2".into()], None);
        // The order args were declared in does not matter; their values do.
        assert_eq!(k, key(&p, "RUN make", &["B=2".into(), "A=1".into()], None));
        assert_ne!(k, key(&p, "RUN make", &["A=1".into(), "B=3".into()], None));
        assert_ne!(
            k,
            key(
                &base_key("sha256:bb"),
                "RUN make",
                &["A=1".into(), "B=2".into()],
                None
            )
        );
        assert_ne!(k, key(&p, "RUN  make", &["A=1".into(), "B=2".into()], None));
        let c = key(&p, "COPY . /", &[], Some("sha256:1"));
        assert_ne!(c, key(&p, "COPY . /", &[], Some("sha256:2")));
        let name = record_name(&c);
        assert!(is_cache_record(&name));
        assert_eq!(name.len(), CACHE_REPO.len() + 1 + 64);
        assert!(!is_cache_record("docker.io/library/busybox:latest"));
    }
}
