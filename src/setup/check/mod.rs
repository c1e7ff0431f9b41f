//! The prerequisites of a rootless containerd, each with the exact fix, and what install would
//! choose on this host (`burrow setup check`).

mod host;
mod ids;
mod storage;
mod tools;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files;
use super::layout::{requested_data_root, Layout};
use super::systemd;
use crate::connection::{self, Globals, UserEnv};

/// How one prerequisite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Install can proceed, with a limitation the detail names.
    Warn,
    /// Install cannot proceed until the fix is applied.
    Fail,
}

/// One checked prerequisite.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What install would choose on this host.
#[derive(Debug, Clone, Serialize)]
pub struct Choices {
    /// overlayfs or native.
    pub snapshotter: String,
    /// runc or crun.
    pub runtime: Option<String>,
    /// systemd, cgroupfs or none.
    pub cgroup_manager: String,
    /// systemd (a user unit) or supervised (a background service).
    pub service: String,
    pub data_dir: PathBuf,
    /// The user has no subordinate ids: the launcher maps one id, and layers are unpacked with
    /// every file given to the user (containerd's stream processor `burrow internal layer-squash`).
    pub single_id: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when `burrow setup install` can proceed.
    pub ok: bool,
    pub user: String,
    pub uid: u32,
    pub checks: Vec<Item>,
    pub choices: Choices,
}

/// Runs every check for the current user.
pub fn gather(g: &Globals, launcher: Option<&Path>) -> Report {
    let env = UserEnv::current();
    let uid = env.euid;
    let gid = nix::unistd::getegid().as_raw();
    let user = user_name(uid);
    let mut checks = Vec::new();
    let runtime_dir = connection::effective_runtime_dir(&env);

    checks.push(host::check_not_root(uid));
    checks.push(ids::check_userns_sysctls());
    checks.push(ids::check_id_helper("newuidmap"));
    checks.push(ids::check_id_helper("newgidmap"));
    let (subids, single_id) = ids::check_subids(&user, uid, gid);
    checks.push(subids);
    checks.push(host::check_tun());
    checks.push(host::check_runtime_dir(&env, runtime_dir.as_deref()));
    let manager = systemd::user_manager_reachable();
    checks.push(host::check_systemd(&user, &manager));
    let (cg_item, cgroup_manager) = host::check_cgroups(uid, manager.is_ok());
    checks.push(cg_item);
    let data_dir = setup_data_dir(&env, g);
    let (snap_item, snapshotter) = storage::check_overlay(data_dir.as_deref());
    checks.push(snap_item);
    checks.push(tools::check_program(
        "containerd",
        &["--version"],
        "containerd",
    ));
    let (rt_item, runtime) = tools::check_oci_runtime();
    checks.push(rt_item);
    let mut slirp = tools::check_program("slirp4netns", &["--version"], "slirp4netns");
    if slirp.status == Status::Fail {
        // Only `setup install --net=slirp4netns` needs it; the default network is built in.
        slirp.status = Status::Warn;
        slirp
            .detail
            .push_str(" (needed only for `burrow setup install --net=slirp4netns`)");
    }
    checks.push(slirp);
    checks.push(tools::check_launcher(launcher));
    if let Some(d) = &data_dir {
        checks.push(storage::check_data_fs(d, &user));
    }
    if let Ok(l) = Layout::new(&env, None) {
        checks.push(check_existing(&l));
    }

    let ok = checks.iter().all(|c| c.status != Status::Fail);
    Report {
        ok,
        user,
        uid,
        checks,
        choices: Choices {
            snapshotter,
            runtime,
            cgroup_manager,
            service: if manager.is_ok() {
                "systemd".into()
            } else {
                "supervised".into()
            },
            data_dir: data_dir.unwrap_or_default(),
            single_id,
        },
    }
}

/// Where containerd's data will go: `--data-root`/containerd, else `$XDG_DATA_HOME/containerd`.
fn setup_data_dir(env: &UserEnv, g: &Globals) -> Option<PathBuf> {
    match requested_data_root(g, env) {
        Some(d) => Some(d.join("containerd")),
        None => env.data_home.as_ref().map(|d| d.join("containerd")),
    }
}

/// The name of the user `uid`, else $USER, else the number.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string())
}

/// One item.
fn item(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Item {
    Item {
        name,
        status,
        detail: detail.into(),
        fix,
    }
}

/// A rootless containerd set up by something else (nerdctl's setup tool) is not ours to replace.
fn check_existing(l: &Layout) -> Item {
    let name = "existing setup";
    for p in [&l.unit, &l.containerd_config] {
        if files::foreign(p).unwrap_or(false) {
            return item(
                name,
                Status::Warn,
                format!("{} exists and was not written by burrow (nerdctl's containerd-rootless-setuptool.sh?): install leaves it alone", p.display()),
                Some("to replace it: burrow setup install --force (the old file is kept as FILE.burrow-backup)".into()),
            );
        }
    }
    if std::fs::read_to_string(&l.unit).is_ok() || l.supervise_pid.exists() {
        return item(
            name,
            Status::Ok,
            "burrow's own setup is installed (install refreshes it)",
            None,
        );
    }
    item(name, Status::Ok, "none", None)
}
