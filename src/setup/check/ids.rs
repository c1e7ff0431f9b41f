//! The checks of user namespaces and ids: the sysctls, newuidmap/newgidmap, subordinate ids.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use super::{item, Item, Status};
use crate::setup::programs::which;

fn read_sysctl(path: &str) -> Option<i64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(super) fn check_userns_sysctls() -> Item {
    let name = "user namespaces";
    if let Some(0) = read_sysctl("/proc/sys/user/max_user_namespaces") {
        return item(
            name,
            Status::Fail,
            "user.max_user_namespaces is 0: user namespaces are disabled",
            Some("as root: sysctl -w user.max_user_namespaces=28633 (and persist it in /etc/sysctl.d/)".into()),
        );
    }
    if let Some(0) = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") {
        return item(
            name,
            Status::Fail,
            "kernel.unprivileged_userns_clone is 0: unprivileged users cannot create user namespaces",
            Some("as root: sysctl -w kernel.unprivileged_userns_clone=1 (and persist it in /etc/sysctl.d/)".into()),
        );
    }
    if let Some(1) = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") {
        return item(
            name,
            Status::Fail,
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, as on Ubuntu 23.10+)",
            Some("as root: add an AppArmor profile allowing `userns` for burrow-rootlesskit (see docs/rootless.md), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0".into()),
        );
    }
    // The real thing: create one.
    match Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => item(name, Status::Ok, "an unprivileged user namespace can be created", None),
        Ok(o) => item(
            name,
            Status::Fail,
            format!(
                "creating a user namespace failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Some("check the sysctls user.max_user_namespaces and kernel.unprivileged_userns_clone, and any LSM policy (docs/rootless.md)".into()),
        ),
        Err(_) => item(
            name,
            Status::Ok,
            "enabled by the sysctls (unshare(1) is not installed to try one)",
            None,
        ),
    }
}

pub(super) fn check_id_helper(prog: &'static str) -> Item {
    let Some(path) = which(prog) else {
        return item(
            prog,
            Status::Fail,
            format!("{prog} is not installed: without it only a single-id map is possible"),
            Some("as root: apt-get install uidmap".into()),
        );
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => return item(prog, Status::Fail, format!("{}: {e}", path.display()), None),
    };
    if meta.uid() == 0 && meta.permissions().mode() & 0o4000 != 0 {
        return item(
            prog,
            Status::Ok,
            format!("{} is setuid root", path.display()),
            None,
        );
    }
    if has_file_caps(&path) {
        return item(
            prog,
            Status::Ok,
            format!("{} has file capabilities", path.display()),
            None,
        );
    }
    item(
        prog,
        Status::Fail,
        format!("{} is neither setuid root nor has file capabilities, so it cannot write id maps", path.display()),
        Some(format!("as root: chmod u+s {} (or setcap cap_setuid+ep / cap_setgid+ep; reinstalling uidmap restores it)", path.display())),
    )
}

/// True when `getcap` reports capabilities on the file.
fn has_file_caps(path: &Path) -> bool {
    Command::new("getcap")
        .arg(path)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("cap_set"))
        .unwrap_or(false)
}

/// The command that gives `user` 65536 subordinate ids in a range no one in /etc/subuid or
/// /etc/subgid holds yet.
fn subid_fix(user: &str) -> String {
    use burrow_rootlesskit::subid::{free_range, parse_all, static_files};
    let (uid_file, gid_file) = static_files();
    let mut taken = Vec::new();
    for f in [uid_file, gid_file] {
        taken.extend(parse_all(&std::fs::read_to_string(f).unwrap_or_default()));
    }
    match free_range(&taken, 65536) {
        Some(r) => {
            let (a, b) = (r.start, r.start + (r.count - 1));
            format!("as root: usermod --add-subuids {a}-{b} --add-subgids {a}-{b} {user} (a range no other user in /etc/subuid or /etc/subgid has), then `burrow setup install` again")
        }
        None => format!("as root: give {user} a free range of 65536 ids in /etc/subuid and /etc/subgid (usermod --add-subuids A-B --add-subgids A-B {user})"),
    }
}

/// The subordinate-id item, and whether the user has none (the launcher then maps one id).
pub(super) fn check_subids(user: &str, uid: u32, gid: u32) -> (Item, bool) {
    use burrow_rootlesskit::subid::{lookup, SubidSource};
    let (u, g) = lookup(SubidSource::Auto, user, uid, gid);
    let count =
        |r: &[burrow_rootlesskit::subid::Range]| r.iter().map(|r| u64::from(r.count)).sum::<u64>();
    let (nu, ng) = (count(&u), count(&g));
    let fix = subid_fix(user);
    if nu == 0 || ng == 0 {
        let it = item(
            "subordinate ids",
            Status::Warn,
            format!("{user} has no subordinate {} (/etc/subuid, /etc/subgid, getsubids): the launcher falls back to a single-id map: image files of other owners become yours, and containers run every user as root (you outside)", if nu == 0 { "uids" } else { "gids" }),
            Some(fix),
        );
        return (it, true);
    }
    if nu < 65536 || ng < 65536 {
        let it = item(
            "subordinate ids",
            Status::Warn,
            format!("{user} has {nu} subordinate uids and {ng} gids; images using ids above that fail to unpack (65536 is usual)"),
            Some(fix),
        );
        return (it, false);
    }
    let it = item(
        "subordinate ids",
        Status::Ok,
        format!(
            "{nu} uids starting at {}, {ng} gids starting at {}",
            u[0].start, g[0].start
        ),
        None,
    );
    (it, false)
}
