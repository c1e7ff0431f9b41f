//! The socket-bypass filter: the container's profile with the socket calls burrow-bypass handles
//! (connect, bind, getsockname, getpeername) sent to a user-notification listener.

use std::path::Path;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSyscall, LinuxSyscallBuilder};

/// The system calls burrow-bypass handles.
/// Data calls (send, recv, accept, listen) are never trapped, so a bypassed socket runs at the
/// kernel's speed; each trapped call costs one round trip to the service.
pub const TRAPPED: &[&str] = &["bind", "connect", "getpeername", "getsockname"];

/// `seccomp` with every [`TRAPPED`] call sent to the listener at `listener` instead of being
/// allowed outright; the profile's other rules stay as they are. Calls the profile refuses stay
/// refused (only unconditional allow rules are turned into notifications).
pub fn with_bypass(seccomp: &LinuxSeccomp, listener: &Path, metadata: &str) -> LinuxSeccomp {
    let mut s = seccomp.clone();
    let mut rules: Vec<LinuxSyscall> = s.syscalls().clone().unwrap_or_default();
    let mut moved: Vec<String> = Vec::new();
    let mut kept: Vec<LinuxSyscall> = Vec::new();
    for rule in rules.drain(..) {
        let unconditional_allow = rule.action() == LinuxSeccompAction::ScmpActAllow
            && rule.args().as_ref().is_none_or(|a| a.is_empty());
        if !unconditional_allow {
            kept.push(rule);
            continue;
        }
        let (trap, rest): (Vec<String>, Vec<String>) = rule
            .names()
            .iter()
            .cloned()
            .partition(|n| TRAPPED.contains(&n.as_str()));
        moved.extend(trap);
        if !rest.is_empty() {
            let mut r = rule.clone();
            r.set_names(rest);
            kept.push(r);
        }
    }
    // A profile that allows everything by default traps the calls too.
    if s.default_action() == LinuxSeccompAction::ScmpActAllow {
        for t in TRAPPED {
            if !moved.iter().any(|m| m == t) {
                moved.push((*t).to_owned());
            }
        }
    }
    moved.sort();
    moved.dedup();
    if !moved.is_empty() {
        kept.push(
            LinuxSyscallBuilder::default()
                .names(moved)
                .action(LinuxSeccompAction::ScmpActNotify)
                .build()
                .expect("names and action set"),
        );
    }
    s.set_syscalls(Some(kept));
    s.set_listener_path(Some(listener.to_path_buf()));
    s.set_listener_metadata(Some(metadata.to_owned()));
    s
}

/// A filter for a container that has no seccomp profile (`--security-opt seccomp=unconfined`):
/// everything allowed except the trapped calls, which go to the listener.
pub fn unconfined_with_bypass(listener: &Path, metadata: &str) -> LinuxSeccomp {
    let base = oci_spec::runtime::LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .expect("default action set");
    with_bypass(&base, listener, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{default_profile, to_oci, Context};

    fn names_with(s: &LinuxSeccomp, action: LinuxSeccompAction) -> Vec<String> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.action() == action)
            .flat_map(|r| r.names().clone())
            .collect()
    }

    #[test]
    fn socket_calls_go_to_the_listener_and_the_rest_stays() {
        let ctx = Context {
            arch: "amd64".into(),
            native: None,
            caps: Default::default(),
            kernel: Some((6, 18)),
        };
        let base = to_oci(&default_profile(), &ctx);
        let s = with_bypass(&base, Path::new("/run/user/1/burrow/bypass.sock"), "{}");
        assert_eq!(
            names_with(&s, LinuxSeccompAction::ScmpActNotify),
            ["bind", "connect", "getpeername", "getsockname"]
        );
        let allowed = names_with(&s, LinuxSeccompAction::ScmpActAllow);
        assert!(!allowed.iter().any(|n| TRAPPED.contains(&n.as_str())));
        assert!(allowed.iter().any(|n| n == "accept4"));
        assert!(allowed.iter().any(|n| n == "listen"));
        assert_eq!(s.default_action(), base.default_action());
        assert_eq!(
            s.listener_path().as_deref(),
            Some(Path::new("/run/user/1/burrow/bypass.sock"))
        );
        assert_eq!(s.listener_metadata().as_deref(), Some("{}"));
        // Every other rule is untouched.
        let count = |x: &LinuxSeccomp| {
            x.syscalls()
                .as_ref()
                .unwrap()
                .iter()
                .map(|r| r.names().len())
                .sum::<usize>()
        };
        assert_eq!(count(&s), count(&base));
    }

    #[test]
    fn unconfined_traps_only_the_socket_calls() {
        let s = unconfined_with_bypass(Path::new("/l"), "m");
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            names_with(&s, LinuxSeccompAction::ScmpActNotify),
            ["bind", "connect", "getpeername", "getsockname"]
        );
    }
}
