//! burrow.toml: defaults for the global flags and for every container. The site's
//! /etc/burrow/burrow.toml applies to everyone (root reads only it); a user's
//! ~/.config/burrow/burrow.toml overrides it key by key, except the keys the site locks.

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
    /// Environment variables passed from the caller into every container: names, or patterns
    /// with `*` (`SLURM_*`); a variable the container sets itself wins.
    pub env: Option<Vec<String>>,
    /// Bind mounts added to every container, as `-v` takes them (`/scratch:/scratch:rw`); one
    /// whose source does not exist on this host is skipped with a warning.
    pub mounts: Option<Vec<String>>,
    /// CDI devices added to every container (`nvidia.com/gpu=all`).
    pub devices: Option<Vec<String>>,
    /// The network of a container that names none (instead of `bridge`).
    pub network: Option<String>,
    /// Dirs of the shared read-only image store (`burrow image squash`): an image missing here
    /// starts from there without a pull.
    pub image_store: Option<Vec<PathBuf>>,
    /// Site file only: where rootless users' setups keep images and containers, as `setup
    /// install --data-root` takes it; `{user}`, `{uid}` and `{tmpdir}` are filled in.
    pub user_data_root: Option<String>,
    /// Site file only: keys a user's burrow.toml may not set.
    pub locked: Option<Vec<String>>,
}

impl FileConfig {
    /// The file without the keys that choose a containerd and its state (address, namespace,
    /// data_root): a Slurm job's burrow runs the job's own containerd whatever they say.
    pub fn without_endpoint(self) -> FileConfig {
        FileConfig {
            address: None,
            namespace: None,
            data_root: None,
            ..self
        }
    }
}

/// The keys a user's file can set, as written in the file.
const USER_KEYS: [&str; 12] = [
    "address",
    "namespace",
    "data_root",
    "debug",
    "snapshotter",
    "cgroup_manager",
    "cdi_spec_dirs",
    "env",
    "mounts",
    "devices",
    "network",
    "image_store",
];

/// The environment variable naming another site file (tests; the site file is a convenience
/// for users, not a security boundary: anyone can run runc with their own settings).
pub const SITE_ENV: &str = "BURROW_SITE_CONFIG";

/// The site file: `$BURROW_SITE_CONFIG`, else /etc/burrow/burrow.toml.
pub fn site_path() -> PathBuf {
    std::env::var_os(SITE_ENV)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/etc/burrow/burrow.toml"))
}

/// What every container gets from burrow.toml (see [`FileConfig`]'s keys of the same names).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContainerDefaults {
    pub env: Vec<String>,
    pub mounts: Vec<String>,
    pub devices: Vec<String>,
    pub network: Option<String>,
    pub image_store: Vec<PathBuf>,
}

static DEFAULTS: std::sync::OnceLock<ContainerDefaults> = std::sync::OnceLock::new();

/// Records the defaults this process loaded (once, when its globals are loaded).
pub fn set_defaults(d: ContainerDefaults) {
    let _ = DEFAULTS.set(d);
}

/// The container defaults this process loaded (none before or without a config).
pub fn defaults() -> ContainerDefaults {
    DEFAULTS.get().cloned().unwrap_or_default()
}

/// The network of a container that names none: burrow.toml's `network`, else in a Slurm job
/// the node's own (`host`), else `bridge`.
pub fn default_network() -> String {
    defaults()
        .network
        .or_else(|| crate::slurm::default_network().map(String::from))
        .unwrap_or_else(|| crate::network::DEFAULT_NETWORK.to_string())
}

impl FileConfig {
    /// The container defaults it holds.
    pub fn container_defaults(&self) -> ContainerDefaults {
        ContainerDefaults {
            env: self.env.clone().unwrap_or_default(),
            mounts: self.mounts.clone().unwrap_or_default(),
            devices: self.devices.clone().unwrap_or_default(),
            network: self.network.clone(),
            image_store: self.image_store.clone().unwrap_or_default(),
        }
    }

