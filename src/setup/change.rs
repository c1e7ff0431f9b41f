//! What an install or uninstall changed on the host, one user-readable line each.

use std::fmt;
use std::path::PathBuf;

use super::systemd::{BYPASS_UNIT, DOCKER_SOCKET, UNIT};

/// One change an operation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A file written where there was none.
    Wrote(PathBuf),
    /// A file rewritten with new content.
    Updated(PathBuf),
    /// A file burrow wrote, removed.
    Removed(PathBuf),
    /// A data directory deleted (`uninstall --purge`).
    Deleted(PathBuf),
    /// A file of another tool moved aside (`install --force`).
    KeptForeign { file: PathBuf, backup: PathBuf },
    /// Another tool's containerd unit stopped and disabled (`install --force`).
    StoppedForeignUnit,
    /// The containerd unit enabled and started.
    StartedUnit,
    /// The containerd unit restarted because its configuration changed.
    RestartedUnit,
    /// The supervised service stopped because its configuration changed.
    StoppedSupervised,
    /// The supervised service started.
    StartedSupervised { pid: u32 },
    /// The bypass unit enabled and started.
    StartedBypassUnit,
    /// The bypass unit restarted.
    RestartedBypassUnit,
    /// The rootless containerd and its launcher stopped (uninstall).
    StoppedService,
    /// The bypass service stopped (uninstall).
    StoppedBypass,
    /// The Docker API's socket unit enabled and (re)started.
    StartedDockerSocket,
    /// The Docker API's units stopped and disabled (uninstall).
    StoppedDockerApi,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Wrote(p) => write!(f, "wrote {}", p.display()),
            Change::Updated(p) => write!(f, "updated {}", p.display()),
            Change::Removed(p) => write!(f, "removed {}", p.display()),
            Change::Deleted(p) => write!(f, "deleted {}", p.display()),
            Change::KeptForeign { file, backup } => write!(
                f,
                "kept the existing {} as {}",
                file.display(),
                backup.display()
            ),
            Change::StoppedForeignUnit => write!(f, "stopped and disabled the existing {UNIT}"),
            Change::StartedUnit => write!(f, "enabled and started the systemd user unit {UNIT}"),
            Change::RestartedUnit => write!(f, "restarted {UNIT} (its configuration changed)"),
            Change::StoppedSupervised => {
                write!(
                    f,
                    "stopped the supervised service (its configuration changed)"
                )
            }
            Change::StartedSupervised { pid } => {
                write!(f, "started the supervised service (pid {pid})")
            }
            Change::StartedBypassUnit => write!(f, "enabled and started {BYPASS_UNIT}"),
            Change::RestartedBypassUnit => write!(f, "restarted {BYPASS_UNIT}"),
            Change::StoppedService => write!(f, "stopped the rootless containerd and its launcher"),
            Change::StoppedBypass => write!(f, "stopped the socket-bypass service"),
            Change::StartedDockerSocket => write!(
                f,
                "enabled and started {DOCKER_SOCKET} (the Docker API starts on the first connection)"
            ),
            Change::StoppedDockerApi => write!(f, "stopped and disabled the Docker API's units"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_before() {
        assert_eq!(Change::Wrote("/a".into()).to_string(), "wrote /a");
        assert_eq!(
            Change::StartedUnit.to_string(),
            "enabled and started the systemd user unit containerd.service"
        );
        assert_eq!(
            Change::KeptForeign {
                file: "/u".into(),
                backup: "/u.burrow-backup".into()
            }
            .to_string(),
            "kept the existing /u as /u.burrow-backup"
        );
    }
}
