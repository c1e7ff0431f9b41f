//! What `create` was asked to run, as Docker's `Config` says it (Entrypoint and Cmd apart, the
//! user as given, the exposed ports), kept in the container's state dir for `inspect`: the OCI
//! spec has only the process's whole argv (with `--init`'s init in front) and numeric ids.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::request::ContainerRequest;
use crate::images::runnable::Image;

/// The file in the state dir.
pub const ASKED_FILE: &str = "config.json";

/// Docker's Config fields the spec cannot give back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Asked {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// As given (`-u`) or the image's `USER`: names stay names.
    pub user: String,
    pub exposed_ports: BTreeSet<String>,
    pub stop_signal: String,
}

impl Asked {
    /// What `req` asks of `image` (Docker's entrypoint and cmd rules, see
    /// [`super::spec::entrypoint_and_cmd`]).
    pub fn of(req: &ContainerRequest, image: &Image) -> Asked {
        let c = &req.config;
        let (entrypoint, cmd) =
            super::spec::entrypoint_and_cmd(&image.defaults, c.entrypoint.as_ref(), &c.cmd);
        Asked {
            entrypoint,
            cmd,
            user: c
                .user
                .clone()
                .unwrap_or_else(|| image.defaults.user.clone()),
            exposed_ports: image
                .exposed_ports
                .iter()
                .chain(&c.exposed_ports)
                .cloned()
                .collect(),
            stop_signal: c.stop_signal.clone().unwrap_or_default(),
        }
    }

    /// The record in the state dir `dir`; None for containers made before it existed.
    pub fn read(dir: &Path) -> Option<Asked> {
        let bytes = std::fs::read(dir.join(ASKED_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_docker_names_it() {
        let a = Asked {
            entrypoint: vec!["sh".into()],
            cmd: vec!["-c".into(), "sleep 1".into()],
            user: "nobody".into(),
            exposed_ports: ["80/tcp".to_string()].into(),
            stop_signal: "SIGUSR1".into(),
        };
        let text = serde_json::to_string(&a).unwrap();
        assert!(
            text.contains("\"Entrypoint\":[\"sh\"]") && text.contains("\"ExposedPorts\""),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ASKED_FILE), text).unwrap();
        assert_eq!(Asked::read(dir.path()), Some(a));
        assert_eq!(Asked::read(Path::new("/nonexistent")), None);
    }
}
