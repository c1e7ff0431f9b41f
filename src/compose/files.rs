//! Which Compose files a project reads (the -f list, or the default names and their override),
//! and reading one into YAML (`-` is stdin).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::error::ComposeError;

/// The default file names, in Docker Compose's order of preference.
const DEFAULTS: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The files to read: `given` made absolute from `cwd` (`-` stays), or the first default name
/// found in `dir` (and, with `parents`, in its parents, as Docker Compose looks) and its
/// `.override.` sibling when present.
pub fn choose(
    given: &[PathBuf],
    cwd: &Path,
    dir: &Path,
    parents: bool,
) -> Result<Vec<PathBuf>, ComposeError> {
    if !given.is_empty() {
        return Ok(given
            .iter()
            .map(|f| {
                if f == Path::new("-") {
                    f.clone()
                } else {
                    cwd.join(f)
                }
            })
            .collect());
    }
    let depth = if parents { usize::MAX } else { 1 };
    let main = dir
        .ancestors()
        .take(depth)
        .find_map(|d| {
            DEFAULTS
                .iter()
                .map(|name| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| ComposeError::NoFile {
            dir: dir.to_path_buf(),
        })?;
    let mut files = vec![main.clone()];
    if let Some(over) = override_of(&main).filter(|p| p.is_file()) {
        files.push(over);
    }
    Ok(files)
}

/// `compose.yaml` → `compose.override.yaml`.
fn override_of(main: &Path) -> Option<PathBuf> {
    let stem = main.file_stem()?.to_str()?;
    let ext = main.extension()?.to_str()?;
    Some(main.with_file_name(format!("{stem}.override.{ext}")))
}

/// Reads one file (or stdin for `-`) and parses it; an empty file is an empty mapping.
pub fn read(path: &Path) -> Result<Value, ComposeError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| ComposeError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
            path: path.to_path_buf(),
            source,
        })?
    };
    parse(path, &text)
}

/// Parses YAML text, resolving `<<` merge keys; the top level must be a mapping.
pub fn parse(path: &Path, text: &str) -> Result<Value, ComposeError> {
    let mut doc: Value = serde_yaml::from_str(text).map_err(|e| ComposeError::yaml(path, &e))?;
    if doc.is_null() {
        return Ok(Value::Mapping(Default::default()));
    }
    doc.apply_merge()
        .map_err(|e| ComposeError::yaml(path, &e))?;
    if !doc.is_mapping() {
        return Err(ComposeError::Invalid {
            files: path.display().to_string(),
            line: None,
            key: "(top level)".into(),
            message: "a Compose file must be a mapping (services:, networks:, ...)".into(),
        });
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(matches!(
            choose(&[], d, d, false),
            Err(ComposeError::NoFile { .. })
        ));
        std::fs::write(d.join("docker-compose.yml"), "").unwrap();
        std::fs::write(d.join("compose.yaml"), "").unwrap();
        std::fs::write(d.join("compose.override.yaml"), "").unwrap();
        let sub = d.join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert!(choose(&[], &sub, &sub, false).is_err());
        assert_eq!(
            choose(&[], &sub, &sub, true).unwrap()[0],
            d.join("compose.yaml")
        );
        let got = choose(&[], d, d, false).unwrap();
        assert_eq!(
            got,
            [d.join("compose.yaml"), d.join("compose.override.yaml")]
        );
        let got = choose(&["a.yml".into(), "-".into()], d, d, false).unwrap();
        assert_eq!(got, [d.join("a.yml"), PathBuf::from("-")]);
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let err = parse(Path::new("/p/c.yaml"), "services:\n  web:\n    image: [a\n").unwrap_err();
        let ComposeError::Yaml { line, .. } = &err else {
            panic!("{err}")
        };
        assert!(line.is_some(), "{err}");
        assert!(err.to_string().starts_with("/p/c.yaml line "), "{err}");
    }

    #[test]
    fn merge_keys() {
        let doc = parse(
            Path::new("c"),
            "x-base: &b\n  image: a\n  tty: true\nservices:\n  web:\n    <<: *b\n    image: b\n",
        )
        .unwrap();
        assert_eq!(doc["services"]["web"]["image"], Value::from("b"));
        assert_eq!(doc["services"]["web"]["tty"], Value::from(true));
    }
}
