//! Named build contexts (`--build-context NAME=VALUE`, Compose's `build.additional_contexts`):
//! what each names (an image, a directory, a remote repository or archive), the name a
//! Dockerfile's `FROM NAME`, `COPY --from=NAME` and `RUN --mount=from=NAME` match it by, and
//! the remote ones fetched into directories before the build reads them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::images::reference::Reference;

/// What a named context is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `docker-image://REF`: an image, pulled when missing.
    Image(String),
    /// A local directory (its own `.dockerignore` applies).
    Dir(PathBuf),
    /// A Git repository or an http(s) URL of a tar archive, fetched into a directory.
    Remote(String),
}

/// A `--build-context` that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--build-context {given:?}: {why}")]
pub struct BadContext {
    pub given: String,
    pub why: String,
}

/// The named contexts of a build, by [`key`].
#[derive(Debug, Clone, Default)]
pub struct NamedContexts(BTreeMap<String, NamedContext>);

impl NamedContexts {
    /// Reads `NAME=VALUE`s; relative directories are taken from `base`.
    pub fn parse<S: AsRef<str>>(specs: &[S], base: &Path) -> Result<NamedContexts, BadContext> {
        let mut out = NamedContexts::default();
        for s in specs {
            let s = s.as_ref();
            let Some((name, value)) = s.split_once('=') else {
                return Err(bad(s, "give NAME=VALUE (a directory, docker-image://IMAGE, a Git repository or an http(s) URL)"));
            };
            out.insert(name, value, base).map_err(|why| bad(s, &why))?;
        }
        Ok(out)
    }

    /// Adds `name` for `value` (relative directories from `base`); the reason when refused.
    pub fn insert(&mut self, name: &str, value: &str, base: &Path) -> Result<(), String> {
        let k = key(name).ok_or_else(|| {
            format!("{name:?} is not a context name (a name as FROM or COPY --from give it)")
        })?;
        let context = if let Some(image) = value.strip_prefix("docker-image://") {
            Reference::parse(image).map_err(|e| format!("docker-image://{image}: {e}"))?;
            NamedContext::Image(image.to_string())
        } else if value.starts_with("oci-layout://") {
            return Err("oci-layout:// contexts are not supported: load the layout with `burrow load` and name the image with docker-image://".into());
        } else if value.starts_with("target:") || value.starts_with("service:") {
            return Err(format!(
                "{value}: names a bake target or a Compose service, which only those tools resolve"
            ));
        } else if super::fetch::is_git(value) || super::fetch::is_url(value) {
            NamedContext::Remote(value.to_string())
        } else if value.contains("://") {
            return Err(format!("{value}: give a directory, docker-image://IMAGE, a Git repository or an http(s) URL"));
        } else {
            let dir = base.join(value);
            if !dir.is_dir() {
                return Err(format!("{} is not a directory", dir.display()));
            }
            NamedContext::Dir(dir)
        };
        self.0.insert(k, context);
        Ok(())
    }

    /// The context a Dockerfile's `name` (a FROM base, a --from) means, if one is given.
    pub fn get(&self, name: &str) -> Option<&NamedContext> {
        self.0.get(&key(name)?)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &NamedContext)> {
        self.0.iter()
    }
}

fn bad(given: &str, why: &str) -> BadContext {
    BadContext {
        given: given.to_string(),
        why: why.to_string(),
    }
}

/// The name a context is matched by, as BuildKit matches it: an image name's short form
/// without `:latest` (`alpine`, `docker.io/library/alpine:latest` and `alpine:latest` are one),
/// anything else that is no image name lower-cased.
pub fn key(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    match Reference::parse(name) {
        Ok(r) => {
            let f = r.familiar();
            Some(f.strip_suffix(":latest").unwrap_or(&f).to_string())
        }
        Err(_) => Some(name.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_buildkit_matches_them() {
        assert_eq!(key("alpine"), key("docker.io/library/alpine:latest"));
        assert_eq!(key("alpine"), key("alpine:latest"));
        assert_ne!(key("alpine"), key("alpine:3.19"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        let c = NamedContexts::parse(
            &[
                "alpine=docker-image://127.0.0.1:5000/busybox:1",
                "src=src",
                "repo=https://example.com/x.git",
            ],
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            c.get("alpine:latest"),
            Some(&NamedContext::Image("127.0.0.1:5000/busybox:1".into()))
        );
        assert_eq!(
            c.get("src"),
            Some(&NamedContext::Dir(dir.path().join("src")))
        );
        assert!(matches!(c.get("repo"), Some(NamedContext::Remote(_))));
        assert_eq!(c.get("other"), None);
        for (spec, why) in [
            ("noequals", "NAME=VALUE"),
            ("x=missing", "not a directory"),
            ("x=oci-layout:///l", "burrow load"),
            ("x=service:web", "Compose service"),
            ("x=docker-image://UPPER", "docker-image://UPPER"),
            ("x=s3://b/k", "give a directory"),
        ] {
            let err = NamedContexts::parse(&[spec], dir.path()).unwrap_err();
            assert!(err.to_string().contains(why), "{spec}: {err}");
        }
    }
}
