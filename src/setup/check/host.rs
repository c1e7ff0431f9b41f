//! The host's side of the checks: the user, /dev/net/tun, the runtime dir, systemd and cgroups.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{item, Item, Status};
use crate::connection::UserEnv;

pub(super) fn check_not_root(uid: u32) -> Item {
    if uid == 0 {
        item(
            "user",
            Status::Fail,
            "running as root: a rootless containerd belongs to an unprivileged user (root uses the system containerd)",
            Some("run burrow setup as the user who will run containers (e.g. `su - USER`)".into()),
        )
    } else {
        item(
            "user",
            Status::Ok,
            format!("unprivileged (uid {uid})"),
            None,
        )
    }
}

pub(super) fn check_tun() -> Item {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => item("/dev/net/tun", Status::Ok, "usable", None),
        Err(e) => item(
            "/dev/net/tun",
            Status::Fail,
            format!("cannot open /dev/net/tun: {e} (the namespace's network needs a tap device)"),
            Some("as root: modprobe tun; chmod 0666 /dev/net/tun".into()),
        ),
    }
}

pub(super) fn check_runtime_dir(env: &UserEnv, effective: Option<&Path>) -> Item {
    let name = "XDG_RUNTIME_DIR";
    let uid = env.euid;
    let conv = env.conventional_runtime_dir();
    let Some(dir) = effective else {
        return item(
            name,
            Status::Fail,
            format!("XDG_RUNTIME_DIR is not set (as after su or ssh without a login session) and {} is not yours", conv.display()),
            Some(format!(
                "as root: mkdir -m 0700 {c} && chown {uid} {c}; then export XDG_RUNTIME_DIR={c} (or a private 0700 dir on local disk: see docs/hpc.md)",
                c = conv.display()
            )),
        );
    };
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return item(
                name,
                Status::Fail,
                format!("{}: {e}", dir.display()),
                Some(format!("mkdir -m 0700 {}", dir.display())),
            )
        }
    };
    if meta.uid() != uid {
        return item(
            name,
            Status::Fail,
            format!("{} belongs to uid {}, not to you", dir.display(), meta.uid()),
            Some(format!("export XDG_RUNTIME_DIR to a 0700 dir of yours, e.g. as root: mkdir -m 0700 {c} && chown {uid} {c}", c = conv.display())),
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return item(
            name,
            Status::Fail,
            format!(
                "{} is mode {:o}: others could reach your containerd's socket",
                dir.display(),
                meta.permissions().mode() & 0o7777
            ),
            Some(format!("chmod 0700 {}", dir.display())),
        );
    }
    if env.runtime_dir.is_none() {
        return item(
            name,
            Status::Warn,
            format!("not set; using {} (yours, 0700)", dir.display()),
            Some(format!(
                "export XDG_RUNTIME_DIR={} in your shell profile",
                dir.display()
            )),
        );
    }
    item(
        name,
        Status::Ok,
        format!("{} (yours, 0700)", dir.display()),
        None,
    )
}

pub(super) fn check_systemd(user: &str, manager: &Result<(), String>) -> Item {
    match manager {
        Ok(()) => {
            let linger = Path::new("/var/lib/systemd/linger").join(user).exists();
            if linger {
                item("systemd --user", Status::Ok, "the user manager answers; lingering is on (services run without a login session)", None)
            } else {
                item(
                    "systemd --user",
                    Status::Ok,
                    "the user manager answers; lingering is off, so containerd stops when your last session ends",
                    Some(format!("to keep it running: loginctl enable-linger {user}")),
                )
            }
        }
        Err(why) => item(
            "systemd --user",
            Status::Warn,
            format!("no user manager ({why}): install runs containerd as a supervised background service instead (see docs/hpc.md for starting it at login)"),
            None,
        ),
    }
}

/// The cgroup situation and the cgroup manager containers get.
pub(super) fn check_cgroups(uid: u32, systemd_user: bool) -> (Item, String) {
    let name = "cgroups";
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return (
            item(
                name,
                Status::Warn,
                "cgroup v1: nothing is delegated to users, so rootless containers run without resource limits (--memory, --cpus and --pids-limit are refused)",
                Some("for limits: boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and delegate controllers to user@.service".into()),
            ),
            "none".into(),
        );
    }
    let dir = PathBuf::from(format!(
        "/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service"
    ));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let owned = std::fs::metadata(&dir)
        .map(|m| m.uid() == uid)
        .unwrap_or(false);
    if owned && !controllers.trim().is_empty() {
        let mgr = if systemd_user { "systemd" } else { "cgroupfs" };
        let wanted = ["cpu", "memory", "pids"];
        let missing: Vec<_> = wanted
            .iter()
            .filter(|c| !controllers.split_whitespace().any(|x| x == **c))
            .collect();
        let detail = format!("cgroup v2, delegated controllers: {}", controllers.trim());
        if missing.is_empty() {
            return (item(name, Status::Ok, detail, None), mgr.into());
        }
        return (
            item(
                name,
                Status::Warn,
                format!("{detail} (missing: {missing:?}: those limits are refused)"),
                Some("as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload".into()),
            ),
            mgr.into(),
        );
    }
    (
        item(
            name,
            Status::Warn,
            "cgroup v2 but nothing is delegated to you: containers run without resource limits",
            Some("as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload".into()),
        ),
        "none".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_fails() {
        assert_eq!(check_not_root(0).status, Status::Fail);
        assert_eq!(check_not_root(1000).status, Status::Ok);
    }
}
