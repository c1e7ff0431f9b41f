//! Named and anonymous volumes as nerdctl stores them: `DATA_ROOT/volumes/NS/NAME/_data`, with
//! labels in `volume.json`, changed under a lock file so concurrent burrow processes do not race.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::store::private_dir;
use super::Ctx;

/// The label Docker (23+) puts on the volumes it creates for `-v /path` without a name: only
/// volumes carrying it are pruned unless `volume prune --all`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// What went wrong with a volume.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: use letters, digits, '.', '_' and '-'")]
    InvalidName(String),
    #[error("volume {0} already exists")]
    Exists(String),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} is in use by container {container}: remove the container first")]
    InUse { name: String, container: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("removing volume {name}: {source}")]
    Remove {
        name: String,
        source: std::io::Error,
    },
    #[error("invalid --filter {0:?}: use label=KEY[=VALUE] or label!=KEY[=VALUE] (volume ls also takes name=, dangling=true|false and driver=)")]
    BadFilter(String),
    #[error("volume options {0}: the local driver takes type, o and device: a bind of a host directory (type=none, o=bind, device=/absolute/dir), or a filesystem to mount (type=tmpfs, o=size=100m; rootful also type=nfs, ext4, ... with device=)")]
    Options(String),
    #[error("volume options {0}: rootless, only a tmpfs can be mounted (the user namespace may not mount {1}); create it as root, or use type=tmpfs or a bind of a directory")]
    RootlessMount(String, String),
    #[error("volume {name}: mounting its {fstype}: {why} (check its options with `burrow volume inspect {name}`; to change them, remove the volume and create it again with other -o)")]
    Mount {
        name: String,
        fstype: String,
        why: String,
    },
    #[error("volume option device={}: {why}", path.display())]
    Device { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    #[serde(rename = "Labels", default)]
    labels: HashMap<String, String>,
    /// The local driver's options (`type`, `o`, `device`), as `volume create -o` gave them.
    #[serde(rename = "Options", default, skip_serializing_if = "HashMap::is_empty")]
    options: HashMap<String, String>,
}

/// A filesystem a volume mounts on its data dir (the local driver's `type`, `device`, `o`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    pub fstype: String,
    pub device: String,
    /// The mount flags of `o` (ro, nosuid, noexec ...).
    pub flags: Vec<String>,
    /// The rest of `o`, handed to the filesystem (size=100m,uid=1000 ...).
    pub data: String,
}

/// The mount flag a word of `o` names (None: a filesystem option, or a default such as rw).
pub fn mount_flag(word: &str) -> Option<nix::mount::MsFlags> {
    use nix::mount::MsFlags as F;
    Some(match word {
        "ro" => F::MS_RDONLY,
        "nosuid" => F::MS_NOSUID,
        "nodev" => F::MS_NODEV,
        "noexec" => F::MS_NOEXEC,
        "sync" => F::MS_SYNCHRONOUS,
        "dirsync" => F::MS_DIRSYNC,
        "noatime" => F::MS_NOATIME,
        "nodiratime" => F::MS_NODIRATIME,
        "relatime" => F::MS_RELATIME,
        "strictatime" => F::MS_STRICTATIME,
        "mand" => F::MS_MANDLOCK,
        _ => return None,
    })
}

