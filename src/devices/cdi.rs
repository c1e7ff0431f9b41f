//! CDI (Container Device Interface, github.com/cncf-tags/container-device-interface) specs:
//! fully-qualified device names (`vendor.com/class=name`), the spec files (JSON or YAML) in the
//! spec dirs, and a [`Registry`] that loads them and resolves device names to the container
//! edits they ask for (applied to an OCI spec by [`super::edits`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The spec dirs when nothing else is configured; a later dir overrides an earlier one.
pub const DEFAULT_SPEC_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];

/// The environment variable that replaces the spec dirs (a `:`-separated list).
pub const SPEC_DIRS_ENV: &str = "BURROW_CDI_SPEC_DIRS";

/// The spec dirs to search: `env` (the value of [`SPEC_DIRS_ENV`]) wins, then `configured`
/// (burrow.toml's `cdi_spec_dirs`), else [`DEFAULT_SPEC_DIRS`] and, for a rootless user,
/// `$XDG_CONFIG_HOME/cdi` last (so the user's own specs win).
pub fn spec_dirs(
    env: Option<&OsStr>,
    configured: Option<&[PathBuf]>,
    rootless: bool,
    config_home: Option<&Path>,
) -> Vec<PathBuf> {
    if let Some(v) = env.filter(|v| !v.is_empty()) {
        return std::env::split_paths(v).collect();
    }
    if let Some(c) = configured {
        return c.to_vec();
    }
    let mut dirs: Vec<PathBuf> = DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect();
    if rootless {
        if let Some(h) = config_home {
            dirs.push(h.join("cdi"));
        }
    }
    dirs
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
    type Err = CdiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CdiError::BadName {
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

    fn unsupported(&self) -> Option<&'static str> {
        if self.intel_rdt.is_some() {
            Some("intelRdt")
        } else if self.net_devices.as_ref().is_some_and(|v| !v.is_null()) {
            Some("netDevices")
        } else {
            None
        }
    }
}

/// CDI specs that cannot be loaded, and device names that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("invalid CDI device name {name:?}: {reason} (give vendor.com/class=name)")]
    BadName { name: String, reason: String },
    #[error("reading the CDI spec dir {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("reading the CDI spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CDI spec {path} is malformed: {what} (fix or remove the file)")]
    Malformed { path: PathBuf, what: String },
    #[error("CDI device {name} is defined twice, in {first} and {second}: remove one")]
    Conflict {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no CDI device {name}; known: {} (CDI spec dirs searched: {}){}", list_or_none(.known), dir_list(.dirs), skipped_note(.skipped))]
    Unknown {
        name: String,
        known: Vec<String>,
        dirs: Vec<PathBuf>,
        /// Why spec files were skipped (they may have defined it).
        skipped: Vec<String>,
    },
    #[error("CDI device {name} (in {path}) uses {what}, which burrow does not support")]
    Unsupported {
        name: String,
        path: PathBuf,
        what: &'static str,
    },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped spec files: {}", skipped.join("; "))
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The dirs as a comma-separated list.
pub fn dir_list(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "none".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A spec file as loaded.
#[derive(Debug, Clone)]
struct Loaded {
    path: PathBuf,
    spec: SpecFile,
}

/// Where a device was found: (spec index, device index).
type DeviceAt = (usize, usize);

/// The CDI devices of a set of spec dirs.
#[derive(Debug, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    specs: Vec<Loaded>,
    /// Qualified name → where, in the order the specs define them.
    devices: Vec<(String, DeviceAt)>,
    /// Spec files that could not be read or are malformed, skipped (as the CDI library does).
    skipped: Vec<CdiError>,
}

/// Reads and checks one spec file (JSON for `.json`, else YAML).
pub fn read_spec(path: &Path) -> Result<SpecFile, CdiError> {
    let text = std::fs::read_to_string(path).map_err(|source| CdiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = |what: String| CdiError::Malformed {
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
        if !super::edits::HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(format!(
                "hook {:?} has hookName {:?} (use one of {})",
                h.path,
                h.hook_name,
                super::edits::HOOK_NAMES.join(", ")
            ));
        }
        if !h.path.starts_with('/') {
            return Err(format!("hook path {:?} is not absolute", h.path));
        }
    }
    Ok(())
}

fn is_spec_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(OsStr::to_str),
        Some("json" | "yaml" | "yml")
    )
}

