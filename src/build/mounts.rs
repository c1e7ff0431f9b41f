//! `RUN --mount`, BuildKit's two most used forms: `type=cache` (a directory kept across builds,
//! here a named volume `burrow-build-cache-<id>` that `builder prune` removes) and `type=bind`
//! (files of the context, a stage or an image, read-only unless `rw`; written to a temporary
//! directory for the step, so writes are discarded and `.dockerignore` holds).

use std::path::Path;

use super::files::{Kind, Tree};

/// The prefix of the volumes cache mounts use.
pub const CACHE_VOLUME_PREFIX: &str = "burrow-build-cache-";

/// One `--mount` of a RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    Cache {
        target: String,
        /// The cache's identity (`id=`, default the target).
        id: String,
    },
    Bind {
        target: String,
        /// The path in the source (default its root).
        source: String,
        /// A stage or image (none: the context).
        from: Option<String>,
        rw: bool,
    },
}

impl RunMount {
    /// Parses a `--mount` value (`type=cache,target=/root/.cache`).
    pub fn parse(v: &str) -> Result<RunMount, String> {
        let (mut typ, mut target, mut source, mut from, mut id) =
            ("bind".to_string(), None, None, None, None);
        let mut rw = false;
        // The type first: a secret, ssh or tmpfs mount's own options must not hide that the
        // type itself is what burrow lacks.
        if let Some(t) = v
            .split(',')
            .find_map(|f| f.strip_prefix("type="))
            .filter(|t| !matches!(*t, "cache" | "bind"))
        {
            return Err(format!(
                "--mount type={t} is not supported by burrow's builder: use type=cache or type=bind"
            ));
        }
        for field in v.split(',').filter(|f| !f.is_empty()) {
            let (k, val) = field.split_once('=').unwrap_or((field, ""));
            match k {
                "type" => typ = val.to_string(),
                "target" | "dst" | "destination" => target = Some(val.to_string()),
                "source" | "src" => source = Some(val.to_string()),
                "from" => from = Some(val.to_string()),
                "id" => id = Some(val.to_string()),
                "rw" | "readwrite" => rw = val.is_empty() || val == "true",
                "ro" | "readonly" => rw = !(val.is_empty() || val == "true"),
                // One build runs its steps one after another: every sharing mode behaves alike.
                "sharing" if matches!(val, "shared" | "private" | "locked") => {}
                _ => return Err(format!("unsupported --mount option {field:?} (supported: type=cache|bind, target, source, from, id, rw, sharing)")),
            }
        }
        let target = target
            .filter(|t| t.starts_with('/'))
            .ok_or_else(|| "--mount needs target=/ABSOLUTE/PATH".to_string())?;
        match typ.as_str() {
            "cache" if source.is_some() || from.is_some() => {
                Err("--mount type=cache takes no source or from here".into())
            }
            "cache" => Ok(RunMount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
            }),
            "bind" => Ok(RunMount::Bind {
                target,
                source: source.unwrap_or_default(),
                from,
                rw,
            }),
            other => Err(format!(
                "--mount type={other} is not supported: use type=cache or type=bind"
            )),
        }
    }
}

/// The volume a cache mount of `id` uses.
pub fn cache_volume(id: &str) -> String {
    let digest = crate::images::manifest::sha256(id.as_bytes());
    format!("{CACHE_VOLUME_PREFIX}{}", &digest["sha256:".len()..][..16])
}

/// Writes `tree` under `dir` (files, directories, symlinks with their modes; owners are the
/// caller's).
pub fn materialize(tree: &Tree, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for e in tree.values() {
        let p = dir.join(&e.path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(&p)?,
            Kind::File(d) => {
                std::io::copy(&mut d.reader()?, &mut std::fs::File::create(&p)?)?;
            }
            Kind::Symlink(t) => {
                std::os::unix::fs::symlink(t, &p)?;
                continue;
            }
        }
        // Directories stay searchable by the step.
        let mode = if e.kind == Kind::Dir {
            e.mode | 0o700
        } else {
            e.mode
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildkit_forms() {
        assert_eq!(
            RunMount::parse("type=cache,target=/root/.cache").unwrap(),
            RunMount::Cache {
                target: "/root/.cache".into(),
                id: "/root/.cache".into()
            }
        );
        assert_eq!(
            RunMount::parse("target=/src,source=app,from=build,rw").unwrap(),
            RunMount::Bind {
                target: "/src".into(),
                source: "app".into(),
                from: Some("build".into()),
                rw: true
            }
        );
        assert!(RunMount::parse("type=secret,target=/s").is_err());
        let err = RunMount::parse("type=secret,id=npm,required").unwrap_err();
        assert!(err.contains("type=secret is not supported"), "{err}");
        assert!(RunMount::parse("type=cache").is_err());
        assert!(RunMount::parse("type=cache,target=/c,uid=1000").is_err());
        assert_ne!(cache_volume("/a"), cache_volume("/b"));
        assert!(cache_volume("/a").starts_with(CACHE_VOLUME_PREFIX));
    }

    #[test]
    fn materializes_trees() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::new();
        for (p, k) in [
            ("d", Kind::Dir),
            ("d/f", Kind::File(b"x".to_vec().into())),
            ("l", Kind::Symlink("d/f".into())),
        ] {
            t.insert(
                p.into(),
                super::super::files::Entry {
                    path: p.into(),
                    kind: k,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                },
            );
        }
        materialize(&t, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("l")).unwrap(), "x");
    }
}
