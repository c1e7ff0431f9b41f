//! Capability sets: Docker's default set and `--cap-add`/`--cap-drop` (with `ALL`).

use std::collections::BTreeSet;

/// Every capability the kernel knows of, as Docker spells them.
pub const ALL: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What a container gets from Docker when no `--cap-add`/`--cap-drop` is given.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A capability name nobody knows.
#[derive(Debug, thiserror::Error)]
#[error("unknown capability {0:?} (use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL)")]
pub struct UnknownCapability(pub String);

/// "net_admin", "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; "all" → "ALL".
pub fn normalize(name: &str) -> Result<String, UnknownCapability> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(UnknownCapability(name.to_string()))
    }
}

/// The capability set after Docker's rules: start from the default (or all when privileged),
/// add, then drop; `--cap-drop ALL --cap-add X` leaves only X.
pub fn resolve(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<BTreeSet<String>, UnknownCapability> {
    let add: Vec<String> = add.iter().map(|c| normalize(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop
        .iter()
        .map(|c| normalize(c))
        .collect::<Result<_, _>>()?;
    let all = || ALL.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>();
    if privileged || add.iter().any(|c| c == "ALL") {
        let mut set = all();
        if !privileged {
            for c in &drop {
                if c == "ALL" {
                    set.clear();
                } else {
                    set.remove(c);
                }
            }
        }
        return Ok(set);
    }
    let mut set: BTreeSet<String> = if drop.iter().any(|c| c == "ALL") {
        BTreeSet::new()
    } else {
        DOCKER_DEFAULT
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    set.extend(add);
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_add_drop() {
        let set = resolve(false, &[], &[]).unwrap();
        assert_eq!(set.len(), DOCKER_DEFAULT.len());
        assert!(!set.contains("CAP_SYS_ADMIN"));
        let set = resolve(false, &s(&["net_admin"]), &s(&["CAP_CHOWN", "mknod"])).unwrap();
        assert!(set.contains("CAP_NET_ADMIN"));
        assert!(!set.contains("CAP_CHOWN") && !set.contains("CAP_MKNOD"));
        let set = resolve(false, &s(&["NET_BIND_SERVICE"]), &s(&["ALL"])).unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            s(&["CAP_NET_BIND_SERVICE"])
        );
    }

    #[test]
    fn all_and_privileged() {
        assert_eq!(resolve(true, &[], &s(&["ALL"])).unwrap().len(), ALL.len());
        let set = resolve(false, &s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(set.len(), ALL.len() - 1);
        let err = resolve(false, &s(&["NET_FLY"]), &[]).unwrap_err();
        assert!(err.to_string().contains("NET_FLY"));
    }
}
