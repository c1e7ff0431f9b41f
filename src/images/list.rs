//! `images`: the local images as summary rows, newest first, kept by `--filter`s (reference
//! globs, dangling) and the optional `REPOSITORY[:TAG]` argument.

use serde_json::Value;

use super::catalog::{self, CatalogError};
use super::manifest::Platform;
use super::store::Store;

/// A `--filter` that is not one of the supported ones.
#[derive(Debug, thiserror::Error)]
#[error("unsupported filter {0:?}: use reference=PATTERN or dangling=true|false")]
pub struct FilterError(pub String);

/// One `--filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `reference=PATTERN`: the repository, or repository:tag, matches the glob.
    Reference(String),
    /// `dangling=true|false`: no tag nor digest names the image (or one does).
    Dangling(bool),
}

impl Filter {
    /// The filter of `images REPOSITORY[:TAG]` (every tag when none is given).
    pub fn reference_arg(r: &str) -> Filter {
        Filter::Reference(if r.contains(':') {
            r.to_owned()
        } else {
            format!("{r}:*")
        })
    }

    /// Whether a summary row (see [`catalog::summary`]) passes.
    pub fn keeps(&self, row: &Value) -> bool {
        let repo = row["Repository"].as_str().unwrap_or_default();
        let tag = row["Tag"].as_str().unwrap_or_default();
        match self {
            Filter::Reference(p) => glob(p, repo) || glob(p, &format!("{repo}:{tag}")),
            Filter::Dangling(d) => {
                catalog::is_dangling(row["Name"].as_str().unwrap_or_default()) == *d
            }
        }
    }
}

/// Parses `--filter` values.
pub fn parse_filters(raw: &[String]) -> Result<Vec<Filter>, FilterError> {
    raw.iter()
        .map(|f| match f.split_once('=') {
            Some(("reference", v)) => Ok(Filter::Reference(v.to_owned())),
            Some(("dangling", "true")) => Ok(Filter::Dangling(true)),
            Some(("dangling", "false")) => Ok(Filter::Dangling(false)),
            _ => Err(FilterError(f.clone())),
        })
        .collect()
}

/// `*` and `?` glob matching.
pub fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

/// The summary rows of every local image (for this host's platform, see
/// [`catalog::all`]), newest first, that all `filters` keep.
pub async fn rows(
    store: &Store,
    filters: &[Filter],
    no_trunc: bool,
) -> Result<Vec<Value>, CatalogError> {
    let mut images = catalog::all(store, &Platform::host()).await?;
    // The build cache's records are the builder's, not images of the user's.
    images.retain(|l| !crate::build::cache::is_cache_record(&l.name));
    images.sort_by_key(|l| std::cmp::Reverse(catalog::created(l).unwrap_or(0)));
    Ok(images
        .iter()
        .map(|l| catalog::summary(l, no_trunc))
        .filter(|r| filters.iter().all(|f| f.keeps(r)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("busy*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("busybox:1*", "busybox:latest"));
        assert!(glob(
            "*/multi?ayer",
            "127.0.0.1:5000/burrow-test/multilayer"
        ));
    }

    #[test]
    fn filters() {
        let row = serde_json::json!({"Repository": "busybox", "Tag": "latest", "Name": "docker.io/library/busybox:latest"});
        assert!(Filter::reference_arg("busybox").keeps(&row));
        assert!(!Filter::reference_arg("busybox:1.36").keeps(&row));
        let parsed = parse_filters(&["dangling=false".into(), "reference=busy*".into()]).unwrap();
        assert!(parsed.iter().all(|f| f.keeps(&row)));
        assert_eq!(
            parse_filters(&["label=x".into()]).unwrap_err().to_string(),
            "unsupported filter \"label=x\": use reference=PATTERN or dangling=true|false"
        );
    }
}