    /// The keys set in this file.
    fn set_keys(&self) -> Vec<&'static str> {
        let set = [
            self.address.is_some(),
            self.namespace.is_some(),
            self.data_root.is_some(),
            self.debug.is_some(),
            self.snapshotter.is_some(),
            self.cgroup_manager.is_some(),
            self.cdi_spec_dirs.is_some(),
            self.env.is_some(),
            self.mounts.is_some(),
            self.devices.is_some(),
            self.network.is_some(),
            self.image_store.is_some(),
        ];
        USER_KEYS
            .iter()
            .zip(set)
            .filter(|(_, s)| *s)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// The site's file under the user's: each key the user sets replaces the site's, except that
/// `env`, `mounts` and `devices` add to the site's lists; a locked key or a site-only key in the
/// user's file is an error naming both files.
pub fn merge_site(
    site: FileConfig,
    site_path: &Path,
    user: FileConfig,
    user_path: &Path,
) -> Result<FileConfig, ConfigError> {
    let refuse = |key: &str, why: &str| ConfigError::Site {
        key: key.to_string(),
        user: user_path.to_owned(),
        site: site_path.to_owned(),
        why: why.to_string(),
    };
    if user.user_data_root.is_some() {
        return Err(refuse("user_data_root", "it is a site-only key"));
    }
    if user.locked.is_some() {
        return Err(refuse("locked", "it is a site-only key"));
    }
    let locked = site.locked.clone().unwrap_or_default();
    if let Some(k) = locked.iter().find(|k| !USER_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::Site {
            key: k.clone(),
            user: site_path.to_owned(),
            site: site_path.to_owned(),
            why: format!(
                "`locked` names no key of burrow.toml (keys: {})",
                USER_KEYS.join(", ")
            ),
        });
    }
    if let Some(k) = user
        .set_keys()
        .into_iter()
        .find(|k| locked.iter().any(|l| l == k))
    {
        return Err(refuse(k, "the site locks it"));
    }
    let join = |a: Option<Vec<String>>, b: Option<Vec<String>>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.into_iter().chain(b).flatten().collect()),
    };
    Ok(FileConfig {
        address: user.address.or(site.address),
        namespace: user.namespace.or(site.namespace),
        data_root: user.data_root.or(site.data_root),
        debug: user.debug.or(site.debug),
        snapshotter: user.snapshotter.or(site.snapshotter),
        cgroup_manager: user.cgroup_manager.or(site.cgroup_manager),
        cdi_spec_dirs: user.cdi_spec_dirs.or(site.cdi_spec_dirs),
        env: join(site.env, user.env),
        mounts: join(site.mounts, user.mounts),
        devices: join(site.devices, user.devices),
        network: user.network.or(site.network),
        image_store: match (site.image_store, user.image_store) {
            (None, None) => None,
            (a, b) => Some(a.into_iter().chain(b).flatten().collect()),
        },
        user_data_root: site.user_data_root,
        locked: site.locked,
    })
}

/// `user_data_root` with `{user}`, `{uid}` and `{tmpdir}` filled in; it must come out absolute.
pub fn expand_user_data_root(
    template: &str,
    user: &str,
    uid: u32,
    tmpdir: Option<&str>,
) -> Option<PathBuf> {
    let tmp = tmpdir.filter(|t| t.starts_with('/')).unwrap_or("/tmp");
    let p = template
        .replace("{user}", user)
        .replace("{uid}", &uid.to_string())
        .replace("{tmpdir}", tmp);
    Path::new(&p).is_absolute().then(|| PathBuf::from(p))
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
    #[error("{}: `{key}` cannot be set there: {why} (site file {}); remove it from {}", user.display(), site.display(), user.display())]
    Site {
        key: String,
        user: PathBuf,
        site: PathBuf,
        why: String,
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
    fn the_users_file_overrides_the_sites_but_not_its_locked_keys() {
        let site = parse(
            "network = \"hpc\"\nenv = [\"SLURM_*\"]\ndevices = [\"nvidia.com/gpu=all\"]\nsnapshotter = \"native\"\nlocked = [\"devices\"]\n",
            Path::new("/site"),
        )
        .unwrap();
        let user = parse(
            "network = \"mine\"\nenv = [\"OMP_NUM_THREADS\"]\n",
            Path::new("/u"),
        )
        .unwrap();
        let m = merge_site(site.clone(), Path::new("/site"), user, Path::new("/u")).unwrap();
        assert_eq!(m.network.as_deref(), Some("mine"));
        assert_eq!(m.snapshotter.as_deref(), Some("native"));
        assert_eq!(
            m.env,
            Some(vec!["SLURM_*".to_string(), "OMP_NUM_THREADS".to_string()])
        );
        let locked = parse("devices = []\n", Path::new("/u")).unwrap();
        let err = merge_site(site.clone(), Path::new("/site"), locked, Path::new("/u"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("devices") && err.contains("locks") && err.contains("/site"),
            "{err}"
        );
        let site_only = parse("user_data_root = \"/x\"\n", Path::new("/u")).unwrap();
        assert!(merge_site(site, Path::new("/site"), site_only, Path::new("/u")).is_err());
    }

    #[test]
    fn user_data_root_is_filled_in_per_user() {
        assert_eq!(
            expand_user_data_root("/local/{user}/burrow-{uid}", "ann", 1001, None),
            Some(PathBuf::from("/local/ann/burrow-1001"))
        );
        assert_eq!(
            expand_user_data_root("{tmpdir}/b-{user}", "ann", 1, Some("/scratch")),
            Some(PathBuf::from("/scratch/b-ann"))
        );
        assert_eq!(expand_user_data_root("rel/{user}", "ann", 1, None), None);
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