impl Registry {
    /// Loads every spec file (`*.json`, `*.yaml`, `*.yml`) of `dirs`; a missing dir is empty.
    /// A device in a later dir replaces the same-named one of an earlier dir; the same name
    /// twice within one dir is an error. A file that cannot be read or is malformed is
    /// skipped (see [`Registry::skipped`]) and named when a device cannot be found.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry, CdiError> {
        let mut r = Registry {
            dirs: dirs.to_vec(),
            ..Registry::default()
        };
        let mut index: HashMap<String, (usize, DeviceAt)> = HashMap::new();
        for (dir_no, dir) in dirs.iter().enumerate() {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(CdiError::ReadDir {
                        dir: dir.clone(),
                        source,
                    })
                }
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_spec_file(p) && p.is_file())
                .collect();
            files.sort();
            for path in files {
                let spec = match read_spec(&path) {
                    Ok(s) => s,
                    Err(e) => {
                        r.skipped.push(e);
                        continue;
                    }
                };
                let spec_no = r.specs.len();
                for (dev_no, d) in spec.devices.iter().enumerate() {
                    let name = format!("{}={}", spec.kind, d.name);
                    let at = (spec_no, dev_no);
                    if let Some((prev_dir, (prev_spec, _))) = index.get(&name) {
                        if *prev_dir == dir_no {
                            return Err(CdiError::Conflict {
                                name,
                                first: r.specs[*prev_spec].path.clone(),
                                second: path,
                            });
                        }
                    }
                    index.insert(name, (dir_no, at));
                }
                r.specs.push(Loaded { path, spec });
            }
        }
        // Keep the specs' order, each name once, at its winning place.
        for (spec_no, l) in r.specs.iter().enumerate() {
            for (dev_no, d) in l.spec.devices.iter().enumerate() {
                let name = format!("{}={}", l.spec.kind, d.name);
                if index.get(&name).map(|(_, at)| *at) == Some((spec_no, dev_no)) {
                    r.devices.push((name, (spec_no, dev_no)));
                }
            }
        }
        Ok(r)
    }

    /// The spec files skipped, each with why (for warnings).
    pub fn skipped(&self) -> &[CdiError] {
        &self.skipped
    }

    /// The dirs this registry was loaded from.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Every device's qualified name, in the order the specs define them.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The names of the devices of one kind (`vendor.com/class=`), in spec order.
    pub fn devices_of_kind(&self, kind: &str) -> Vec<String> {
        self.devices
            .iter()
            .filter(|(n, _)| n.split_once('=').is_some_and(|(k, _)| k == kind))
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn find(&self, name: &str) -> Option<DeviceAt> {
        self.devices
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, at)| *at)
    }

    /// The container edits of the devices `names` asks for: each involved spec's own edits
    /// (once), then each device's, in order. `kind=all` is every device of the kind unless a
    /// spec defines a device named `all`.
    pub fn resolve(&self, names: &[String]) -> Result<ContainerEdits, CdiError> {
        let mut wanted: Vec<DeviceAt> = Vec::new();
        for raw in names {
            let q: QualifiedName = raw.parse()?;
            let name = q.to_string();
            let found = match self.find(&name) {
                Some(at) => vec![at],
                None if q.name == "all" => {
                    let kind = q.kind();
                    self.devices_of_kind(&kind)
                        .iter()
                        .filter_map(|n| self.find(n))
                        .collect()
                }
                None => vec![],
            };
            if found.is_empty() {
                return Err(CdiError::Unknown {
                    name,
                    known: self.device_names(),
                    dirs: self.dirs.clone(),
                    skipped: self.skipped.iter().map(|e| e.to_string()).collect(),
                });
            }
            for at in found {
                if !wanted.contains(&at) {
                    wanted.push(at);
                }
            }
        }
        let mut spec_edits = ContainerEdits::default();
        let mut device_edits = ContainerEdits::default();
        let mut seen_specs = Vec::new();
        for (spec_no, dev_no) in wanted {
            let l = &self.specs[spec_no];
            let d = &l.spec.devices[dev_no];
            for (edits, name) in [
                (&l.spec.container_edits, l.spec.kind.clone()),
                (&d.container_edits, format!("{}={}", l.spec.kind, d.name)),
            ] {
                if let Some(what) = edits.unsupported() {
                    return Err(CdiError::Unsupported {
                        name,
                        path: l.path.clone(),
                        what,
                    });
                }
            }
            if !seen_specs.contains(&spec_no) {
                seen_specs.push(spec_no);
                spec_edits.append(&l.spec.container_edits);
            }
            device_edits.append(&d.container_edits);
        }
        spec_edits.append(&device_edits);
        Ok(spec_edits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
cdiVersion: "0.6.0"
kind: example.com/dev
containerEdits:
  env: ["FROM_SPEC=1"]
devices:
  - name: one
    containerEdits:
      env: ["FAKE=one"]
      deviceNodes:
        - path: /dev/fake0
          hostPath: /dev/null
      mounts:
        - hostPath: /etc/hostname
          containerPath: /fake/hostname
          options: [ro, bind]
  - name: two
    containerEdits:
      env: ["FAKE=two"]
"#;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        d
    }

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

    #[test]
    fn spec_dirs_by_precedence() {
        let home = Path::new("/h/.config");
        assert_eq!(
            spec_dirs(None, None, false, Some(home)),
            [PathBuf::from("/etc/cdi"), PathBuf::from("/var/run/cdi")]
        );
        assert_eq!(
            spec_dirs(None, None, true, Some(home)).last().unwrap(),
            Path::new("/h/.config/cdi")
        );
        let conf = [PathBuf::from("/site/cdi")];
        assert_eq!(spec_dirs(None, Some(&conf), true, Some(home)), conf);
        assert_eq!(
            spec_dirs(Some(OsStr::new("/a:/b")), Some(&conf), true, None),
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn yaml_and_json_specs_resolve() {
        let json = r#"{"cdiVersion":"0.5.0","kind":"other.org/thing","devices":[{"name":"x","containerEdits":{"additionalGIDs":[44]}}]}"#;
        let d = dir_with(&[("a.yaml", YAML), ("b.json", json), ("notes.txt", "ignored")]);
        let r = Registry::load(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(
            r.device_names(),
            [
                "example.com/dev=one",
                "example.com/dev=two",
                "other.org/thing=x"
            ]
        );
        let e = r.resolve(&["example.com/dev=one".into()]).unwrap();
        assert_eq!(e.env, ["FROM_SPEC=1", "FAKE=one"]);
        assert_eq!(e.device_nodes[0].host_path.as_deref(), Some("/dev/null"));
        assert_eq!(e.mounts[0].container_path, "/fake/hostname");
        // =all: every device of the kind; the spec's own edits once.
        let e = r.resolve(&["example.com/dev=all".into()]).unwrap();
        assert_eq!(e.env, ["FROM_SPEC=1", "FAKE=one", "FAKE=two"]);
        let e = r.resolve(&["other.org/thing=x".into()]).unwrap();
        assert_eq!(e.additional_gids, [44]);
    }

    #[test]
    fn unknown_devices_name_what_is_known_and_where() {
        let d = dir_with(&[("a.yaml", YAML)]);
        let r = Registry::load(&[d.path().to_path_buf(), "/no/such/dir".into()]).unwrap();
        let e = r
            .resolve(&["example.com/dev=three".into()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("no CDI device example.com/dev=three; known: example.com/dev=one, example.com/dev=two"), "{e}");
        assert!(
            e.contains("/no/such/dir") && e.contains(&d.path().display().to_string()),
            "{e}"
        );
        let e = Registry::default()
            .resolve(&["a.com/b=c".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("known: none"), "{e}");
    }

    #[test]
    fn malformed_specs_are_skipped_and_named_with_the_fault() {
        for (text, what) in [
            ("cdiVersion: [", "a.yaml"),
            ("kind: example.com/dev\ndevices: [{name: x}]", "no cdiVersion"),
            ("cdiVersion: 0.6.0\nkind: bad\ndevices: [{name: x}]", "kind \"bad\""),
            ("cdiVersion: 0.6.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {hooks: [{hookName: later, path: /bin/true}]}}]", "hookName"),
        ] {
            let d = dir_with(&[("a.yaml", text), ("good.yaml", YAML)]);
            let r = Registry::load(&[d.path().to_path_buf()]).unwrap();
            assert_eq!(r.skipped().len(), 1);
            let e = r.skipped()[0].to_string();
            assert!(e.contains("a.yaml") && e.contains(what) && e.contains("malformed"), "{e}");
            assert!(r.resolve(&["example.com/dev=one".into()]).is_ok());
            let e = r.resolve(&["a.com/b=x".into()]).unwrap_err().to_string();
            assert!(e.contains("skipped spec files") && e.contains(what), "{e}");
        }
    }

    #[test]
    fn later_dirs_override_and_same_dir_duplicates_conflict() {
        let a = dir_with(&[("a.yaml", YAML)]);
        let over = "cdiVersion: 0.6.0\nkind: example.com/dev\ndevices: [{name: one, containerEdits: {env: [OVER=1]}}]";
        let b = dir_with(&[("z.yaml", over)]);
        let r = Registry::load(&[a.path().into(), b.path().into()]).unwrap();
        let e = r.resolve(&["example.com/dev=one".into()]).unwrap();
        assert_eq!(e.env, ["OVER=1"]);
        let c = dir_with(&[("a.yaml", YAML), ("b.yaml", over)]);
        let e = Registry::load(&[c.path().into()]).unwrap_err();
        assert!(matches!(e, CdiError::Conflict { .. }), "{e}");
    }

    #[test]
    fn unsupported_edits_are_refused() {
        let text = "cdiVersion: 0.6.0\nkind: a.com/b\ndevices: [{name: x, containerEdits: {intelRdt: {closID: c}}}]";
        let d = dir_with(&[("a.yaml", text)]);
        let r = Registry::load(&[d.path().into()]).unwrap();
        let e = r.resolve(&["a.com/b=x".into()]).unwrap_err().to_string();
        assert!(e.contains("intelRdt"), "{e}");
    }
}