/// The filesystem a volume's local-driver options mount (`type` other than none/bind); None
/// for a plain volume or a bind. Rootless, only tmpfs (a user namespace may mount few others).
pub fn mount_opts(
    options: &HashMap<String, String>,
    rootless: bool,
) -> Result<Option<MountOpts>, VolumeError> {
    let fstype = match options.get("type").map(String::as_str) {
        None | Some("" | "none" | "bind" | "rbind") => return Ok(None),
        Some(t) => t.to_string(),
    };
    let text = || {
        let mut o: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        o.sort();
        o.join(",")
    };
    if options
        .keys()
        .any(|k| !matches!(k.as_str(), "type" | "o" | "device"))
    {
        return Err(VolumeError::Options(text()));
    }
    if rootless && fstype != "tmpfs" {
        return Err(VolumeError::RootlessMount(text(), fstype));
    }
    let device = match options.get("device").filter(|d| !d.is_empty()) {
        Some(d) => d.clone(),
        None if fstype == "tmpfs" => "tmpfs".into(),
        None => return Err(VolumeError::Options(text())),
    };
    let (mut flags, mut data) = (Vec::new(), Vec::new());
    let words = options.get("o").map(String::as_str).unwrap_or_default();
    for w in words.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match w {
            "bind" | "rbind" => return Err(VolumeError::Options(text())),
            "rw" | "suid" | "dev" | "exec" | "async" | "atime" | "diratime" | "defaults" => {}
            w if mount_flag(w).is_some() => flags.push(w.to_string()),
            w => data.push(w.to_string()),
        }
    }
    Ok(Some(MountOpts {
        fstype,
        device,
        flags,
        data: data.join(","),
    }))
}

/// The host directory a volume with the local driver's bind options stands for
/// (`type=none`, `o=bind`, `device=DIR`); None without options. Anything else is refused.
pub fn bind_device(options: &HashMap<String, String>) -> Result<Option<PathBuf>, VolumeError> {
    if options.is_empty() || mount_opts(options, false)?.is_some() {
        return Ok(None);
    }
    let bad = || {
        let mut o: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        o.sort();
        VolumeError::Options(o.join(","))
    };
    if options
        .keys()
        .any(|k| !matches!(k.as_str(), "type" | "o" | "device"))
    {
        return Err(bad());
    }
    if !matches!(
        options.get("type").map(String::as_str),
        None | Some("none" | "")
    ) {
        return Err(bad());
    }
    let flags: Vec<&str> = options
        .get("o")
        .map(|o| o.split(',').map(str::trim).collect())
        .unwrap_or_default();
    if !flags.iter().any(|f| matches!(*f, "bind" | "rbind"))
        || flags
            .iter()
            .any(|f| !matches!(*f, "bind" | "rbind" | "ro" | "rw"))
    {
        return Err(bad());
    }
    let Some(device) = options.get("device").map(PathBuf::from) else {
        return Err(bad());
    };
    if !device.is_absolute() {
        return Err(VolumeError::Device {
            path: device,
            why: "give an absolute path".into(),
        });
    }
    Ok(Some(device))
}

/// A volume, in Docker's `volume inspect` shape.
#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Driver")]
    pub driver: &'static str,
    #[serde(rename = "Mountpoint")]
    pub mountpoint: PathBuf,
    #[serde(rename = "Labels")]
    pub labels: HashMap<String, String>,
    #[serde(rename = "Scope")]
    pub scope: &'static str,
    /// The local driver's options (null without).
    #[serde(rename = "Options")]
    pub options: Option<HashMap<String, String>>,
}

impl Volume {
    /// What a container mounts for this volume: the bound host directory of a volume made
    /// with bind options, else its data dir.
    pub fn source(&self) -> PathBuf {
        self.options
            .as_ref()
            .and_then(|o| bind_device(o).ok().flatten())
            .unwrap_or_else(|| self.mountpoint.clone())
    }
}

/// One `volume prune --filter` condition: `label=KEY[=VALUE]` or `label!=KEY[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    key: String,
    value: Option<String>,
    present: bool,
}

impl std::str::FromStr for LabelFilter {
    type Err = VolumeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (present, rest) = if let Some(r) = s.strip_prefix("label!=") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("label=") {
            (true, r)
        } else {
            return Err(VolumeError::BadFilter(s.to_string()));
        };
        if rest.is_empty() {
            return Err(VolumeError::BadFilter(s.to_string()));
        }
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (rest.to_string(), None),
        };
        Ok(LabelFilter {
            key,
            value,
            present,
        })
    }
}

