//! Writes the child's uid and gid maps: newuidmap/newgidmap with the user's subordinate ids, or
//! a single-id map (with a warning) when the user has none.

use std::fs;
use std::process::Command;

use anyhow::{bail, Context};
use nix::unistd::{Gid, Pid, Uid, User};

use crate::subid::{self, Range, SubidSource};

/// Which kind of map was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    Subordinate,
    SingleId,
}

/// Maps `pid`'s user namespace: 0 → the user, 1.. → the subordinate ranges.
pub fn write_maps(pid: Pid, source: SubidSource) -> anyhow::Result<MapKind> {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let (uranges, granges) = subid::lookup(source, &name, uid.as_raw(), gid.as_raw());
    if uranges.is_empty() || granges.is_empty() {
        eprintln!(
            "burrow-rootlesskit: warning: user {name} has no subordinate ids; only uid/gid 0 is mapped \
             (files owned by other ids cannot be created). As root: usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 {name}"
        );
        single_id(pid, uid, gid)?;
        return Ok(MapKind::SingleId);
    }
    run_helper("newuidmap", pid, uid.as_raw(), &uranges)?;
    run_helper("newgidmap", pid, gid.as_raw(), &granges)?;
    Ok(MapKind::Subordinate)
}

fn run_helper(helper: &str, pid: Pid, id: u32, ranges: &[Range]) -> anyhow::Result<()> {
    let mut cmd = Command::new(helper);
    cmd.arg(pid.to_string());
    for (inside, outside, count) in subid::map_triples(id, ranges) {
        cmd.args([inside.to_string(), outside.to_string(), count.to_string()]);
    }
    tracing::debug!("running {cmd:?}");
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{helper} not found: install it (Debian/Ubuntu: apt-get install uidmap; Fedora: shadow-utils) — it writes the id maps of user namespaces"
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot run {helper}")),
    };
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let mut hint = String::new();
    if err.contains("Operation not permitted") || err.contains("EPERM") {
        hint = format!(
            " Likely causes: {helper} is neither setuid root nor has file capabilities (fix as root: \
             chmod u+s $(command -v {helper}), or setcap cap_set{}id+ep $(command -v {helper})); or \
             the kernel forbids unprivileged user namespaces (Ubuntu: sysctl \
             kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns; \
             others: sysctl user.max_user_namespaces=28633).",
            if helper == "newuidmap" { "u" } else { "g" }
        );
    } else if err.contains("not allowed") || err.contains("subuid") || err.contains("subgid") {
        hint = " The ranges in /etc/subuid or /etc/subgid do not allow this map: check them, or run `burrow setup check`.".into();
    }
    bail!(
        "{helper} failed for pid {pid} ({}): {err}.{hint}",
        out.status
    );
}

/// Maps only the user itself, without helpers (what an unprivileged process may write).
fn single_id(pid: Pid, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let proc = format!("/proc/{pid}");
    fs::write(format!("{proc}/uid_map"), format!("0 {uid} 1\n"))
        .with_context(|| format!("cannot write {proc}/uid_map"))?;
    fs::write(format!("{proc}/setgroups"), "deny")
        .with_context(|| format!("cannot write {proc}/setgroups"))?;
    fs::write(format!("{proc}/gid_map"), format!("0 {gid} 1\n"))
        .with_context(|| format!("cannot write {proc}/gid_map"))?;
    Ok(())
}
