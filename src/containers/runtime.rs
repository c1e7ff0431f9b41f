//! The OCI runtime a container's shim runs (`--runtime`): runc by default, or crun or another
//! OCI runtime program, given to containerd's runc shim as its `BinaryName` option (as nerdctl
//! does), so that every later task of the container (start, restart, exec) runs it too.

use std::path::PathBuf;

use containerd_client::services::v1::Container;

use super::labels;
use super::lifecycle::RUNTIME as RUNC_SHIM;
use crate::setup::programs::{is_executable, which_on};

/// The type URL containerd's typeurl gives the runc shim's options.
const OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

/// What `--runtime` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciRuntime {
    /// runc, the shim's own default.
    Runc,
    /// Another OCI runtime program: the name as given (inspect's `HostConfig.Runtime`) and the
    /// program the shim runs.
    Program { name: String, path: PathBuf },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    #[error("--runtime {0:?}: burrow runs containers through containerd's runc shim ({RUNC_SHIM}) only; name an OCI runtime program instead (runc, crun, or a path to one)")]
    OtherShim(String),
    #[error("--runtime {name:?}: no program {name:?} in PATH ({path}); install it (crun: apt-get install crun) or give the path to an OCI runtime program")]
    NotInPath { name: String, path: String },
    #[error("--runtime {0:?}: no executable file there; give the path to an OCI runtime program (runc, crun)")]
    NotExecutable(String),
}

/// The runc shim's options message (containerd's `runc/options/oci.proto`), the one field
/// burrow sets.
#[derive(Clone, PartialEq, prost::Message)]
struct ShimOptions {
    #[prost(string, tag = "6")]
    binary_name: String,
}

impl OciRuntime {
    /// Resolves `--runtime`: empty, `runc` or the runc shim's name are runc; another name is
    /// looked up in `PATH`, a path must be an executable file.
    pub fn resolve(asked: &str) -> Result<OciRuntime, RuntimeError> {
        Self::resolve_in(asked, &std::env::var("PATH").unwrap_or_default())
    }

    fn resolve_in(asked: &str, path_var: &str) -> Result<OciRuntime, RuntimeError> {
        match asked {
            "" | "runc" | RUNC_SHIM => return Ok(OciRuntime::Runc),
            _ => {}
        }
        if asked.starts_with("io.containerd.") {
            return Err(RuntimeError::OtherShim(asked.to_string()));
        }
        let path = if asked.contains('/') {
            let p = PathBuf::from(asked);
            if !is_executable(&p) {
                return Err(RuntimeError::NotExecutable(asked.to_string()));
            }
            std::path::absolute(&p).unwrap_or(p)
        } else {
            let found =
                which_on(asked, path_var.as_ref(), &[]).ok_or_else(|| RuntimeError::NotInPath {
                    name: asked.to_string(),
                    path: path_var.to_string(),
                })?;
            std::path::absolute(&found).unwrap_or(found)
        };
        Ok(OciRuntime::Program {
            name: asked.to_string(),
            path,
        })
    }

    /// The shim's options for the container record (`None`: the shim's defaults, runc).
    pub fn shim_options(&self) -> Option<prost_types::Any> {
        match self {
            OciRuntime::Runc => None,
            OciRuntime::Program { path, .. } => Some(prost_types::Any {
                type_url: OPTIONS_TYPE_URL.to_string(),
                value: prost::Message::encode_to_vec(&ShimOptions {
                    binary_name: path.display().to_string(),
                }),
            }),
        }
    }

    /// The label recording the name as given (nothing for runc).
    pub fn label(&self) -> Option<(String, String)> {
        match self {
            OciRuntime::Runc => None,
            OciRuntime::Program { name, .. } => Some((labels::RUNTIME.into(), name.clone())),
        }
    }
}

/// The runtime's name for inspect (`HostConfig.Runtime`): as given at create, else runc.
pub fn name_of(c: &Container) -> String {
    c.labels
        .get(labels::RUNTIME)
        .cloned()
        .unwrap_or_else(|| "runc".to_string())
}

/// The OCI runtimes `info` lists (Docker's `Runtimes`): runc, and crun where it is installed.
pub fn known() -> Vec<(&'static str, String)> {
    let mut out = vec![("runc", "runc".to_string())];
    if let Ok(OciRuntime::Program { path, .. }) = OciRuntime::resolve("crun") {
        out.push(("crun", path.display().to_string()));
    }
    out
}

/// What to do when the runtime refused the host itself rather than the container: crun (1.8)
/// runs on neither cgroup v1 beside a v2 tree holding a controller.
pub fn refusal_hint(message: &str) -> Option<&'static str> {
    message
        .contains("cgroups in hybrid mode not supported")
        .then_some(
            "the OCI runtime refuses this host's cgroups (v1, with a controller in the v2 tree at \
         /sys/fs/cgroup/unified): run the container with runc (leave --runtime out)",
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn runc_names_are_the_default() {
        for a in ["", "runc", "io.containerd.runc.v2"] {
            assert_eq!(
                OciRuntime::resolve_in(a, "/nowhere").unwrap(),
                OciRuntime::Runc
            );
            assert!(OciRuntime::Runc.shim_options().is_none());
        }
    }

    #[test]
    fn programs_are_found_in_path_or_by_path() {
        let d = tempfile::tempdir().unwrap();
        let prog = d.path().join("myrt");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path_var = format!("/nowhere:{}", d.path().display());
        let rt = OciRuntime::resolve_in("myrt", &path_var).unwrap();
        assert_eq!(
            rt,
            OciRuntime::Program {
                name: "myrt".into(),
                path: prog.clone()
            }
        );
        let any = rt.shim_options().unwrap();
        assert_eq!(any.type_url, "containerd.runc.v1.Options");
        // Field 6 (binary_name), length-delimited, then the path.
        let p = prog.display().to_string();
        assert_eq!(any.value[0], 6 << 3 | 2);
        assert_eq!(&any.value[any.value.len() - p.len()..], p.as_bytes());
        assert_eq!(rt.label().unwrap().1, "myrt");
        let by_path = OciRuntime::resolve_in(&p, "/nowhere").unwrap();
        assert!(matches!(by_path, OciRuntime::Program { path, .. } if path == prog));
    }

    #[test]
    fn bad_names_say_what_to_give() {
        let e = OciRuntime::resolve_in("nosuchrt", "/nowhere").unwrap_err();
        assert!(
            e.to_string()
                .contains("no program \"nosuchrt\" in PATH (/nowhere)"),
            "{e}"
        );
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("rt");
        std::fs::write(&plain, "").unwrap();
        let e = OciRuntime::resolve_in(&plain.display().to_string(), "").unwrap_err();
        assert!(matches!(e, RuntimeError::NotExecutable(_)));
        let e = OciRuntime::resolve_in("io.containerd.runsc.v1", "").unwrap_err();
        assert!(e.to_string().contains("runc shim"), "{e}");
    }
}
