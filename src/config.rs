//! burrow.toml: defaults for the global flags (~/.config/burrow/burrow.toml rootless, /etc/burrow/burrow.toml rootful).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Keys of burrow.toml; every key is optional and a flag or environment variable wins over it.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub address: Option<PathBuf>,
    pub namespace: Option<String>,
    pub data_root: Option<PathBuf>,
    pub debug: Option<bool>,
    pub snapshotter: Option<String>,
    pub cgroup_manager: Option<String>,
    /// CDI spec dirs (replacing /etc/cdi, /var/run/cdi and the user's ~/.config/cdi).
    pub cdi_spec_dirs: Option<Vec<PathBuf>>,
}

/// Errors reading burrow.toml.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid burrow.toml: {source} (fix or remove the file)")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

/// The config file used when `--config` is not given: per-user when not root, else the system one.
pub fn default_path(euid: u32, config_home: Option<&Path>) -> Option<PathBuf> {
    if euid == 0 {
        return Some(PathBuf::from("/etc/burrow/burrow.toml"));
    }
    config_home.map(|c| c.join("burrow/burrow.toml"))
}

/// Loads a config file; a missing file is an empty config unless it was asked for explicitly.
pub fn load(path: &Path, explicit: bool) -> Result<FileConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key() {
        let c = parse(
            "address = \"/tmp/c.sock\"\nnamespace = \"k8s\"\ndata_root = \"/scratch/x\"\ndebug = true\nsnapshotter = \"native\"\ncgroup_manager = \"none\"\ncdi_spec_dirs = [\"/site/cdi\"]\n",
            Path::new("t"),
        )
        .unwrap();
        assert_eq!(c.address.as_deref(), Some(Path::new("/tmp/c.sock")));
        assert_eq!(c.namespace.as_deref(), Some("k8s"));
        assert_eq!(c.snapshotter.as_deref(), Some("native"));
        assert_eq!(c.debug, Some(true));
        assert_eq!(c.cdi_spec_dirs, Some(vec![PathBuf::from("/site/cdi")]));
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_file() {
        let err = parse("adress = \"x\"", Path::new("/etc/burrow/burrow.toml")).unwrap_err();
        assert!(err.to_string().contains("/etc/burrow/burrow.toml"), "{err}");
    }

    #[test]
    fn missing_file_is_empty_unless_explicit() {
        let p = Path::new("/nonexistent/burrow.toml");
        assert_eq!(load(p, false).unwrap(), FileConfig::default());
        assert!(load(p, true).is_err());
    }

    #[test]
    fn default_path_by_user() {
        assert_eq!(
            default_path(0, None),
            Some(PathBuf::from("/etc/burrow/burrow.toml"))
        );
        assert_eq!(
            default_path(1000, Some(Path::new("/h/.config"))),
            Some(PathBuf::from("/h/.config/burrow/burrow.toml"))
        );
    }
}
