//! Host device nodes given to a container (`--device HOST[:CONTAINER[:PERMS]]`) and device
//! cgroup rules (`--device-cgroup-rule 'c 1:3 rwm'`): their typed flag values, looking the nodes
//! up on the host, and their OCI forms.

use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

/// Docker's default device cgroup permissions: read, write, mknod.
pub const DEFAULT_PERMISSIONS: &str = "rwm";

/// One `--device HOST[:CONTAINER[:PERMS]]`, as Docker's HostConfig.Devices writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// A `--device` or `--device-cgroup-rule` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceFlagError {
    #[error("invalid --device {value:?}: {reason} (use HOST[:CONTAINER[:PERMS]], PERMS from r, w, m; or a CDI name vendor.com/class=name)")]
    Mapping { value: String, reason: &'static str },
    #[error("invalid --device-cgroup-rule {0:?}: use 'TYPE MAJOR:MINOR PERMS' with TYPE a, b or c, MAJOR and MINOR numbers or *, PERMS from r, w, m (e.g. 'c 1:3 rwm')")]
    Rule(String),
}

fn valid_permissions(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 3
        && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && p.chars().collect::<std::collections::BTreeSet<_>>().len() == p.len()
}

impl FromStr for DeviceMapping {
    type Err = DeviceFlagError;

    /// Docker's forms: `HOST`, `HOST:CONTAINER`, `HOST:PERMS`, `HOST:CONTAINER:PERMS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| DeviceFlagError::Mapping {
            value: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (host, container, perms) = match parts.as_slice() {
            [h] => (*h, *h, DEFAULT_PERMISSIONS),
            [h, p] if valid_permissions(p) => (*h, *h, *p),
            [h, c] => (*h, *c, DEFAULT_PERMISSIONS),
            [h, c, p] => (*h, *c, *p),
            _ => return Err(bad("too many ':'")),
        };
        if !host.starts_with('/') {
            return Err(bad("the host path must be absolute"));
        }
        if !container.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        if !valid_permissions(perms) {
            return Err(bad("bad permissions"));
        }
        Ok(DeviceMapping {
            path_on_host: host.to_string(),
            path_in_container: container.to_string(),
            cgroup_permissions: perms.to_string(),
        })
    }
}

impl fmt::Display for DeviceMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.path_on_host, self.path_in_container, self.cgroup_permissions
        )
    }
}

/// A device cgroup rule (`TYPE MAJOR:MINOR PERMS`); `None` major or minor is `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCgroupRule {
    /// `a` (all), `b` (block) or `c` (char).
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

impl FromStr for DeviceCgroupRule {
    type Err = DeviceFlagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || DeviceFlagError::Rule(s.to_string());
        let fields: Vec<&str> = s.split_whitespace().collect();
        let [typ, numbers, access] = fields.as_slice() else {
            return Err(bad());
        };
        let typ = match *typ {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            _ => return Err(bad()),
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
        let number = |n: &str| -> Result<Option<i64>, DeviceFlagError> {
            match n {
                "*" => Ok(None),
                n => n
                    .parse::<u32>()
                    .map(|v| Some(i64::from(v)))
                    .map_err(|_| bad()),
            }
        };
        if !valid_permissions(access) {
            return Err(bad());
        }
        Ok(DeviceCgroupRule {
            typ,
            major: number(major)?,
            minor: number(minor)?,
            access: access.to_string(),
        })
    }
}

impl fmt::Display for DeviceCgroupRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.typ,
            n(self.major),
            n(self.minor),
            self.access
        )
    }
}

impl Serialize for DeviceCgroupRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceCgroupRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl DeviceCgroupRule {
    /// The rule as the OCI spec's `linux.resources.devices` entry (an allow rule).
    pub fn to_oci(&self) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(match self.typ {
            'b' => LinuxDeviceType::B,
            'c' => LinuxDeviceType::C,
            _ => LinuxDeviceType::A,
        }));
        r.set_major(self.major);
        r.set_minor(self.minor);
        r.set_access(Some(self.access.clone()));
        r
    }
}

