//! A container's volume and bind mounts as Docker records them (`MountPoint`s, kept in the
//! state dir's mounts.json and shown by inspect), `--volumes-from` (another container's mount
//! points taken over), bind propagation (the OCI options, Docker's check that the source's
//! mount is shared or slave, and the rootfs propagation it implies).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{Mount, MountBuilder, Spec};
use serde::{Deserialize, Serialize};

use super::values::{Propagation, VolumeSource, VolumeSpec};
use super::Ctx;

/// The state dir file holding a container's [`MountRecord`].
pub const RECORD_FILE: &str = "mounts.json";

/// Destinations of the mounts burrow adds itself (not the user's).
const OWN_MOUNTS: [&str; 5] = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/sys",
    "/proc",
];

/// What went wrong with a container's mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid --volumes-from {0:?}: give CONTAINER[:ro|rw]")]
    VolumesFromForm(String),
    #[error("--volumes-from {query}: {source:#}")]
    VolumesFromContainer {
        query: String,
        source: anyhow::Error,
    },
    #[error(
        "path {path} is mounted on {mount} but it is not a {needed} mount{place}, as \
         bind-propagation={prop} needs (make it one first, e.g. \
         `{enter}sh -c 'mount --bind {path} {path} && mount --make-shared {path}'`)"
    )]
    NotShared {
        path: String,
        mount: String,
        needed: &'static str,
        prop: Propagation,
        /// " in the launcher's mount namespace" rootless, else "".
        place: &'static str,
        /// How to run a command where the runtime mounts: "" or "burrow setup nsenter -- ".
        enter: &'static str,
    },
    #[error("reading {path} to check the propagation of {source_path}: {err}")]
    MountInfo {
        path: String,
        source_path: String,
        err: std::io::Error,
    },
}

/// `--volumes-from CONTAINER[:ro|rw]` (Docker's HostConfig.VolumesFrom entry: the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VolumesFrom {
    pub container: String,
    /// `:ro` makes every mount taken over read-only; otherwise each keeps its own mode.
    pub read_only: bool,
    /// The text as given (inspect's HostConfig.VolumesFrom).
    pub text: String,
}

impl FromStr for VolumesFrom {
    type Err = MountError;

    fn from_str(s: &str) -> Result<Self, MountError> {
        let (container, mode) = match s.rsplit_once(':') {
            Some((c, m)) => (c, Some(m)),
            None => (s, None),
        };
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(_) => return Err(MountError::VolumesFromForm(s.to_string())),
        };
        if container.is_empty() {
            return Err(MountError::VolumesFromForm(s.to_string()));
        }
        Ok(VolumesFrom {
            container: container.to_string(),
            read_only,
            text: s.to_string(),
        })
    }
}

impl TryFrom<String> for VolumesFrom {
    type Error = MountError;

    fn try_from(s: String) -> Result<Self, MountError> {
        s.parse()
    }
}

impl From<VolumesFrom> for String {
    fn from(v: VolumesFrom) -> String {
        v.text
    }
}

/// One mount as Docker's inspect shows it (`Mounts[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// bind or volume.
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: PathBuf,
    pub destination: String,
    /// local (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// A bind's propagation (rprivate by default); "" for volumes.
    pub propagation: String,
    /// A bind without the mounts under its source (`bind-nonrecursive`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub non_recursive: bool,
}

