//! `images` (and the Docker API's image list): the local images, newest first, kept by
//! `--filter`s (reference globs, dangling, labels, before, since, until) and the optional
//! `REPOSITORY[:TAG]` argument.

use serde_json::Value;

use super::catalog::{self, CatalogError};
use super::local::LocalImage;
use super::manifest::Platform;
use super::store::Store;

/// A `--filter` that is not one of the supported ones, or whose value cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(
        "unsupported filter {0:?}: use reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE or until=TIME"
    )]
    Unsupported(String),
    #[error("invalid filter {0:?}: {1}")]
    Bad(String, String),
}

/// What a filter looks at in an image record.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The record's name (a reference, or a dangling record's).
    pub name: &'a str,
    /// The config's labels (a JSON object, or null).
    pub labels: &'a Value,
    /// The config's creation time (Unix seconds), when it has one.
    pub created: Option<i64>,
}

/// Where a `before` or `since` filter draws its line: the image it names, and once
/// [`resolve`]d that image's creation time (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Image(String),
    At(i64),
}

/// One `--filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `reference=PATTERN`: the repository, or repository:tag, matches the glob.
    Reference(String),
    /// `dangling=true|false`: no tag nor digest names the image (or one does).
    Dangling(bool),
    /// `label=KEY` or `label=KEY=VALUE`: the image's config has the label (with that value).
    Label(String, Option<String>),
    /// `before=IMAGE`: created before that image.
    Before(Bound),
    /// `since=IMAGE`: created after that image.
    Since(Bound),
    /// `until=TIME` (a timestamp, or a duration such as 24h before now): created before then.
    Until(i64),
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

    /// Whether the image record `c` passes (an unresolved [`Bound`] keeps nothing).
    pub fn keeps(&self, c: &Candidate) -> bool {
        let (name, labels) = (c.name, c.labels);
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
            Filter::Before(Bound::At(t)) | Filter::Until(t) => c.created.is_some_and(|c| c < *t),
            Filter::Since(Bound::At(t)) => c.created.is_some_and(|c| c > *t),
            Filter::Before(Bound::Image(_)) | Filter::Since(Bound::Image(_)) => false,
        }
    }
}

/// Whether the record `c` passes `filters` as Docker applies them: any one of the
/// `reference` filters, and every other filter.
pub fn keeps_all(filters: &[Filter], c: &Candidate) -> bool {
    let (refs, others): (Vec<&Filter>, Vec<&Filter>) = filters
        .iter()
        .partition(|f| matches!(f, Filter::Reference(_)));
    (refs.is_empty() || refs.iter().any(|f| f.keeps(c))) && others.iter().all(|f| f.keeps(c))
}

