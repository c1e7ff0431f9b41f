//! `run --bypass`: the container's connects to the outside go to burrow-bypass through seccomp user notification.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use oci_spec::runtime::Spec;
use serde_json::Value;

use crate::connection::{self, Endpoint, Mode, UserEnv};

/// nerdctl's way to ask for bypass4netns, accepted as a label or annotation.
pub const NERDCTL_KEY: &str = "nerdctl/bypass4netns";

/// True when `--bypass` was given or a label or annotation says `nerdctl/bypass4netns=true`.
pub fn wanted(
    flag: bool,
    labels: &std::collections::BTreeMap<String, String>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> bool {
    flag || [labels, annotations].iter().any(|m| {
        m.get(NERDCTL_KEY)
            .is_some_and(|v| matches!(v.as_str(), "true" | "1"))
    })
}

/// The service's socket: `$XDG_RUNTIME_DIR/burrow/bypass.sock`.
pub fn socket_path() -> Option<PathBuf> {
    connection::effective_runtime_dir(&UserEnv::current()).map(|d| d.join("burrow/bypass.sock"))
}

/// Refuses what bypass cannot do here, before anything is created; returns the listener path.
pub fn prepare(ep: &Endpoint, network: &str) -> anyhow::Result<PathBuf> {
    if ep.mode == Mode::Rootful {
        bail!(
            "--bypass is for rootless containers: rootful containers already use the kernel's network \
             stack directly, with no userspace stack to bypass (use --network host to share the host's sockets)"
        );
    }
    if matches!(network, "none" | "host") {
        bail!("--bypass needs a container network (it has nothing to bypass with --network {network})");
    }
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    if burrow_seccomp::convert::parse_kernel(&kernel).is_some_and(|v| v < (5, 9)) {
        bail!("--bypass needs seccomp user notification with ADDFD (Linux 5.9 or newer); this kernel is {kernel}");
    }
    let Some(path) = socket_path() else {
        bail!("--bypass: XDG_RUNTIME_DIR is not set, so the bypass service's socket cannot be found (see docs/hpc.md)");
    };
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        bail!(
            "--bypass: the bypass service is not running (nothing listens on {}); start it with `burrow setup install --bypass`",
            path.display()
        );
    }
    Ok(path)
}

/// The policy facts the service needs (burrow-bypass's `Metadata`, as JSON): the container's
/// networks, the launcher's gateway, and the published TCP ports the service binds on the host.
pub fn metadata(
    ep: &Endpoint,
    networks: &[(String, Value)],
    ports: &[crate::network::ports::PortMapping],
) -> String {
    let mut nets: Vec<String> = Vec::new();
    for (_, conf) in networks {
        nets.extend(crate::network::conf_subnets(conf));
    }
    let (launcher_net, gateway) = launcher_network(ep);
    nets.extend(launcher_net);
    let published: Vec<Value> = ports
        .iter()
        .filter(|p| p.protocol == "tcp")
        .filter_map(|p| {
            let ip: IpAddr = p.host_ip.parse().ok()?;
            Some(serde_json::json!({
                "host_ip": ip,
                "host_port": p.host_port,
                "container_port": p.container_port,
            }))
        })
        .collect();
    serde_json::json!({
        "networks": nets,
        "gateway": gateway,
        "host_loopback": gateway.is_some() && !launcher_disables_host_loopback(ep),
        "ports": published,
        "launcher_api": ep.launcher.as_ref().map(|l| l.api_socket.clone()),
    })
    .to_string()
}

/// The launcher's network (its child's /24) and gateway (.2), from its API.
fn launcher_network(ep: &Endpoint) -> (Option<String>, Option<IpAddr>) {
    let Some(l) = &ep.launcher else {
        return (None, None);
    };
    let info = burrow_rootlesskit::api::client::Client::new(&l.api_socket).info();
    let child = info
        .ok()
        .and_then(|i| i.network_driver)
        .and_then(|n| n.child_ip);
    match child {
        Some(IpAddr::V4(c)) => {
            let o = c.octets();
            (
                Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2])),
                Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 2))),
            )
        }
        _ => (None, None),
    }
}

/// Whether the launcher runs with `--disable-host-loopback` (its command line, by the child's parent).
fn launcher_disables_host_loopback(ep: &Endpoint) -> bool {
    let Some(l) = &ep.launcher else { return true };
    let ppid = std::fs::read_to_string(format!("/proc/{}/status", l.child_pid))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|x| x.strip_prefix("PPid:"))
                .and_then(|v| v.trim().parse::<i32>().ok())
        });
    let Some(ppid) = ppid else { return true };
    std::fs::read(format!("/proc/{ppid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .any(|a| a == b"--disable-host-loopback")
        })
        .unwrap_or(true)
}

/// Puts the bypass filter into the spec: the container's own seccomp rules with connect sent to the listener.
pub fn apply(spec: &mut Spec, listener: &Path, metadata: &str) -> anyhow::Result<()> {
    let linux = spec
        .linux_mut()
        .as_mut()
        .context("the container spec has no linux section")?;
    let filter = match linux.seccomp() {
        Some(s) => burrow_seccomp::bypass::with_bypass(s, listener, metadata),
        None => burrow_seccomp::bypass::unconfined_with_bypass(listener, metadata),
    };
    linux.set_seccomp(Some(filter));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_ask_for_bypass_as_nerdctl_does() {
        let m = |kv: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(wanted(true, &m(&[]), &m(&[])));
        assert!(wanted(false, &m(&[(NERDCTL_KEY, "true")]), &m(&[])));
        assert!(wanted(false, &m(&[]), &m(&[(NERDCTL_KEY, "1")])));
        assert!(!wanted(
            false,
            &m(&[(NERDCTL_KEY, "false"), ("x", "y")]),
            &m(&[])
        ));
    }

    #[test]
    fn rootful_and_networkless_containers_are_refused_with_the_reason() {
        let ep = Endpoint {
            mode: Mode::Rootful,
            socket: "/run/containerd/containerd.sock".into(),
            namespace: "default".into(),
            launcher: None,
            data_root: "/var/lib/nerdctl".into(),
            snapshotter: "overlayfs".into(),
            cgroup_manager: "cgroupfs".into(),
        };
        let err = prepare(&ep, "bridge").unwrap_err().to_string();
        assert!(
            err.contains("rootless containers") && err.contains("--network host"),
            "{err}"
        );
        let ep = Endpoint {
            mode: Mode::Rootless,
            ..ep
        };
        let err = prepare(&ep, "none").unwrap_err().to_string();
        assert!(err.contains("needs a container network"), "{err}");
    }

    #[test]
    fn subnets_come_from_the_conflist() {
        let conf = serde_json::json!({"plugins":[{"type":"bridge","ipam":{"ranges":[[{"subnet":"10.4.0.0/24","gateway":"10.4.0.1"}]]}}]});
        assert_eq!(crate::network::conf_subnets(&conf), ["10.4.0.0/24"]);
    }
}
