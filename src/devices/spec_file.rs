//! The CDI spec file format (cdiVersion, kind, devices, containerEdits) read from JSON or
//! YAML and checked, and fully-qualified device names (`vendor.com/class=name`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The hook names a CDI spec may use (the OCI runtime spec's hook points).
pub const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A CDI name or spec file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("invalid CDI device name {name:?}: {reason} (give vendor.com/class=name)")]
    BadName { name: String, reason: String },
    #[error("reading the CDI spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CDI spec {path} is malformed: {what} (fix or remove the file)")]
    Malformed { path: PathBuf, what: String },
}

/// A fully-qualified CDI device name: `vendor.com/class=name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct QualifiedName {
    pub vendor: String,
    pub class: String,
    pub name: String,
}

impl QualifiedName {
    /// `vendor.com/class`, the spec's `kind`.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }
}

/// Whether `s` looks like a CDI name (`vendor/class=name`) rather than a host path.
pub fn is_qualified(s: &str) -> bool {
    s.parse::<QualifiedName>().is_ok()
}

fn valid_vendor(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphabetic())
        && v.ends_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_class(c: &str) -> bool {
    c.starts_with(|c: char| c.is_ascii_alphabetic())
        && c.ends_with(|c: char| c.is_ascii_alphanumeric())
        && c.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

fn valid_device_name(n: &str) -> bool {
    n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Splits a spec's `kind` into vendor and class.
fn parse_kind(kind: &str) -> Option<(String, String)> {
    let (vendor, class) = kind.split_once('/')?;
    (valid_vendor(vendor) && valid_class(class)).then(|| (vendor.to_string(), class.to_string()))
}

impl FromStr for QualifiedName {
    type Err = SpecFileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| SpecFileError::BadName {
            name: s.to_string(),
            reason: reason.to_string(),
        };
        let (kind, name) = s.split_once('=').ok_or_else(|| bad("no '=name'"))?;
        let (vendor, class) =
            parse_kind(kind).ok_or_else(|| bad("the kind must be vendor.com/class"))?;
        if !valid_device_name(name) {
            return Err(bad(
                "a device name is letters, digits, '-', '_', '.' and ':'",
            ));
        }
        Ok(QualifiedName {
            vendor,
            class,
            name: name.to_string(),
        })
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}", self.vendor, self.class, self.name)
    }
}

/// A CDI spec file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SpecFile {
    pub cdi_version: String,
    pub kind: String,
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    pub container_edits: ContainerEdits,
}

/// One device of a spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Device {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub container_edits: ContainerEdits,
}

/// What a spec or a device changes in the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerEdits {
    /// `KEY=VALUE`.
    pub env: Vec<String>,
    pub device_nodes: Vec<DeviceNode>,
    pub hooks: Vec<Hook>,
    pub mounts: Vec<CdiMount>,
    #[serde(rename = "additionalGIDs")]
    pub additional_gids: Vec<u32>,
    /// Not supported by burrow: refused when a requested device has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<serde_json::Value>,
    /// Not supported by burrow: refused when a requested device has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_devices: Option<serde_json::Value>,
}

/// A device node the container gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceNode {
    /// Where it appears in the container (and on the host, without `hostPath`).
    pub path: String,
    pub host_path: Option<String>,
    /// `c`, `b` or `p`; read from the host node when absent.
    #[serde(rename = "type")]
    pub typ: Option<String>,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub file_mode: Option<u32>,
    /// Device cgroup permissions (default `rwm`).
    pub permissions: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// An OCI hook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hook {
    /// prestart, createRuntime, createContainer, startContainer, poststart or poststop.
    pub hook_name: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

/// A mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CdiMount {
    pub host_path: String,
    pub container_path: String,
    pub options: Vec<String>,
    /// Default `bind`.
    #[serde(rename = "type")]
    pub typ: Option<String>,
}