impl LabelFilter {
    /// Whether `labels` pass this condition.
    pub fn matches(&self, labels: &HashMap<String, String>) -> bool {
        let has = match (labels.get(&self.key), &self.value) {
            (Some(v), Some(want)) => v == want,
            (Some(_), None) => true,
            (None, _) => false,
        };
        has == self.present
    }
}

/// One `volume ls --filter` (and the Docker API's): Docker's name (a substring), label,
/// dangling (no container mounts it) and driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    Name(String),
    Label(LabelFilter),
    Dangling(bool),
    Driver(String),
}

impl std::str::FromStr for ListFilter {
    type Err = VolumeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.split_once('=') {
            Some(("name", v)) => ListFilter::Name(v.to_string()),
            Some(("label" | "label!", _)) => ListFilter::Label(s.parse()?),
            Some(("dangling", "true" | "1")) => ListFilter::Dangling(true),
            Some(("dangling", "false" | "0")) => ListFilter::Dangling(false),
            Some(("driver", v)) => ListFilter::Driver(v.to_string()),
            _ => return Err(VolumeError::BadFilter(s.to_string())),
        })
    }
}

impl ListFilter {
    fn keeps(&self, v: &Volume, used: &InUse) -> bool {
        match self {
            ListFilter::Name(n) => v.name.contains(n.as_str()),
            ListFilter::Label(l) => l.matches(&v.labels),
            ListFilter::Dangling(d) => used.user(&v.source()).is_some() != *d,
            ListFilter::Driver(d) => v.driver == d,
        }
    }
}

/// Whether `volume prune` removes a volume no container uses.
fn prunable(labels: &HashMap<String, String>, all: bool, filters: &[LabelFilter]) -> bool {
    (all || labels.contains_key(ANONYMOUS_LABEL)) && filters.iter().all(|f| f.matches(labels))
}

/// The volumes of one namespace.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
    /// The launcher child whose mount namespace the runtime uses (rootless), None rootful.
    launcher_pid: Option<i32>,
}

impl Volumes {
    /// The volumes of `ctx`'s data root and namespace.
    pub fn of(ctx: &Ctx) -> Volumes {
        Volumes {
            dir: ctx.store.root().join("volumes").join(&ctx.ep.namespace),
            launcher_pid: ctx.launcher_pid(),
        }
    }

    /// Mounts the filesystem volume `name`'s options name on its data dir (in the runtime's
    /// mount namespace) unless it is mounted there already; nothing for other volumes. The
    /// mount stays while containers use it: [`release_unused`] unmounts it once the last one
    /// is seen stopping, as Docker's local driver does (also the volume's removal, and a
    /// launcher or host restart; the next container to use it mounts it again).
    pub fn mount(&self, name: &str) -> Result<(), VolumeError> {
        let Some(m) = self.mount_of(name)? else {
            return Ok(());
        };
        let data = self.data(name);
        if self.is_mounted(&data) {
            return Ok(());
        }
        use super::copy::{Op, Root};
        super::copy::run_helper(
            self.launcher_pid,
            Root::Mounts(Vec::new()),
            Op::MountVolume {
                fstype: m.fstype.clone(),
                device: m.device,
                flags: m.flags,
                data: m.data,
                target: data.display().to_string(),
            },
            "the mount helper failed",
        )
        .map_err(|e| VolumeError::Mount {
            name: name.to_string(),
            fstype: m.fstype,
            why: format!("{e:#}"),
        })?;
        Ok(())
    }

    /// Those of `names` that are volumes of a filesystem (a tmpfs), mounted while used.
    pub fn with_filesystem<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<String> {
        names
            .filter(|n| self.mount_of(n).ok().flatten().is_some())
            .map(str::to_string)
            .collect()
    }

    /// The lock under which a filesystem volume is mounted for a container's task (held until
    /// the task holds its mounts) and unmounted when its last user stopped, so that neither
    /// happens in the middle of the other. A lock of its own (held across awaits, where the
    /// volumes' lock is not), taken on a blocking thread: waiting for it never stalls the
    /// runtime whose task holds it.
    pub async fn lock_mounts(&self) -> Result<Flock<std::fs::File>, VolumeError> {
        let me = self.clone();
        let path = self.dir.join(".mounts.lock");
        tokio::task::spawn_blocking(move || me.lock_file(".mounts.lock"))
            .await
            .map_err(|e| io("waiting for the lock", &path)(std::io::Error::other(e)))?
    }