impl MountPoint {
    /// The mount point of `v` (its source resolved to `source`, a volume's data dir).
    pub fn of(v: &VolumeSpec, source: &Path) -> MountPoint {
        let (typ, name, driver, mode, propagation) = match &v.source {
            VolumeSource::Host(_) => (
                "bind",
                String::new(),
                "",
                v.mode.clone(),
                v.propagation.unwrap_or(Propagation::RPrivate).to_string(),
            ),
            _ => {
                // A named volume by its name (its source may be a bound host directory or a
                // subpath); an anonymous one by its data dir's.
                let name = match &v.source {
                    VolumeSource::Named(n) => n.clone(),
                    _ => source
                        .parent()
                        .and_then(|d| d.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                let mode = if v.mode.is_empty() {
                    "z".to_string()
                } else {
                    v.mode.clone()
                };
                ("volume", name, "local", mode, String::new())
            }
        };
        MountPoint {
            typ: typ.into(),
            name,
            source: source.to_path_buf(),
            destination: v.target.clone(),
            driver: driver.into(),
            mode,
            rw: !v.read_only,
            propagation,
            non_recursive: v.nonrecursive,
        }
    }

    /// The OCI bind mount: rbind, the propagation (rprivate unless set), ro unless RW.
    pub fn to_oci(&self) -> Result<Mount, oci_spec::OciSpecError> {
        let prop = if self.propagation.is_empty() {
            "rprivate"
        } else {
            &self.propagation
        };
        let bind = if self.non_recursive { "bind" } else { "rbind" };
        let mut opts = vec![bind.to_string(), prop.to_string()];
        if !self.rw {
            opts.push("ro".to_string());
        }
        MountBuilder::default()
            .destination(&self.destination)
            .typ("bind")
            .source(&self.source)
            .options(opts)
            .build()
    }
}

/// What a container's state dir records of its mounts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountRecord {
    /// `--volumes-from` as given.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
}

/// The anonymous volumes container `c` mounts: (container path, volume name).
pub fn anonymous_of(
    ctx: &Ctx,
    c: &containerd_client::services::v1::Container,
) -> Vec<(String, String)> {
    let names = super::record::anonymous_volumes(c);
    if names.is_empty() {
        return Vec::new();
    }
    let spec = super::record::spec_of(c);
    MountRecord::read(&ctx.store.container_dir(&c.id), spec.as_ref())
        .mounts
        .into_iter()
        .filter(|m| m.typ == "volume" && names.contains(&m.name))
        .map(|m| (m.destination, m.name))
        .collect()
}

impl MountRecord {
    /// The record in the state dir `dir`; for containers made before it existed, the user's
    /// bind mounts of `spec`.
    pub fn read(dir: &Path, spec: Option<&Spec>) -> MountRecord {
        if let Some(r) = std::fs::read(dir.join(RECORD_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return r;
        }
        let mounts = spec
            .and_then(|s| s.mounts().clone())
            .unwrap_or_default()
            .iter()
            .filter(|m| m.typ().as_deref() == Some("bind"))
            .filter(|m| !OWN_MOUNTS.contains(&m.destination().to_str().unwrap_or_default()))
            .filter(|m| m.destination().to_str() != Some(super::create::INIT_PATH))
            .map(|m| {
                let opts = m.options().clone().unwrap_or_default();
                let propagation = opts
                    .iter()
                    .find(|o| o.parse::<Propagation>().is_ok())
                    .cloned()
                    .unwrap_or_else(|| "rprivate".into());
                MountPoint {
                    typ: "bind".into(),
                    name: String::new(),
                    source: m.source().clone().unwrap_or_default(),
                    destination: m.destination().display().to_string(),
                    driver: String::new(),
                    mode: String::new(),
                    rw: !opts.iter().any(|o| o == "ro"),
                    propagation,
                    non_recursive: opts.iter().any(|o| o == "bind"),
                }
            })
            .collect();
        MountRecord {
            volumes_from: Vec::new(),
            mounts,
        }
    }

    /// The names of the volumes among the mounts.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts
            .iter()
            .filter(|m| m.typ == "volume" && !m.name.is_empty())
            .map(|m| m.name.as_str())
    }

