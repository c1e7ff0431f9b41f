//! Starting (or restarting) the installed service and waiting until containerd and the bypass
//! service answer.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::Plan;
use crate::setup::change::Change;
use crate::setup::layout::Layout;
use crate::setup::service::{self, Manager};
use crate::setup::{supervise, systemd};

/// Enables and (re)starts the unit; containerd's version once it answers.
pub(super) fn start_systemd(
    l: &Layout,
    changed: bool,
    timeout: Duration,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    if changed {
        systemd::run(&["daemon-reload"])?;
    }
    systemd::run(&["enable", systemd::UNIT])?;
    if systemd::is_active() {
        if !changed {
            if let Ok(v) = service::server_version(&l.socket) {
                return Ok(v);
            }
        } else {
            systemd::run(&["restart", systemd::UNIT])?;
            changes.push(Change::RestartedUnit);
        }
    } else {
        // A unit that failed too often is held back by the start limit; clear it first.
        let _ = systemd::run(&["reset-failed", systemd::UNIT]);
        systemd::run(&["start", systemd::UNIT])?;
        changes.push(Change::StartedUnit);
    }
    service::wait_ready(
        l,
        timeout,
        &|| {
            let s = systemd::property("ActiveState");
            s == "active" || s == "activating"
        },
        &|| systemd::property("NRestarts").parse().unwrap_or(0),
    )
}

/// Starts the supervisor in the background (stopping a running one whose configuration
/// changed); containerd's version once it answers.
pub(super) fn start_supervised(
    plan: &Plan,
    changed: bool,
    timeout: Duration,
    changes: &mut Vec<Change>,
) -> anyhow::Result<String> {
    let l = &plan.layout;
    if supervise::running_pid(l).is_some() {
        if !changed {
            if let Ok(v) = service::server_version(&l.socket) {
                return Ok(v);
            }
        } else {
            service::stop(l, Some(Manager::Supervised))?;
            changes.push(Change::StoppedSupervised);
        }
    }
    if let Some(pid) = supervise::start_background(
        l,
        Some(&plan.launcher),
        &plan.runtime,
        plan.bypass.as_deref(),
        plan.docker_api,
    )? {
        changes.push(Change::StartedSupervised { pid });
    }
    service::wait_ready(l, timeout, &|| supervise::running_pid(l).is_some(), &|| {
        supervise::restarts(l)
    })
}

/// Enables and (re)starts the bypass unit.
pub(super) fn start_bypass_unit(changed: bool, changes: &mut Vec<Change>) -> anyhow::Result<()> {
    if changed {
        systemd::run(&["daemon-reload"])?;
    }
    systemd::run(&["enable", systemd::BYPASS_UNIT])?;
    if !systemd::unit_active(systemd::BYPASS_UNIT) {
        let _ = systemd::run(&["reset-failed", systemd::BYPASS_UNIT]);
        systemd::run(&["start", systemd::BYPASS_UNIT])?;
        changes.push(Change::StartedBypassUnit);
    } else if changed {
        systemd::run(&["restart", systemd::BYPASS_UNIT])?;
        changes.push(Change::RestartedBypassUnit);
    }
    Ok(())
}

/// Waits until burrow-bypass accepts connections on its socket.
pub(super) fn wait_bypass(l: &Layout) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(&l.bypass_socket).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "burrow-bypass did not come up on {}; the log {} ends with:\n{}",
        l.bypass_socket.display(),
        l.log.display(),
        service::log_tail(&l.log, 10)
    )
}

/// Enables and starts the Docker API's socket unit; with `changed` units, stops a running API
/// service (the next connection starts the new one) and restarts the socket.
pub(super) fn start_docker_socket(changed: bool, changes: &mut Vec<Change>) -> anyhow::Result<()> {
    if changed {
        systemd::run(&["daemon-reload"])?;
        let _ = systemd::run(&["stop", systemd::DOCKER_SERVICE]);
    }
    systemd::run(&["enable", systemd::DOCKER_SOCKET])?;
    if !systemd::unit_active(systemd::DOCKER_SOCKET) {
        let _ = systemd::run(&["reset-failed", systemd::DOCKER_SOCKET]);
        systemd::run(&["start", systemd::DOCKER_SOCKET])?;
        changes.push(Change::StartedDockerSocket);
    } else if changed {
        systemd::run(&["restart", systemd::DOCKER_SOCKET])?;
        changes.push(Change::StartedDockerSocket);
    }
    Ok(())
}

/// Waits until the Docker API's socket is there: systemd's socket unit made it (a connection
/// would start the service, which is left to the first client), or the supervised service
/// accepts connections on it.
pub(super) fn wait_docker_api(l: &Layout, manager: Manager) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let up = match manager {
            Manager::Systemd => l.docker_socket.exists(),
            Manager::Supervised => {
                std::os::unix::net::UnixStream::connect(&l.docker_socket).is_ok()
            }
        };
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the Docker API did not come up on {}; the log {} ends with:\n{}",
        l.docker_socket.display(),
        l.log.display(),
        service::log_tail(&l.log, 10)
    )
}
