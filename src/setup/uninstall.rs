//! Stopping and removing the user's rootless containerd (`burrow setup uninstall`): the service,
//! burrow's files, the runtime leftovers, and with `purge` the images and containers' data.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use super::change::Change;
use super::layout::{Layout, LayoutError};
use super::service::{self, Manager};
use super::{files, programs, systemd, usertoml};
use crate::connection::{paths, Globals, UserEnv};

/// What to remove besides the service and burrow's files.
#[derive(Debug, Clone, Default)]
pub struct UninstallOptions {
    /// Also delete images, containers, volumes and network state.
    pub purge: bool,
    /// The launcher used to delete data owned by subordinate ids [default: found as install does].
    pub launcher: Option<PathBuf>,
}

/// What an uninstall did.
#[derive(Debug, Clone, Default)]
pub struct Uninstalled {
    /// Everything it stopped, removed or deleted, in order; empty when nothing was set up.
    pub changes: Vec<Change>,
    /// The data dirs left in place (without `purge`).
    pub kept: Vec<PathBuf>,
}

/// Why an uninstall did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UninstallError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The unit was written by another tool: it is left alone.
    #[error("{} was not written by burrow (nerdctl's setup tool?): it is left alone; remove it with the tool that installed it (containerd-rootless-setuptool.sh uninstall)", unit.display())]
    Foreign { unit: PathBuf },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Uninstalls the current user's rootless containerd.
pub fn uninstall(g: &Globals, opts: &UninstallOptions) -> Result<Uninstalled, UninstallError> {
    let env = UserEnv::current();
    let l = Layout::current(g)?;
    let manager = service::installed(&l);
    if manager.is_none() && files::foreign(&l.unit)? {
        return Err(UninstallError::Foreign {
            unit: l.unit.clone(),
        });
    }
    let mut changes = stop_services(&l, manager)?;
    remove_files(&l, &mut changes)?;
    // Runtime leftovers: sockets, the launcher's state, containerd's state.
    for dir in [&l.state_dir, &l.run_dir] {
        if dir.exists() && std::fs::remove_dir_all(dir).is_err() {
            purge_in_namespace(&l, opts.launcher.as_deref(), &[dir.as_path()])?;
        }
    }
    let data_dirs: Vec<PathBuf> = [
        Some(l.data_dir.clone()),
        l.cli_data_root
            .clone()
            .or_else(|| Some(paths::default_data_root(true, &env))),
        Some(l.cni_dir.clone()),
    ]
    .into_iter()
    .flatten()
    .filter(|d| d.exists())
    .collect();
    if !opts.purge {
        return Ok(Uninstalled {
            changes,
            kept: data_dirs,
        });
    }
    let refs: Vec<&Path> = data_dirs.iter().map(PathBuf::as_path).collect();
    if !refs.is_empty() {
        purge_in_namespace(&l, opts.launcher.as_deref(), &refs)?;
        changes.extend(data_dirs.iter().cloned().map(Change::Deleted));
    }
    Ok(Uninstalled {
        changes,
        kept: Vec::new(),
    })
}

/// Stops the Docker API's units, the service however it runs, and the bypass service; disables
/// their units.
fn stop_services(l: &Layout, manager: Option<Manager>) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    if l.docker_socket_unit.exists() && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["disable", "--now", systemd::DOCKER_SOCKET])?;
        let _ = systemd::run(&["stop", systemd::DOCKER_SERVICE]);
        for unit in [systemd::DOCKER_SOCKET, systemd::DOCKER_SERVICE] {
            let _ = systemd::run(&["reset-failed", unit]);
        }
        changes.push(Change::StoppedDockerApi);
    }
    service::stop(l, manager)?;
    if manager.is_some() {
        changes.push(Change::StoppedService);
    }
    if l.bypass_unit.exists() && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["disable", "--now", systemd::BYPASS_UNIT])?;
        let _ = systemd::run(&["reset-failed", systemd::BYPASS_UNIT]);
        changes.push(Change::StoppedBypass);
    }
    if l.unit.exists() && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["disable", systemd::UNIT])?;
        let _ = systemd::run(&["reset-failed", systemd::UNIT]);
    }
    Ok(changes)
}

/// Removes the units, the supervised marker, and the configs burrow wrote.
fn remove_files(l: &Layout, changes: &mut Vec<Change>) -> anyhow::Result<()> {
    let had_unit = [&l.unit, &l.bypass_unit, &l.docker_socket_unit]
        .iter()
        .any(|u| u.exists());
    for unit in [
        &l.unit,
        &l.bypass_unit,
        &l.docker_socket_unit,
        &l.docker_service_unit,
    ] {
        changes.extend(files::remove(unit)?);
    }
    let _ = std::fs::remove_file(&l.bypass_socket);
    if service::docker_api_installed(l) || l.docker_socket.exists() {
        // Ours only when nothing answers there any more (a `burrow system service` the user
        // started by hand keeps its socket).
        if std::os::unix::net::UnixStream::connect(&l.docker_socket).is_err() {
            let _ = std::fs::remove_file(&l.docker_socket);
        }
    }
    if had_unit && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["daemon-reload"])?;
    }
    changes.extend(files::remove(&l.supervise_marker)?);
    if !files::foreign(&l.containerd_config)? {
        changes.extend(files::remove(&l.containerd_config)?);
    }
    // burrow.toml: install's block goes; the user's own lines stay.
    if let Ok(text) = std::fs::read_to_string(&l.burrow_toml) {
        match usertoml::without_block(&text) {
            None => changes.extend(files::remove(&l.burrow_toml)?),
            Some(rest) => changes.extend(files::write_file(&l.burrow_toml, &rest)?),
        }
    }
    Ok(())
}

/// Deletes dirs whose files belong to subordinate ids: inside the launcher's user namespace.
fn purge_in_namespace(l: &Layout, launcher: Option<&Path>, dirs: &[&Path]) -> anyhow::Result<()> {
    // Files the user owns go first, without any namespace.
    let left: Vec<&Path> = dirs
        .iter()
        .copied()
        .filter(|d| std::fs::remove_dir_all(d).is_err() && d.exists())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    let launcher = programs::find_launcher(launcher)?;
    let out = Command::new(&launcher)
        .arg("--net=none")
        .arg("rm")
        .arg("-rf")
        .arg("--")
        .args(&left)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", launcher.display()))?;
    let still: Vec<String> = left
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    if !out.status.success() || !still.is_empty() {
        bail!(
            "cannot delete {}: {} (try: {} --net=none rm -rf {}; the log is {})",
            still.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            launcher.display(),
            still.join(" "),
            l.log.display()
        );
    }
    Ok(())
}