    /// Writes the record into the state dir of container `id`.
    pub fn write(&self, ctx: &Ctx, id: &str) -> anyhow::Result<()> {
        ctx.store
            .write_file(id, RECORD_FILE, &serde_json::to_string_pretty(self)?)?;
        Ok(())
    }
}

/// The mount points `--volumes-from` takes over, in order (a later one replaces an earlier
/// one at the same destination): each container's volumes and binds (not its tmpfs), read-only
/// with `:ro`, else with their own mode (a read-only one stays so, as Docker does).
pub async fn volumes_from(ctx: &Ctx, from: &[VolumesFrom]) -> Result<Vec<MountPoint>, MountError> {
    let mut out: Vec<MountPoint> = Vec::new();
    for f in from {
        let c =
            ctx.find(&f.container)
                .await
                .map_err(|source| MountError::VolumesFromContainer {
                    query: f.container.clone(),
                    source,
                })?;
        let spec = super::record::spec_of(&c);
        let dir = ctx.store.container_dir(&c.id);
        for mut m in MountRecord::read(&dir, spec.as_ref()).mounts {
            m.rw = m.rw && !f.read_only;
            out.retain(|o| o.destination != m.destination);
            out.push(m);
        }
    }
    Ok(out)
}

/// Docker's check of a bind's propagation: shared and rshared need the source on a shared
/// mount, slave and rslave on a shared or slave one, as the mount namespace the runtime runs
/// in sees it (`mountinfo`: /proc/self/mountinfo, or the launcher's when `rootless`).
pub fn check_propagation(
    m: &MountPoint,
    mountinfo: &Path,
    rootless: bool,
) -> Result<(), MountError> {
    let Ok(prop) = m.propagation.parse::<Propagation>() else {
        return Ok(());
    };
    if !(prop.is_shared() || prop.is_slave()) {
        return Ok(());
    }
    let text = std::fs::read_to_string(mountinfo).map_err(|err| MountError::MountInfo {
        path: mountinfo.display().to_string(),
        source_path: m.source.display().to_string(),
        err,
    })?;
    let Some((mount, optional)) = mount_of(&text, &m.source) else {
        return Ok(());
    };
    let shared = optional.iter().any(|o| o.starts_with("shared:"));
    let slave = optional.iter().any(|o| o.starts_with("master:"));
    let (ok, needed) = if prop.is_shared() {
        (shared, "shared")
    } else {
        (shared || slave, "shared or slave")
    };
    if ok {
        return Ok(());
    }
    Err(MountError::NotShared {
        path: m.source.display().to_string(),
        mount,
        needed,
        prop,
        place: if rootless {
            " in the launcher's mount namespace"
        } else {
            ""
        },
        enter: if rootless {
            "burrow setup nsenter -- "
        } else {
            ""
        },
    })
}

/// The mount point holding `path` in a mountinfo text, and its optional fields (the last of
/// the longest matching mount points: the one on top).
fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, Vec<String>)> {
    let mut best: Option<(String, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| unescape(p)) else {
            continue;
        };
        if !path.starts_with(&point) {
            continue;
        }
        let optional: Vec<String> = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .map(|f| f.to_string())
            .collect();
        if best.as_ref().is_none_or(|(b, _)| point.len() >= b.len()) {
            best = Some((point, optional));
        }
    }
    best
}