    /// Whether a volume's data dir holds nothing, as the runtime sees it.
    pub fn is_empty(&self, data: &Path) -> bool {
        std::fs::read_dir(self.seen(data)).is_ok_and(|mut d| d.next().is_none())
    }

    /// Whether `path` (in a volume) is a directory, as the runtime sees it.
    pub fn is_dir(&self, path: &Path) -> bool {
        self.seen(path).is_dir()
    }

    /// `path` as the runtime sees it: through the launcher's mount namespace when rootless,
    /// where a volume's filesystem (a tmpfs) is mounted; the path itself where that view
    /// cannot be read.
    fn seen(&self, path: &Path) -> PathBuf {
        if let Some(pid) = self.launcher_pid {
            let p = PathBuf::from(format!("/proc/{pid}/root"))
                .join(path.strip_prefix("/").unwrap_or(path));
            if p.exists() {
                return p;
            }
        }
        path.to_path_buf()
    }

    /// The filesystem volume `name` mounts, if its options name one.
    fn mount_of(&self, name: &str) -> Result<Option<MountOpts>, VolumeError> {
        let meta = self.meta(name);
        mount_opts(&meta.options, self.launcher_pid.is_some())
    }

    fn meta(&self, name: &str) -> Meta {
        std::fs::read(self.dir.join(name).join("volume.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Whether something is mounted at `path` in the runtime's mount namespace.
    fn is_mounted(&self, path: &Path) -> bool {
        super::mounts::is_mount_point(self.launcher_pid, path)
    }

    /// Unmounts volume `name`'s filesystem, if it has one mounted.
    fn unmount(&self, name: &str) -> Result<(), VolumeError> {
        if self.mount_of(name).ok().flatten().is_none() {
            return Ok(());
        }
        let data = self.data(name);
        if !self.is_mounted(&data) {
            return Ok(());
        }
        use super::copy::{Op, Root};
        super::copy::run_helper(
            self.launcher_pid,
            Root::Mounts(Vec::new()),
            Op::UnmountStore {
                target: data.display().to_string(),
            },
            "the unmount helper failed",
        )
        .map_err(|e| VolumeError::Remove {
            name: name.to_string(),
            source: std::io::Error::other(format!("{e:#}")),
        })?;
        Ok(())
    }

    fn lock(&self) -> Result<Flock<std::fs::File>, VolumeError> {
        self.lock_file(".lock")
    }

    fn lock_file(&self, name: &str) -> Result<Flock<std::fs::File>, VolumeError> {
        private_dir(&self.dir)?;
        let path = self.dir.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("opening the volume lock", &path))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| io("locking", &path)(std::io::Error::from(e)))
    }

    fn data(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    fn create_locked(
        &self,
        name: &str,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<PathBuf, VolumeError> {
        if !crate::network::valid_name(name) {
            return Err(VolumeError::InvalidName(name.to_string()));
        }
        let vdir = self.dir.join(name);
        let data = vdir.join("_data");
        if !data.exists() {
            private_dir(&vdir)?;
            std::fs::create_dir_all(&data).map_err(io("creating", &data))?;
            let meta =
                serde_json::to_vec_pretty(&Meta { labels, options }).map_err(std::io::Error::from);
            let file = vdir.join("volume.json");
            meta.and_then(|m| std::fs::write(&file, m))
                .map_err(io("writing", &file))?;
        }
        Ok(data)
    }

    /// `volume create`: a new volume (named, or with a fresh id), with the local driver's
    /// `options` (a bind of a host directory, see [`bind_device`]); refused if it exists.
    pub fn create(
        &self,
        name: Option<String>,
        labels: HashMap<String, String>,
        options: HashMap<String, String>,
    ) -> Result<String, VolumeError> {
        bind_device(&options)?;
        mount_opts(&options, self.launcher_pid.is_some())?;
        let name = name.unwrap_or_else(super::store::new_id);
        let _l = self.lock()?;
        if self.data(&name).exists() {
            return Err(VolumeError::Exists(name));
        }
        self.create_locked(&name, labels, options)?;
        Ok(name)
    }

    /// What a container mounts for volume `name` (its data dir, or the host directory of bind
    /// options, which must exist), created if absent (for `run -v NAME:/path`); true when this
    /// call created it.
    pub fn ensure(&self, name: &str) -> Result<(PathBuf, bool), VolumeError> {
        self.ensure_with(name, HashMap::new())
    }

    /// [`Self::ensure`], a volume made with the local driver's `options` (`--mount
    /// volume-opt=`) when it does not exist; an existing one is used as it is, as Docker does.
    pub fn ensure_with(
        &self,
        name: &str,
        options: HashMap<String, String>,
    ) -> Result<(PathBuf, bool), VolumeError> {
        bind_device(&options)?;
        mount_opts(&options, self.launcher_pid.is_some())?;
        let _l = self.lock()?;
        let existed = self.data(name).is_dir();
        let plain = options.is_empty();
        let data = self.create_locked(name, HashMap::new(), options)?;
        if !existed && plain {
            return Ok((data, true));
        }
        let source = self.get(name)?.source();
        if !source.is_dir() {
            if !existed {
                // Made just now for this mount: not left behind by the failure.
                let _ = std::fs::remove_dir_all(self.dir.join(name));
            }
            return Err(VolumeError::Device {
                path: source,
                why: format!("volume {name} binds it, and it is not a directory here: create it, or remove the volume"),
            });
        }
        Ok((source, !existed))
    }

    /// A new anonymous volume (for `run -v /path`), labelled as Docker labels them.
    pub fn create_anonymous(&self) -> Result<(String, PathBuf), VolumeError> {
        let _l = self.lock()?;
        let name = super::store::new_id();
        let labels = HashMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
        let data = self.create_locked(&name, labels, HashMap::new())?;
        Ok((name, data))
    }

    /// Removes volumes a removed container owned (its anonymous ones) or a failed run created
    /// (best effort); returns those removed.
    pub fn remove_quietly(&self, names: &[String]) -> Vec<String> {
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(_l) = self.lock() else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for n in names {
            match std::fs::remove_dir_all(self.dir.join(n)) {
                Ok(()) => removed.push(n.clone()),
                Err(err) => tracing::warn!(%err, volume = %n, "removing an anonymous volume"),
            }
        }
        removed
    }

    /// [`Self::remove_quietly`] of those no container of `used` mounts: as Docker, an
    /// anonymous volume another container still uses (`--volumes-from`) stays.
    pub fn remove_unused_quietly(&self, names: &[String], used: &InUse) -> Vec<String> {
        let unused: Vec<String> = names
            .iter()
            .filter(|n| used.user(&self.data(n)).is_none())
            .cloned()
            .collect();
        self.remove_quietly(&unused)
    }

    /// One volume.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        let vdir = self.dir.join(name);
        if !vdir.join("_data").is_dir() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        let meta: Meta = std::fs::read(vdir.join("volume.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Volume {
            name: name.to_string(),
            driver: "local",
            mountpoint: vdir.join("_data"),
            labels: meta.labels,
            scope: "local",
            options: (!meta.options.is_empty()).then_some(meta.options),
        })
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("_data").is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        self.names()
            .iter()
            .filter_map(|n| self.get(n).ok())
            .collect()
    }

    /// The volumes every filter keeps (names: any one of them, as Docker's).
    pub fn list_filtered(&self, filters: &[ListFilter], used: &InUse) -> Vec<Volume> {
        let (names, others): (Vec<&ListFilter>, Vec<&ListFilter>) = filters
            .iter()
            .partition(|f| matches!(f, ListFilter::Name(_)));
        self.list()
            .into_iter()
            .filter(|v| names.is_empty() || names.iter().any(|f| f.keeps(v, used)))
            .filter(|v| others.iter().all(|f| f.keeps(v, used)))
            .collect()
    }

    /// `volume rm` of one volume, refused while a container (of `used`) mounts it.
    pub fn remove(&self, name: &str, used: &InUse) -> Result<(), VolumeError> {
        let _l = self.lock()?;
        let v = self.get(name)?;
        if let Some(c) = used.user(&v.source()) {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                container: c.clone(),
            });
        }
        self.unmount(name)?;
        std::fs::remove_dir_all(self.dir.join(name)).map_err(|source| VolumeError::Remove {
            name: name.to_string(),
            source,
        })
    }