/// A device node found on the host, to appear at `path` in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// The node on the host.
    pub host_path: PathBuf,
    /// Where it appears in the container.
    pub path: String,
    /// `c`, `b` or `p`.
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits of the host node.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Device cgroup permissions (r, w, m).
    pub permissions: String,
}

/// A host device node that cannot be given to a container.
#[derive(Debug, thiserror::Error)]
pub enum HostDeviceError {
    #[error("device {path} not found on the host ({source}): check the path (`ls -l {path}`)")]
    Missing {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a device node (a character or block device, or a FIFO): give a path under /dev")]
    NotADevice { path: PathBuf },
    #[error("reading the device directory {path}: {source}")]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl HostDevice {
    /// The node at `host` on this machine, to appear at `container` with `permissions`.
    pub fn lookup(
        host: &Path,
        container: &str,
        permissions: &str,
    ) -> Result<HostDevice, HostDeviceError> {
        let meta = std::fs::metadata(host).map_err(|source| HostDeviceError::Missing {
            path: host.to_path_buf(),
            source,
        })?;
        let ft = meta.file_type();
        let typ = if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else {
            return Err(HostDeviceError::NotADevice {
                path: host.to_path_buf(),
            });
        };
        let rdev = meta.rdev();
        Ok(HostDevice {
            host_path: host.to_path_buf(),
            path: container.to_string(),
            typ,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
            file_mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            permissions: permissions.to_string(),
        })
    }

    /// The nodes of a `--device` mapping: the one node, or, for a directory, every device
    /// node under it (as Docker does), at the same relative paths under the container path.
    pub fn of_mapping(m: &DeviceMapping) -> Result<Vec<HostDevice>, HostDeviceError> {
        let host = Path::new(&m.path_on_host);
        if !host.is_dir() {
            return Ok(vec![HostDevice::lookup(
                host,
                &m.path_in_container,
                &m.cgroup_permissions,
            )?]);
        }
        let mut out = Vec::new();
        walk(host, &mut |p: &Path| {
            let rel = p.strip_prefix(host).unwrap_or(p);
            let dest = Path::new(&m.path_in_container).join(rel);
            if let Ok(d) = HostDevice::lookup(p, &dest.to_string_lossy(), &m.cgroup_permissions) {
                out.push(d);
            }
        })?;
        Ok(out)
    }

    /// The spec's `linux.devices` entry.
    pub fn to_oci(&self) -> Result<LinuxDevice, oci_spec::OciSpecError> {
        LinuxDeviceBuilder::default()
            .path(&self.path)
            .typ(match self.typ {
                'b' => LinuxDeviceType::B,
                'p' => LinuxDeviceType::P,
                _ => LinuxDeviceType::C,
            })
            .major(self.major)
            .minor(self.minor)
            .file_mode(self.file_mode)
            .uid(self.uid)
            .gid(self.gid)
            .build()
    }

    /// A bind mount of the host node at the container path: how a container in a user
    /// namespace gets it (no node can be made there; runc 1.1 would bind the node at the
    /// *container* path from the host, which is wrong when the paths differ).
    pub fn to_bind_mount(&self) -> Result<oci_spec::runtime::Mount, oci_spec::OciSpecError> {
        oci_spec::runtime::MountBuilder::default()
            .destination(&self.path)
            .source(&self.host_path)
            .typ("bind")
            .options(vec!["bind".to_string(), "nosuid".to_string()])
            .build()
    }

    /// The allow rule the container's device cgroup gets for this node (none for a FIFO).
    pub fn cgroup_rule(&self) -> Option<DeviceCgroupRule> {
        matches!(self.typ, 'b' | 'c').then(|| DeviceCgroupRule {
            typ: self.typ,
            major: Some(self.major),
            minor: Some(self.minor),
            access: self.permissions.clone(),
        })
    }
}

/// Calls `f` with every non-directory entry under `dir`, depth first (symlinks not followed).
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<(), HostDeviceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HostDeviceError::ReadDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, f)?,
            Ok(m) if !m.file_type().is_symlink() => f(&p),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_mappings_parse_as_docker_does() {
        let m: DeviceMapping = "/dev/zero".parse().unwrap();
        assert_eq!(
            (
                m.path_on_host.as_str(),
                m.path_in_container.as_str(),
                m.cgroup_permissions.as_str()
            ),
            ("/dev/zero", "/dev/zero", "rwm")
        );
        let m: DeviceMapping = "/dev/zero:/dev/myzero".parse().unwrap();
        assert_eq!(m.path_in_container, "/dev/myzero");
        let m: DeviceMapping = "/dev/zero:r".parse().unwrap();
        assert_eq!(
            (m.path_in_container.as_str(), m.cgroup_permissions.as_str()),
            ("/dev/zero", "r")
        );
        let m: DeviceMapping = "/dev/fuse:/dev/f:rw".parse().unwrap();
        assert_eq!(m.to_string(), "/dev/fuse:/dev/f:rw");
        for bad in [
            "dev/zero",
            "/dev/zero:rel",
            "/dev/zero:/x:rx",
            "/a:/b:r:w",
            "/dev/zero:/x:rr",
        ] {
            let e = bad.parse::<DeviceMapping>().unwrap_err().to_string();
            assert!(e.starts_with("invalid --device"), "{bad}: {e}");
        }
        let json =
            serde_json::to_value("/dev/zero:/z:r".parse::<DeviceMapping>().unwrap()).unwrap();
        assert_eq!(json["PathOnHost"], "/dev/zero");
        assert_eq!(json["PathInContainer"], "/z");
        assert_eq!(json["CgroupPermissions"], "r");
    }

    #[test]
    fn cgroup_rules_parse_and_print() {
        let r: DeviceCgroupRule = "c 1:3 rwm".parse().unwrap();
        assert_eq!((r.typ, r.major, r.minor), ('c', Some(1), Some(3)));
        let r: DeviceCgroupRule = "a *:* r".parse().unwrap();
        assert_eq!(r.to_string(), "a *:* r");
        let oci = "b 8:* rw".parse::<DeviceCgroupRule>().unwrap().to_oci();
        assert!(oci.allow());
        assert_eq!((oci.major(), oci.minor()), (Some(8), None));
        for bad in ["c 1:3", "x 1:3 r", "c a:3 r", "c 1:3 rwx", "c 13 r"] {
            assert!(bad.parse::<DeviceCgroupRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn host_nodes_are_looked_up() {
        let d = HostDevice::lookup(Path::new("/dev/null"), "/dev/fake0", "rw").unwrap();
        assert_eq!((d.typ, d.major, d.minor), ('c', 1, 3));
        assert_eq!(d.path, "/dev/fake0");
        assert_eq!(d.cgroup_rule().unwrap().to_string(), "c 1:3 rw");
        let oci = d.to_oci().unwrap();
        assert_eq!(oci.path().to_str(), Some("/dev/fake0"));
        let e = HostDevice::lookup(Path::new("/dev/no-such-device"), "/x", "rwm")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/no-such-device") && e.contains("not found"),
            "{e}"
        );
        let e = HostDevice::lookup(Path::new("/etc/passwd"), "/x", "rwm").unwrap_err();
        assert!(matches!(e, HostDeviceError::NotADevice { .. }));
    }

    #[test]
    fn a_directory_gives_every_node_under_it() {
        let m: DeviceMapping = "/dev/pts:/dev/hostpts".parse().unwrap();
        let devs = HostDevice::of_mapping(&m).unwrap();
        assert!(
            devs.iter().all(|d| d.path.starts_with("/dev/hostpts/")),
            "{devs:?}"
        );
    }
}