/// Whether something is mounted at `path` in the mount namespace the runtime uses: the
/// launcher child `launcher_pid`'s (rootless), else this process's.
pub fn is_mount_point(launcher_pid: Option<i32>, path: &Path) -> bool {
    let info = match launcher_pid {
        Some(pid) => format!("/proc/{pid}/mountinfo"),
        None => "/proc/self/mountinfo".into(),
    };
    std::fs::read_to_string(info)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|p| Path::new(&unescape(p)) == path)
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker's rootfs propagation for the binds of `spec`: shared when a bind is (r)shared, else
/// rslave when one is (r)slave (so mounts propagate through the container's root as asked).
pub fn set_rootfs_propagation(spec: &mut Spec) {
    let opts: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.typ().as_deref() == Some("bind"))
        .flat_map(|m| m.options().clone().unwrap_or_default())
        .collect();
    let has = |p: &[&str]| opts.iter().any(|o| p.contains(&o.as_str()));
    let root = if has(&["shared", "rshared"]) {
        "shared"
    } else if has(&["slave", "rslave"]) {
        "rslave"
    } else {
        return;
    };
    if let Some(linux) = spec.linux_mut() {
        linux.set_rootfs_propagation(Some(root.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /tmp rw,nosuid - tmpfs tmpfs rw
31 22 0:27 / /mnt/sh rw shared:5 - tmpfs tmpfs rw
32 31 0:28 / /mnt/sh/sl rw master:5 - tmpfs tmpfs rw
33 22 0:29 / /mnt/with\\040space rw shared:7 - tmpfs tmpfs rw
";

    fn bind(src: &str, prop: &str) -> MountPoint {
        let mut v = VolumeSpec::new(VolumeSource::Host(src.into()), "/d");
        v.propagation = Some(prop.parse().unwrap());
        MountPoint::of(&v, Path::new(src))
    }

    #[test]
    fn mountinfo_finds_the_mount_on_top() {
        let (p, o) = mount_of(INFO, Path::new("/tmp/x")).unwrap();
        assert_eq!((p.as_str(), o.len()), ("/tmp", 0));
        let (p, o) = mount_of(INFO, Path::new("/mnt/sh/sl/y")).unwrap();
        assert_eq!(
            (p.as_str(), o),
            ("/mnt/sh/sl", vec!["master:5".to_string()])
        );
        let (p, _) = mount_of(INFO, Path::new("/mnt/with space/z")).unwrap();
        assert_eq!(p, "/mnt/with space");
        assert_eq!(unescape("/a\\é9/b\\"), "/a\\é9/b\\");
        assert_eq!(mount_of(INFO, Path::new("/etc")).unwrap().0, "/");
    }

    #[test]
    fn propagation_needs_a_shared_or_slave_source_as_docker_checks() {
        let d = tempfile::tempdir().unwrap();
        let info = d.path().join("mountinfo");
        std::fs::write(&info, INFO).unwrap();
        assert!(check_propagation(&bind("/mnt/sh/a", "rshared"), &info, false).is_ok());
        assert!(check_propagation(&bind("/mnt/sh/sl", "rslave"), &info, false).is_ok());
        assert!(check_propagation(&bind("/tmp/a", "rprivate"), &info, false).is_ok());
        let e = check_propagation(&bind("/mnt/sh/sl", "shared"), &info, false).unwrap_err();
        assert!(e.to_string().contains("not a shared mount"), "{e}");
        let e = check_propagation(&bind("/tmp/a", "slave"), &info, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/tmp/a is mounted on /tmp")
                && e.contains("shared or slave")
                && e.contains("burrow setup nsenter -- sh -c 'mount --bind /tmp/a /tmp/a"),
            "{e}"
        );
    }

    #[test]
    fn mount_points_read_as_docker_shows_them() {
        let v: VolumeSpec = "/h:/d:ro,rshared".parse().unwrap();
        let m = MountPoint::of(&v, Path::new("/h"));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(j["Type"], "bind");
        assert_eq!(j["Mode"], "ro,rshared");
        assert_eq!(j["Propagation"], "rshared");
        assert_eq!(j["RW"], false);
        assert!(j.get("Name").is_none());
        let oci = m.to_oci().unwrap();
        assert_eq!(oci.options().clone().unwrap(), ["rbind", "rshared", "ro"]);
        let v: VolumeSpec = "data:/d".parse().unwrap();
        let m = MountPoint::of(&v, Path::new("/vols/data/_data"));
        let j = serde_json::to_value(&m).unwrap();
        assert_eq!(
            (j["Type"].as_str(), j["Name"].as_str(), j["Mode"].as_str()),
            (Some("volume"), Some("data"), Some("z"))
        );
        assert_eq!(
            (j["Driver"].as_str(), j["Propagation"].as_str()),
            (Some("local"), Some(""))
        );
    }

    #[test]
    fn volumes_from_takes_a_mode() {
        let f: VolumesFrom = "db:ro".parse().unwrap();
        assert_eq!((f.container.as_str(), f.read_only), ("db", true));
        let f: VolumesFrom = "db".parse().unwrap();
        assert!(!f.read_only);
        assert!("db:rw".parse::<VolumesFrom>().is_ok());
        for bad in ["db:rx", ":ro", ""] {
            assert!(bad.parse::<VolumesFrom>().is_err(), "{bad}");
        }
    }
}
