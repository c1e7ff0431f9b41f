//! Before install writes anything: another tool's rootless containerd is refused or (with
//! --force) moved aside, and a switch between systemd and the supervised service removes the
//! other way.

use std::path::PathBuf;

use anyhow::Context;

use super::InstallError;
use crate::connection::probe_socket;
use crate::setup::change::Change;
use crate::setup::layout::Layout;
use crate::setup::service::{self, Manager};
use crate::setup::{files, systemd};

/// Refuses (or with `force`, backs up and stops) a rootless containerd that burrow did not set up.
pub(super) fn take_over_foreign(l: &Layout, force: bool) -> Result<Vec<Change>, InstallError> {
    let mut changes = Vec::new();
    let foreign_files: Vec<PathBuf> = [&l.unit, &l.containerd_config]
        .into_iter()
        .filter(|p| files::foreign(p).unwrap_or(false))
        .cloned()
        .collect();
    let ours = service::installed(l).is_some();
    let foreign_socket = !ours && probe_socket(&l.socket).is_none();
    if foreign_files.is_empty() && !foreign_socket {
        return Ok(changes);
    }
    if !force {
        return Err(InstallError::Foreign {
            files: foreign_files,
            socket: foreign_socket.then(|| l.socket.clone()),
        });
    }
    if l.unit.exists() && systemd::user_manager_reachable().is_ok() {
        let _ = systemd::run(&["disable", "--now", systemd::UNIT]);
        changes.push(Change::StoppedForeignUnit);
    }
    for p in foreign_files {
        let backup = PathBuf::from(format!("{}.burrow-backup", p.display()));
        std::fs::rename(&p, &backup)
            .with_context(|| format!("cannot move {} to {}", p.display(), backup.display()))?;
        changes.push(Change::KeptForeign { file: p, backup });
    }
    if foreign_socket && probe_socket(&l.socket).is_none() {
        return Err(InstallError::ForeignStillAnswers {
            socket: l.socket.clone(),
        });
    }
    Ok(changes)
}

/// Switching between the two ways a service runs: stops and removes the other one first.
pub(super) fn switch_manager(
    l: &Layout,
    manager: Manager,
    changes: &mut Vec<Change>,
) -> anyhow::Result<()> {
    match (service::installed(l), manager) {
        (Some(Manager::Systemd), Manager::Supervised) => {
            service::stop(l, Some(Manager::Systemd))?;
            let _ = systemd::run(&["disable", "--now", systemd::UNIT, systemd::BYPASS_UNIT]);
            changes.extend(files::remove(&l.unit)?);
            changes.extend(files::remove(&l.bypass_unit)?);
            let _ = systemd::run(&["daemon-reload"]);
        }
        (Some(Manager::Supervised), Manager::Systemd) => {
            service::stop(l, Some(Manager::Supervised))?;
            changes.extend(files::remove(&l.supervise_marker)?);
        }
        _ => {}
    }
    Ok(())
}