impl ContainerEdits {
    /// Appends `other`'s edits after these.
    pub fn append(&mut self, other: &ContainerEdits) {
        self.env.extend(other.env.iter().cloned());
        self.device_nodes.extend(other.device_nodes.iter().cloned());
        self.hooks.extend(other.hooks.iter().cloned());
        self.mounts.extend(other.mounts.iter().cloned());
        self.additional_gids
            .extend(other.additional_gids.iter().copied());
    }

    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.additional_gids.is_empty()
    }

    pub(super) fn unsupported(&self) -> Option<&'static str> {
        if self.intel_rdt.is_some() {
            Some("intelRdt")
        } else if self.net_devices.as_ref().is_some_and(|v| !v.is_null()) {
            Some("netDevices")
        } else {
            None
        }
    }
}

/// Reads and checks one spec file (JSON for `.json`, else YAML).
pub fn read_spec(path: &Path) -> Result<SpecFile, SpecFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |what: String| SpecFileError::Malformed {
        path: path.to_path_buf(),
        what,
    };
    let spec: SpecFile = if path.extension() == Some(OsStr::new("json")) {
        serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| malformed(e.to_string()))?
    };
    check_spec(&spec).map_err(malformed)?;
    Ok(spec)
}

/// What the CDI spec requires of a file.
fn check_spec(spec: &SpecFile) -> Result<(), String> {
    if spec.cdi_version.is_empty() {
        return Err("no cdiVersion".into());
    }
    if parse_kind(&spec.kind).is_none() {
        return Err(format!(
            "kind {:?} is not vendor.com/class (letters, digits, '-', '_'; '.' in the vendor)",
            spec.kind
        ));
    }
    if spec.devices.is_empty() {
        return Err("no devices".into());
    }
    let mut seen = std::collections::HashSet::new();
    for d in &spec.devices {
        if !valid_device_name(&d.name) {
            return Err(format!("invalid device name {:?}", d.name));
        }
        if !seen.insert(&d.name) {
            return Err(format!("device {:?} is defined twice", d.name));
        }
        check_edits(&d.container_edits).map_err(|e| format!("device {:?}: {e}", d.name))?;
    }
    check_edits(&spec.container_edits)
}

fn check_edits(e: &ContainerEdits) -> Result<(), String> {
    if let Some(bad) = e
        .env
        .iter()
        .find(|kv| !kv.contains('=') || kv.starts_with('='))
    {
        return Err(format!("env entry {bad:?} is not KEY=VALUE"));
    }
    for n in &e.device_nodes {
        if !n.path.starts_with('/') {
            return Err(format!("device node path {:?} is not absolute", n.path));
        }
        if let Some(t) = &n.typ {
            if !matches!(t.as_str(), "c" | "b" | "p" | "u") {
                return Err(format!(
                    "device node {} has type {t:?} (use c, b or p)",
                    n.path
                ));
            }
        }
        if let Some(p) = &n.permissions {
            if p.is_empty() || !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(format!(
                    "device node {} has permissions {p:?} (use r, w, m)",
                    n.path
                ));
            }
        }
    }
    for m in &e.mounts {
        if m.host_path.is_empty() || !m.container_path.starts_with('/') {
            return Err(format!(
                "mount {:?} -> {:?} needs a hostPath and an absolute containerPath",
                m.host_path, m.container_path
            ));
        }
    }
    for h in &e.hooks {
        if !HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(format!(
                "hook {:?} has hookName {:?} (use one of {})",
                h.path,
                h.hook_name,
                HOOK_NAMES.join(", ")
            ));
        }
        if !h.path.starts_with('/') {
            return Err(format!("hook path {:?} is not absolute", h.path));
        }
    }
    Ok(())
}

pub(super) fn is_spec_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(OsStr::to_str),
        Some("json" | "yaml" | "yml")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        let q: QualifiedName = "nvidia.com/gpu=0".parse().unwrap();
        assert_eq!((q.kind(), q.name.as_str()), ("nvidia.com/gpu".into(), "0"));
        assert_eq!(q.to_string(), "nvidia.com/gpu=0");
        assert!(is_qualified("example.com/dev=GPU-1234:5"));
        for bad in [
            "/dev/zero",
            "vendor.com/class",
            "/class=x",
            "v/c=",
            "v/c=-x",
            "v.com/c.x=1",
        ] {
            assert!(!is_qualified(bad), "{bad}");
        }
    }
}