/// `filters` with each `before`/`since` image replaced by its creation time; an image that
/// is not here is an error, as with Docker (an image without a creation time counts as made
/// at the epoch).
pub async fn resolve(store: &Store, filters: Vec<Filter>) -> Result<Vec<Filter>, CatalogError> {
    let mut out = Vec::with_capacity(filters.len());
    for f in filters {
        let at = |image: String| async move {
            let found = catalog::find(store, &image, &Platform::host()).await?;
            Ok::<_, CatalogError>(Bound::At(
                found.first().and_then(catalog::created).unwrap_or(0),
            ))
        };
        out.push(match f {
            Filter::Before(Bound::Image(i)) => Filter::Before(at(i).await?),
            Filter::Since(Bound::Image(i)) => Filter::Since(at(i).await?),
            other => other,
        });
    }
    Ok(out)
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
            Some(("before", i)) if !i.is_empty() => Ok(Filter::Before(Bound::Image(i.to_owned()))),
            Some(("since", i)) if !i.is_empty() => Ok(Filter::Since(Bound::Image(i.to_owned()))),
            Some(("until", t)) => crate::containers::logquery::parse_unix_secs("until", t)
                .map(Filter::Until)
                .map_err(|e| FilterError::Bad(f.clone(), e.to_string())),
            _ => Err(FilterError::Unsupported(f.clone())),
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
/// ([`resolve`]d) `filters` keep, newest first; the build cache's records are the builder's,
/// never listed.
pub async fn matching(store: &Store, filters: &[Filter]) -> Result<Vec<LocalImage>, CatalogError> {
    let mut images = catalog::all(store, &Platform::host()).await?;
    images.retain(|l| !crate::build::cache::is_cache_record(&l.name));
    images.retain(|l| {
        let c = Candidate {
            name: &l.name,
            labels: &l.config_raw["config"]["Labels"],
            created: catalog::created(l),
        };
        keeps_all(filters, &c)
    });
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
        let labels = serde_json::json!({"team": "a"});
        let c = Candidate {
            name: "docker.io/library/busybox:latest",
            labels: &labels,
            created: Some(1000),
        };
        assert!(Filter::reference_arg("busybox").keeps(&c));
        assert!(!Filter::reference_arg("busybox:1.36").keeps(&c));
        let parsed = parse_filters(&[
            "dangling=false".into(),
            "reference=busy*".into(),
            "label=team".into(),
            "label=team=a".into(),
        ])
        .unwrap();
        assert!(parsed.iter().all(|f| f.keeps(&c)));
        let other = parse_filters(&[
            "label=team=b".into(),
            "label=x".into(),
            "dangling=true".into(),
        ])
        .unwrap();
        assert!(other.iter().all(|f| !f.keeps(&c)));
        let unlabelled = Candidate {
            labels: &Value::Null,
            ..c
        };
        assert!(!Filter::Label("team".into(), None).keeps(&unlabelled));
        // References: any one of them; other filters: all.
        let refs = parse_filters(&["reference=alpine".into(), "reference=busybox".into()]).unwrap();
        assert!(keeps_all(&refs, &c));
        assert!(!keeps_all(&other, &c));
        // A dangling record (a digest, no name) is kept by dangling=true, never by a reference.
        let dangling = Candidate {
            name: "<none>@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ..unlabelled
        };
        assert!(Filter::Dangling(true).keeps(&dangling));
        assert!(!Filter::Reference("*".into()).keeps(&dangling));
        assert_eq!(
            parse_filters(&["after=x".into()]).unwrap_err().to_string(),
            "unsupported filter \"after=x\": use reference=PATTERN, dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE or until=TIME"
        );
    }

    #[test]
    fn times() {
        let c = |created| Candidate {
            name: "docker.io/library/busybox:latest",
            labels: &Value::Null,
            created,
        };
        let parsed = parse_filters(&["before=a".into(), "since=b".into()]).unwrap();
        assert_eq!(parsed[0], Filter::Before(Bound::Image("a".into())));
        assert_eq!(parsed[1], Filter::Since(Bound::Image("b".into())));
        // Unresolved, they keep nothing.
        assert!(!parsed[0].keeps(&c(Some(1))));
        let before = Filter::Before(Bound::At(100));
        let since = Filter::Since(Bound::At(100));
        assert!(before.keeps(&c(Some(99))) && !before.keeps(&c(Some(100))));
        assert!(since.keeps(&c(Some(101))) && !since.keeps(&c(Some(100))));
        assert!(!before.keeps(&c(None)) && !since.keeps(&c(None)));
        let until = parse_filters(&["until=1700000000".into()]).unwrap();
        assert_eq!(until, [Filter::Until(1_700_000_000)]);
        assert!(until[0].keeps(&c(Some(1_699_999_999))));
        assert!(!until[0].keeps(&c(Some(1_700_000_000))));
        // A duration counts back from now.
        let Filter::Until(t) = parse_filters(&["until=1h".into()]).unwrap()[0] else {
            panic!("until")
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now - 3600 - t).abs() <= 2);
        let bad = parse_filters(&["until=soon".into()])
            .unwrap_err()
            .to_string();
        assert!(bad.starts_with("invalid filter \"until=soon\""), "{bad}");
        assert!(parse_filters(&["before=".into()]).is_err());
    }
}
