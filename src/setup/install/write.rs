//! The files install writes: the private directories, containerd's config, burrow.toml, and the
//! service (the systemd units, the Docker API's units, or the supervised service's marker).

use super::{Notice, Plan};
use crate::setup::change::Change;
use crate::setup::check::Choices;
use crate::setup::files::{private_dir, write_file};
use crate::setup::layout::Layout;
use crate::setup::service::Manager;
use crate::setup::{render, usertoml};

/// Which services' files changed (a changed service is restarted).
pub(super) struct Written {
    /// containerd's config, the unit or the supervised marker.
    pub service: bool,
    /// The bypass service's unit.
    pub bypass: bool,
    /// The Docker API's units.
    pub docker_api: bool,
}

/// Writes every file of the plan for `manager`.
pub(super) fn write_all(
    plan: &Plan,
    manager: Manager,
    changes: &mut Vec<Change>,
    notify: &mut dyn FnMut(Notice),
) -> anyhow::Result<Written> {
    let l = &plan.layout;
    for dir in [&l.data_dir, &l.run_dir, &l.cni_dir] {
        private_dir(dir)?;
    }
    if let Some(d) = &l.cli_data_root {
        private_dir(d)?;
    }
    if let Some(d) = l.log.parent() {
        private_dir(d)?;
    }
    let mut service = false;
    let squash_with = plan
        .report
        .choices
        .single_id
        .then_some(plan.burrow.as_path());
    service |= write(
        &l.containerd_config,
        &render::render_containerd_config(squash_with),
        changes,
    )?;
    write_burrow_toml(l, &plan.report.choices, changes, notify)?;
    service |= match manager {
        Manager::Systemd => write(
            &l.unit,
            &l.render_unit(&plan.launcher, &plan.burrow, &plan.runtime),
            changes,
        )?,
        Manager::Supervised => write(
            &l.supervise_marker,
            &l.render_supervise_marker(
                &plan.launcher,
                &plan.burrow,
                &plan.runtime,
                plan.bypass.as_deref(),
                plan.docker_api,
            ),
            changes,
        )?,
    };
    let bypass = match (&plan.bypass, manager) {
        (Some(b), Manager::Systemd) => write(&l.bypass_unit, &l.render_bypass_unit(b), changes)?,
        _ => false,
    };
    let mut docker_api = false;
    if plan.docker_api && manager == Manager::Systemd {
        docker_api |= write(
            &l.docker_socket_unit,
            &l.render_docker_socket_unit(),
            changes,
        )?;
        docker_api |= write(
            &l.docker_service_unit,
            &l.render_docker_service_unit(&plan.burrow),
            changes,
        )?;
    }
    Ok(Written {
        service,
        bypass,
        docker_api,
    })
}

/// Writes a file unless it holds `text` already; true when written.
fn write(path: &std::path::Path, text: &str, changes: &mut Vec<Change>) -> anyhow::Result<bool> {
    let change = write_file(path, text)?;
    let written = change.is_some();
    changes.extend(change);
    Ok(written)
}

/// burrow.toml: the snapshotter and cgroup manager the check chose, and the data root, in
/// install's block of the file; a key the user's own lines set stays theirs, with a notice
/// when it differs.
fn write_burrow_toml(
    l: &Layout,
    choices: &Choices,
    changes: &mut Vec<Change>,
    notify: &mut dyn FnMut(Notice),
) -> anyhow::Result<()> {
    let now = match std::fs::read_to_string(&l.burrow_toml) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return anyhow::Context::with_context(Err(e), || {
                format!("cannot read {}", l.burrow_toml.display())
            })
        }
    };
    let values = [
        ("snapshotter", Some(choices.snapshotter.clone())),
        ("cgroup_manager", Some(choices.cgroup_manager.clone())),
        (
            "data_root",
            l.cli_data_root.as_ref().map(|d| d.display().to_string()),
        ),
    ];
    let (text, kept) = usertoml::with_block(&now, &values);
    if !kept.is_empty() {
        notify(Notice::OwnBurrowToml {
            path: l.burrow_toml.clone(),
            wanted: kept.into_iter().map(|k| k.wanted).collect(),
        });
    }
    write(&l.burrow_toml, &text, changes)?;
    Ok(())
}
