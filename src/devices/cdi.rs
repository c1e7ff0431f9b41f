//! CDI (Container Device Interface, github.com/cncf-tags/container-device-interface): the spec
//! dirs, and a [`Registry`] that loads their spec files ([`super::spec_file`]) and resolves
//! device names to the container edits they ask for (applied to an OCI spec by
//! [`super::edits`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::spec_file::is_spec_file;
pub use super::spec_file::{
    is_qualified, read_spec, CdiMount, ContainerEdits, Device, DeviceNode, Hook, QualifiedName,
    SpecFile, SpecFileError,
};

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
        if let Some(h) = crate::slurm::user_config_home() {
            dirs.push(h.join("cdi"));
        }
    }
    dirs
}

/// CDI specs that cannot be loaded, and device names that cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error(transparent)]
    Spec(#[from] SpecFileError),
    #[error("reading the CDI spec dir {dir}: {source}")]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
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
                        r.skipped.push(e.into());
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
