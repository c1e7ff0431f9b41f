//! `images` (and the Docker API's image list): the local images, newest first, kept by
//! `--filter`s (reference globs, dangling, labels) and the optional `REPOSITORY[:TAG]` argument.

use serde_json::Value;

use super::catalog::{self, CatalogError};
use super::local::LocalImage;
use super::manifest::Platform;
use super::store::Store;

/// A `--filter` that is not one of the supported ones.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported filter {0:?}: use reference=PATTERN, dangling=true|false or label=KEY[=VALUE]"
)]
pub struct FilterError(pub String);

/// One `--filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `reference=PATTERN`: the repository, or repository:tag, matches the glob.
    Reference(String),
    /// `dangling=true|false`: no tag nor digest names the image (or one does).
    Dangling(bool),
    /// `label=KEY` or `label=KEY=VALUE`: the image's config has the label (with that value).
    Label(String, Option<String>),
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

    /// Whether the image record `name`, whose config has `labels` (a JSON object or null),
    /// passes.
    pub fn keeps(&self, name: &str, labels: &Value) -> bool {
        match self {
            Filter::Reference(p) => {
                let (repo, tag) = catalog::repo_tag(name);
                !catalog::is_dangling(name) && (glob(p, &repo) || glob(p, &format!("{repo}:{tag}")))
            }
            Filter::Dangling(d) => catalog::is_dangling(name) == *d,
            Filter::Label(k, v) => match (&labels[k.as_str()], v) {
                (Value::String(have), Some(want)) => have == want,
                (Value::String(_), None) => true,
                _ => false,
            },
        }
    }
}

/// Whether the record `name` with `labels` passes `filters` as Docker applies them: any one
/// of the `reference` filters, and every other filter.
pub fn keeps_all(filters: &[Filter], name: &str, labels: &Value) -> bool {
    let (refs, others): (Vec<&Filter>, Vec<&Filter>) = filters
        .iter()
        .partition(|f| matches!(f, Filter::Reference(_)));
    (refs.is_empty() || refs.iter().any(|f| f.keeps(name, labels)))
        && others.iter().all(|f| f.keeps(name, labels))
}

/// Parses `--filter` values (and the Docker API's `filters`, as `KEY=VALUE`).
pub fn parse_filters(raw: &[String]) -> Result<Vec<Filter>, FilterError> {
    raw.iter()
        .map(|f| match f.split_once('=') {
            Some(("reference", v)) => Ok(Filter::Reference(v.to_owned())),
            Some(("dangling", "true" | "1")) => Ok(Filter::Dangling(true)),
            Some(("dangling", "false" | "0")) => Ok(Filter::Dangling(false)),
            Some(("label", l)) if !l.is_empty() => Ok(match l.split_once('=') {
                Some((k, v)) => Filter::Label(k.to_owned(), Some(v.to_owned())),
                None => Filter::Label(l.to_owned(), None),
            }),
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

/// The local images (records for this host's platform, see [`catalog::all`]) that all
/// `filters` keep, newest first; the build cache's records are the builder's, never listed.
pub async fn matching(store: &Store, filters: &[Filter]) -> Result<Vec<LocalImage>, CatalogError> {
    let mut images = catalog::all(store, &Platform::host()).await?;
    images.retain(|l| !crate::build::cache::is_cache_record(&l.name));
    images.retain(|l| keeps_all(filters, &l.name, &l.config_raw["config"]["Labels"]));
    images.sort_by_key(|l| std::cmp::Reverse(catalog::created(l).unwrap_or(0)));
    Ok(images)
}

/// The summary rows of the images [`matching`] `filters`.
pub async fn rows(
    store: &Store,
    filters: &[Filter],
    no_trunc: bool,
) -> Result<Vec<Value>, CatalogError> {
    Ok(matching(store, filters)
        .await?
        .iter()
        .map(|l| catalog::summary(l, no_trunc))
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
        let name = "docker.io/library/busybox:latest";
        let labels = serde_json::json!({"team": "a"});
        assert!(Filter::reference_arg("busybox").keeps(name, &labels));
        assert!(!Filter::reference_arg("busybox:1.36").keeps(name, &labels));
        let parsed = parse_filters(&[
            "dangling=false".into(),
            "reference=busy*".into(),
            "label=team".into(),
            "label=team=a".into(),
        ])
        .unwrap();
        assert!(parsed.iter().all(|f| f.keeps(name, &labels)));
        let other = parse_filters(&[
            "label=team=b".into(),
            "label=x".into(),
            "dangling=true".into(),
        ])
        .unwrap();
        assert!(other.iter().all(|f| !f.keeps(name, &labels)));
        assert!(!Filter::Label("team".into(), None).keeps(name, &Value::Null));
        // References: any one of them; other filters: all.
        let refs = parse_filters(&["reference=alpine".into(), "reference=busybox".into()]).unwrap();
        assert!(keeps_all(&refs, name, &labels));
        assert!(!keeps_all(&other, name, &labels));
        // A dangling record (a digest, no name) is kept by dangling=true, never by a reference.
        let dangling =
            "<none>@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(Filter::Dangling(true).keeps(dangling, &Value::Null));
        assert!(!Filter::Reference("*".into()).keeps(dangling, &Value::Null));
        assert_eq!(
            parse_filters(&["since=x".into()]).unwrap_err().to_string(),
            "unsupported filter \"since=x\": use reference=PATTERN, dangling=true|false or label=KEY[=VALUE]"
        );
    }
}