    /// `volume prune`: removes the anonymous volumes no container uses (every unused one with
    /// `all`) that match every filter; returns their names.
    pub fn prune(
        &self,
        used: &InUse,
        all: bool,
        filters: &[LabelFilter],
    ) -> Result<Vec<String>, VolumeError> {
        let _l = self.lock()?;
        let mut removed = Vec::new();
        for v in self.list() {
            if used.user(&v.source()).is_none() && prunable(&v.labels, all, filters) {
                self.unmount(&v.name)?;
                std::fs::remove_dir_all(self.dir.join(&v.name)).map_err(|source| {
                    VolumeError::Remove {
                        name: v.name.clone(),
                        source,
                    }
                })?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}

/// `volume create` with its event: a new volume (named, or with a fresh id).
pub async fn create(
    ctx: &Ctx,
    name: Option<String>,
    labels: HashMap<String, String>,
    options: HashMap<String, String>,
) -> Result<String, VolumeError> {
    let made = Volumes::of(ctx).create(name, labels, options)?;
    super::notify::volume(ctx, "create", &made).await;
    Ok(made)
}

/// `volume rm` with its event: refused while a container of `used` mounts it.
pub async fn remove(ctx: &Ctx, name: &str, used: &InUse) -> Result<(), VolumeError> {
    Volumes::of(ctx).remove(name, used)?;
    super::notify::volume(ctx, "destroy", name).await;
    Ok(())
}

/// `volume prune` with the events of what it removed (see [`Volumes::prune`]).
pub async fn prune(
    ctx: &Ctx,
    used: &InUse,
    all: bool,
    filters: &[LabelFilter],
) -> Result<Vec<String>, VolumeError> {
    let removed = Volumes::of(ctx).prune(used, all, filters)?;
    for n in &removed {
        super::notify::volume(ctx, "destroy", n).await;
    }
    Ok(removed)
}

/// The volumes containers use: mount sources of every container's spec, to the container's name.
#[derive(Debug, Default)]
pub struct InUse(HashMap<PathBuf, String>);

/// `volume ls` with filters (the CLI's and the Docker API's): the containers are read only when
/// a `dangling` filter needs to know which volumes are in use.
pub async fn list_matching(ctx: &Ctx, filters: &[ListFilter]) -> anyhow::Result<Vec<Volume>> {
    let vols = Volumes::of(ctx);
    let used = match filters.iter().any(|f| matches!(f, ListFilter::Dangling(_))) {
        true => InUse::of(ctx).await?,
        false => InUse::default(),
    };
    Ok(vols.list_filtered(filters, &used))
}

impl InUse {
    /// The volumes of every container.
    pub async fn of(ctx: &Ctx) -> anyhow::Result<InUse> {
        InUse::of_containers(ctx, |_| true).await
    }

    /// The volumes of containers other than `except` that have a live task (created, running
    /// or paused, not stopped): those whose mounts a volume's unmount would pull away.
    pub async fn live(ctx: &Ctx, except: &str) -> anyhow::Result<InUse> {
        use containerd_client::types::v1::Status;
        let live: std::collections::HashSet<String> = ctx
            .client
            .list_tasks()
            .await?
            .into_iter()
            .filter(|t| Status::try_from(t.status).is_ok_and(|s| s != Status::Stopped))
            .map(|t| t.id)
            .filter(|id| id != except)
            .collect();
        InUse::of_containers(ctx, |id| live.contains(id)).await
    }

    /// The container that mounts `source` (a volume's data dir), or a path under it (a
    /// `volume-subpath` mount).
    pub fn user(&self, source: &Path) -> Option<&String> {
        self.0.get(source).or_else(|| {
            self.0
                .iter()
                .find(|(k, _)| k.starts_with(source))
                .map(|(_, c)| c)
        })
    }

    async fn of_containers(ctx: &Ctx, keep: impl Fn(&str) -> bool) -> anyhow::Result<InUse> {
        let mut used = HashMap::new();
        for c in ctx.client.list(vec![]).await? {
            if !keep(&c.id) {
                continue;
            }
            if let Some(spec) = super::record::spec_of(&c) {
                for m in spec.mounts().iter().flatten() {
                    if let Some(src) = m.source() {
                        used.insert(src.clone(), super::record::name_of(&c));
                    }
                }
            }
        }
        Ok(InUse(used))
    }
}

/// After container `id`'s task was deleted: unmounts the filesystem volumes it used that no
/// other live container uses, so that a tmpfs volume's contents last while containers use it
/// and no longer, as with Docker's local driver (which unmounts at the last user's stop).
pub async fn release_unused(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let record = super::mounts::MountRecord::read(&ctx.store.container_dir(id), None);
    let vols = Volumes::of(ctx);
    let names = vols.with_filesystem(record.volume_names());
    if names.is_empty() {
        return Ok(());
    }
    let _l = vols.lock_mounts().await?;
    let used = InUse::live(ctx, id).await?;
    for n in names {
        if used.user(&vols.data(&n)).is_none() {
            vols.unmount(&n)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prune_takes_only_anonymous_volumes_unless_all() {
        let named = labels(&[("app", "web")]);
        let anon = labels(&[(ANONYMOUS_LABEL, "")]);
        assert!(!prunable(&named, false, &[]));
        assert!(prunable(&anon, false, &[]));
        assert!(prunable(&named, true, &[]));
    }

    #[test]
    fn prune_filters_on_labels() {
        let web = labels(&[("app", "web")]);
        let f = |s: &str| s.parse::<LabelFilter>().unwrap();
        assert!(prunable(&web, true, &[f("label=app")]));
        assert!(prunable(&web, true, &[f("label=app=web")]));
        assert!(!prunable(&web, true, &[f("label=app=db")]));
        assert!(!prunable(&web, true, &[f("label!=app")]));
        assert!(prunable(&web, true, &[f("label!=app=db")]));
        for bad in ["dangling=true", "label=", "label!=", "name=x"] {
            let err = bad.parse::<LabelFilter>().unwrap_err();
            assert!(matches!(err, VolumeError::BadFilter(_)));
            let text = err.to_string();
            assert!(text.contains(bad) && text.contains("--filter"), "{text}");
        }
    }

    #[test]
    fn bind_options_make_a_volume_of_a_host_directory() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host-dir");
        std::fs::create_dir(&host).unwrap();
        let v = Volumes {
            dir: dir.path().join("volumes/default"),
            launcher_pid: None,
        };
        let opts = |o: &[(&str, &str)]| -> HashMap<String, String> {
            o.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let bind = opts(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", host.to_str().unwrap()),
        ]);
        v.create(Some("onhost".into()), HashMap::new(), bind.clone())
            .unwrap();
        let got = v.get("onhost").unwrap();
        assert_eq!(got.options.as_ref(), Some(&bind));
        assert_eq!(got.source(), host);
        assert_eq!(v.ensure("onhost").unwrap(), (host.clone(), false));
        // In use by the directory it binds.
        let mut used = InUse::default();
        used.0.insert(host.clone(), "c".into());
        assert!(v.prune(&used, true, &[]).unwrap().is_empty());
        // Refused: a relative device; a missing device when bound; a filesystem without one.
        for bad in [
            opts(&[("o", "bind"), ("device", "rel/dir")]),
            opts(&[("o", "bind")]),
            opts(&[("type", "nfs"), ("o", "addr=1.2.3.4")]),
            opts(&[("type", "tmpfs"), ("o", "bind")]),
            opts(&[("type", "tmpfs"), ("size", "1m")]),
        ] {
            assert!(
                v.create(Some("bad".into()), HashMap::new(), bad.clone())
                    .is_err(),
                "{bad:?}"
            );
        }
        std::fs::remove_dir(&host).unwrap();
        let e = v.ensure("onhost").unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn filesystem_options_split_into_flags_and_data() {
        let opts = |kv: &[(&str, &str)]| -> HashMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let m = mount_opts(
            &opts(&[("type", "tmpfs"), ("o", "size=10m,ro,uid=1000,rw")]),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(m.device, "tmpfs", "tmpfs needs no device");
        assert_eq!(m.flags, ["ro"]);
        assert_eq!(m.data, "size=10m,uid=1000");
        let nfs = opts(&[
            ("type", "nfs"),
            ("o", "addr=10.0.0.1,nolock"),
            ("device", ":/export"),
        ]);
        let e = mount_opts(&nfs, true).unwrap_err();
        assert!(e.to_string().contains("rootless, only a tmpfs"), "{e}");
        let m = mount_opts(&nfs, false).unwrap().unwrap();
        assert_eq!(
            (m.device.as_str(), m.data.as_str()),
            (":/export", "addr=10.0.0.1,nolock")
        );
        assert!(mount_opts(
            &opts(&[("type", "none"), ("o", "bind"), ("device", "/x")]),
            true
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn list_filters_as_docker_applies_them() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volumes {
            dir: dir.path().join("volumes/default"),
            launcher_pid: None,
        };
        v.create(
            Some("web-data".into()),
            labels(&[("app", "web")]),
            HashMap::new(),
        )
        .unwrap();
        v.create(Some("db-data".into()), HashMap::new(), HashMap::new())
            .unwrap();
        let mut used = InUse::default();
        used.0
            .insert(v.get("db-data").unwrap().mountpoint, "db".into());
        let names = |fs: &[&str]| {
            let fs: Vec<ListFilter> = fs.iter().map(|f| f.parse().unwrap()).collect();
            v.list_filtered(&fs, &used)
                .into_iter()
                .map(|x| x.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["dangling=true"]), ["web-data"]);
        assert_eq!(names(&["dangling=false"]), ["db-data"]);
        assert_eq!(names(&["label=app=web"]), ["web-data"]);
        assert_eq!(names(&["name=web", "name=db"]), ["db-data", "web-data"]);
        assert_eq!(
            names(&["name=data", "driver=local", "label!=app"]),
            ["db-data"]
        );
        assert!("size=1".parse::<ListFilter>().is_err());
    }

    #[test]
    fn volumes_are_created_found_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let v = Volumes {
            dir: dir.path().join("volumes/default"),
            launcher_pid: None,
        };
        let named = v
            .create(Some("data".into()), HashMap::new(), HashMap::new())
            .unwrap();
        assert!(matches!(
            v.create(Some("data".into()), HashMap::new(), HashMap::new()),
            Err(VolumeError::Exists(_))
        ));
        assert!(matches!(
            v.create(Some("bad/name".into()), HashMap::new(), HashMap::new()),
            Err(VolumeError::InvalidName(_))
        ));
        let (anon, _) = v.create_anonymous().unwrap();
        let (_, created) = v.ensure(&named).unwrap();
        assert!(!created);
        assert_eq!(v.list().len(), 2);
        let removed = v.prune(&InUse::default(), false, &[]).unwrap();
        assert_eq!(removed, vec![anon]);
        assert!(matches!(v.get("nope"), Err(VolumeError::NotFound(_))));
        v.remove(&named, &InUse::default()).unwrap();
        assert!(v.list().is_empty());
    }
}
