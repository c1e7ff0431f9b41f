//! The files rendered from a user's layout: the systemd user units, the supervised service's
//! marker, containerd's config and burrow.toml, and the launcher's command line.

use std::path::Path;

use super::layout::{Layout, NetDriver, MARKER};

/// The unit template shipped in systemd-user/.
pub const UNIT_TEMPLATE: &str = include_str!("../../systemd-user/containerd.service");

/// The bypass service's unit template.
pub const BYPASS_UNIT_TEMPLATE: &str = include_str!("../../systemd-user/burrow-bypass.service");

/// The Docker API's socket and service unit templates.
pub const DOCKER_SOCKET_TEMPLATE: &str = include_str!("../../systemd-user/burrow-docker.socket");
pub const DOCKER_SERVICE_TEMPLATE: &str = include_str!("../../systemd-user/burrow-docker.service");

/// Seconds the socket-activated Docker API service stays without a client before it ends.
pub const DOCKER_IDLE_SECS: u64 = 300;

impl Layout {
    /// The launcher command line (RootlessKit-compatible flags) followed by the child command.
    pub fn service_argv(&self, launcher: &Path, burrow: &Path, runtime: &str) -> Vec<String> {
        let mut argv = vec![launcher.display().to_string()];
        argv.extend(launcher_flags(
            &self.state_dir.display().to_string(),
            self.net,
            self.host_loopback,
            self.detach_netns,
        ));
        argv.push(burrow.display().to_string());
        argv.extend(self.child_flags(runtime));
        argv
    }

    /// `setup child` and its flags (paths as the host sees them).
    fn child_flags(&self, runtime: &str) -> Vec<String> {
        vec![
            "setup".into(),
            "child".into(),
            format!("--data-dir={}", self.data_dir.display()),
            format!("--containerd-config={}", self.containerd_config.display()),
            format!("--run-dir={}", self.run_dir.display()),
            format!("--cni-dir={}", self.cni_dir.display()),
            format!("--runtime={runtime}"),
        ]
    }

    /// The bypass service's command line.
    pub fn bypass_argv(&self, bypass: &Path) -> Vec<String> {
        vec![
            bypass.display().to_string(),
            format!("--socket={}", self.bypass_socket.display()),
        ]
    }

    /// The bypass service's systemd user unit, from its template.
    pub fn render_bypass_unit(&self, bypass: &Path) -> String {
        BYPASS_UNIT_TEMPLATE
            .replace(
                "@BYPASS@",
                &unit_quote(&bypass.display().to_string(), false),
            )
            .replace("@LOG@", &self.log.display().to_string().replace('%', "%%"))
            + &binaries_stamp(&[bypass])
    }

    /// The Docker API's socket unit.
    pub fn render_docker_socket_unit(&self) -> String {
        DOCKER_SOCKET_TEMPLATE.replace(
            "@SOCKET@",
            &self.docker_socket.display().to_string().replace('%', "%%"),
        )
    }

    /// The Docker API's service unit (started by the socket unit).
    pub fn render_docker_service_unit(&self, burrow: &Path) -> String {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        DOCKER_SERVICE_TEMPLATE
            .replace(
                "@BURROW@",
                &unit_quote(&burrow.display().to_string(), false),
            )
            .replace("@IDLE@", &DOCKER_IDLE_SECS.to_string())
            .replace("@LOG@", &self.log.display().to_string().replace('%', "%%"))
            .replace("@PATH@", &format!("\"PATH={}\"", path.replace('%', "%%")))
            + &binaries_stamp(&[burrow])
    }

    /// The Docker API's command line under the supervisor (always running: no socket activation).
    pub fn docker_api_argv(&self, burrow: &Path) -> Vec<String> {
        vec![
            burrow.display().to_string(),
            "system".into(),
            "service".into(),
            format!("--listen=unix://{}", self.docker_socket.display()),
            "--wait=60".into(),
        ]
    }

    /// The systemd user unit, from the template.
    pub fn render_unit(&self, launcher: &Path, burrow: &Path, runtime: &str) -> String {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let flags: Vec<String> = launcher_flags(
            "%t/containerd-rootless",
            self.net,
            self.host_loopback,
            self.detach_netns,
        )
        .iter()
        .map(|f| unit_quote(f, true))
        .collect();
        let child: Vec<String> = self
            .child_flags(runtime)
            .iter()
            .map(|f| unit_quote(f, false))
            .collect();
        UNIT_TEMPLATE
            .replace(
                "@LAUNCHER@",
                &unit_quote(&launcher.display().to_string(), false),
            )
            .replace("@LAUNCHER_FLAGS@", &flags.join(" "))
            .replace(
                "@BURROW@",
                &unit_quote(&burrow.display().to_string(), false),
            )
            .replace("@CHILD_FLAGS@", &child.join(" "))
            .replace("@LOG@", &self.log.display().to_string().replace('%', "%%"))
            .replace("@PATH@", &format!("\"PATH={}\"", path.replace('%', "%%")))
            + &binaries_stamp(&[launcher, burrow])
    }

    /// The supervised service's marker file: what `setup supervise` runs, and the binaries' stamp.
    pub fn render_supervise_marker(
        &self,
        launcher: &Path,
        burrow: &Path,
        runtime: &str,
        bypass: Option<&Path>,
        docker_api: bool,
    ) -> String {
        let mut text = format!(
            "{MARKER}: the supervised rootless containerd (no systemd).\n\
             # Start it (at login, e.g. from ~/.profile): {} setup supervise --background\n\
             launcher = \"{}\"\nruntime = \"{runtime}\"\nnet = \"{}\"\n",
            burrow.display(),
            launcher.display(),
            self.net.as_str()
        );
        if let Some(b) = bypass {
            text.push_str(&format!("bypass = \"{}\"\n", b.display()));
        }
        if self.host_loopback {
            text.push_str("host_loopback = true\n");
        }
        if self.detach_netns {
            text.push_str("detach_netns = true\n");
        }
        if docker_api {
            text.push_str("docker_api = true\n");
        }
        let mut bins: Vec<&Path> = vec![launcher, burrow];
        if let Some(b) = bypass {
            bins.push(b);
        }
        text.push_str(&binaries_stamp(&bins));
        text
    }
}

/// Quotes one word of a unit's command line: `%` escaped (unless specifiers are wanted), quotes when needed.
fn unit_quote(word: &str, specifiers: bool) -> String {
    let w = if specifiers {
        word.to_owned()
    } else {
        word.replace('%', "%%")
    };
    if w.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\' || c == '\'' || c == '$')
    {
        let escaped = w
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "$$");
        format!("\"{escaped}\"")
    } else {
        w
    }
}

/// A comment line naming the binaries a service runs with their size and modification time: a
/// rebuilt or upgraded binary changes the unit, so `setup install` restarts the service on it.
pub fn binaries_stamp(paths: &[&Path]) -> String {
    use std::os::unix::fs::MetadataExt;
    let parts: Vec<String> = paths
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) => format!("{} {} {}", p.display(), m.len(), m.mtime()),
            Err(_) => format!("{} (missing)", p.display()),
        })
        .collect();
    format!(
        "# binaries (a change restarts the service): {}\n",
        parts.join("; ")
    )
}

/// The launcher flags of the unit, for a state dir and network driver; the host's loopback is
/// out of the containers' reach unless `host_loopback`; with `detach_netns` containerd stays in
/// the host's network namespace.
pub fn launcher_flags(
    state_dir: &str,
    net: NetDriver,
    host_loopback: bool,
    detach_netns: bool,
) -> Vec<String> {
    let state = format!("--state-dir={state_dir}");
    let net_flags: &[&str] = match net {
        NetDriver::Builtin => &["--net=builtin", "--mtu=65520"],
        NetDriver::Slirp4netns => &[
            "--net=slirp4netns",
            "--mtu=65520",
            "--slirp4netns-sandbox=auto",
            "--slirp4netns-seccomp=auto",
        ],
    };
    let loopback: &[&str] = if host_loopback {
        &[]
    } else {
        &["--disable-host-loopback"]
    };
    let detach: &[&str] = if detach_netns {
        &["--detach-netns"]
    } else {
        &[]
    };
    std::iter::once(state.as_str())
        .chain(net_flags.iter().copied())
        .chain(loopback.iter().copied())
        .chain(detach.iter().copied())
        .chain([
            "--port-driver=builtin",
            "--copy-up=/etc",
            "--copy-up=/run",
            "--copy-up=/var/lib",
            "--propagation=rslave",
        ])
        .map(|s| s.to_string())
        .collect()
}

/// containerd's config for rootless use, paths as the child sees them (the user's dirs are bound
/// there). `squash_owners_with`: the burrow binary, when the user has no
/// subordinate ids: layers then pass through `burrow internal layer-squash`, which gives every
/// file to the user (the only id their namespace maps) before containerd unpacks them.
pub fn render_containerd_config(squash_owners_with: Option<&Path>) -> String {
    let mut config = format!(
        r#"{MARKER}: rootless containerd inside burrow-rootlesskit.
# `burrow setup child` binds the user's dirs over these paths inside the launcher:
#   $XDG_RUNTIME_DIR/containerd -> /run/containerd, containerd data -> /var/lib/containerd,
#   ~/.config/containerd -> /etc/containerd, $XDG_DATA_HOME/cni -> /var/lib/cni.
# The snapshotter and cgroup manager are chosen by the client (~/.config/burrow/burrow.toml);
# runc runs with cgroupfs semantics, and without cgroups at all where none are delegated (cgroup v1).
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
# CRI is for Kubernetes; it is not used by burrow and would only log errors here.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "/run/containerd/containerd.sock"

[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"
"#
    );
    if let Some(burrow) = squash_owners_with {
        let accepts: Vec<String> = crate::images::owners::ACCEPTS
            .iter()
            .map(|m| format!("{m:?}"))
            .collect();
        config.push_str(&format!(
            r#"
# No subordinate ids: the namespace maps one id, so every layer file is given to it on unpack.
[stream_processors]
  [stream_processors."io.burrow.layer-squash"]
    accepts = [{}]
    returns = {:?}
    path = {:?}
    args = [{}]
"#,
            accepts.join(", "),
            crate::images::owners::RETURNS,
            burrow.display().to_string(),
            crate::selfexec::Helper::LayerSquash
                .args()
                .iter()
                .map(|a| format!("{:?}", a.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::layout::example_env;

    fn layout() -> Layout {
        Layout::new(&example_env(), None).unwrap()
    }

    #[test]
    fn unit_has_the_launcher_flags_and_the_child() {
        let unit = layout().render_unit(
            Path::new("/opt/bin/burrow-rootlesskit"),
            Path::new("/opt/bin/burrow"),
            "runc",
        );
        assert!(unit.starts_with(MARKER));
        assert!(!unit.contains('@'), "unfilled placeholder in:\n{unit}");
        assert!(unit.contains("--net=builtin"));
        for flag in launcher_flags("%t/containerd-rootless", NetDriver::Builtin, false, false) {
            assert!(unit.contains(&flag), "{flag} missing");
        }
        assert!(unit
            .contains("ExecStart=/opt/bin/burrow-rootlesskit --state-dir=%t/containerd-rootless"));
        assert!(unit.contains("/opt/bin/burrow setup child --data-dir=/home/u/.local/share/containerd --containerd-config=/home/u/.config/containerd/config.toml --run-dir=/run/user/1000/containerd --cni-dir=/home/u/.local/share/cni --runtime=runc"));
        assert!(unit.contains("Restart=always"));
        assert!(unit.contains("Delegate=yes"));
        assert!(unit.contains("--disable-host-loopback"));
        let mut open = layout();
        open.host_loopback = true;
        let unit = open.render_unit(
            Path::new("/opt/bin/burrow-rootlesskit"),
            Path::new("/opt/bin/burrow"),
            "runc",
        );
        assert!(!unit.contains("--disable-host-loopback"), "{unit}");
    }

    #[test]
    fn a_changed_binary_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("burrow-bypass");
        std::fs::write(&bin, b"one").unwrap();
        let before = binaries_stamp(&[&bin]);
        assert!(before.starts_with("# binaries") && before.contains("burrow-bypass 3 "));
        std::fs::write(&bin, b"longer").unwrap();
        assert_ne!(binaries_stamp(&[&bin]), before);
        assert!(binaries_stamp(&[&dir.path().join("gone")]).contains("(missing)"));
    }

    #[test]
    fn unit_words_are_quoted() {
        assert_eq!(unit_quote("/a b/c", false), "\"/a b/c\"");
        assert_eq!(unit_quote("/a%b", false), "/a%%b");
        assert_eq!(unit_quote("--state-dir=%t/x", true), "--state-dir=%t/x");
        assert_eq!(unit_quote("/x:$y", false), "\"/x:$$y\"");
    }

    #[test]
    fn the_supervise_marker_records_the_choices() {
        let mut l = layout();
        l.net = NetDriver::Slirp4netns;
        l.host_loopback = true;
        let text = l.render_supervise_marker(
            Path::new("/opt/bin/burrow-rootlesskit"),
            Path::new("/opt/bin/burrow"),
            "crun",
            Some(Path::new("/opt/bin/burrow-bypass")),
            true,
        );
        assert!(text.starts_with(MARKER));
        for line in [
            "launcher = \"/opt/bin/burrow-rootlesskit\"",
            "runtime = \"crun\"",
            "net = \"slirp4netns\"",
            "bypass = \"/opt/bin/burrow-bypass\"",
            "host_loopback = true",
            "docker_api = true",
        ] {
            assert!(
                text.lines().any(|x| x == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.ends_with('\n') && text.contains("# binaries"));
    }

    #[test]
    fn the_docker_api_units_activate_the_service_on_its_socket() {
        let l = layout();
        let sock = l.render_docker_socket_unit();
        assert!(sock.starts_with(MARKER), "{sock}");
        assert!(
            sock.lines()
                .any(|x| x == "ListenStream=/run/user/1000/burrow/docker.sock"),
            "{sock}"
        );
        assert!(sock.contains("SocketMode=0600"), "{sock}");
        let svc = l.render_docker_service_unit(Path::new("/opt/my bin/burrow"));
        assert!(svc.starts_with(MARKER), "{svc}");
        assert!(
            svc.contains("ExecStart=\"/opt/my bin/burrow\" system service --timeout=300"),
            "{svc}"
        );
        assert!(svc.contains("Requires=burrow-docker.socket"), "{svc}");
    }

    #[test]
    fn containerd_config_is_valid_toml() {
        let v: toml::Table = toml::from_str(&render_containerd_config(None)).unwrap();
        assert_eq!(v["version"].as_integer(), Some(2));
        assert!(v.get("stream_processors").is_none());
        let v: toml::Table = toml::from_str(&render_containerd_config(Some(Path::new(
            "/opt/b u/burrow",
        ))))
        .unwrap();
        let p = &v["stream_processors"]["io.burrow.layer-squash"];
        assert_eq!(p["path"].as_str(), Some("/opt/b u/burrow"));
        assert_eq!(
            p["returns"].as_str(),
            Some("application/vnd.oci.image.layer.v1.tar")
        );
        assert!(p["accepts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str() == Some("application/vnd.docker.image.rootfs.diff.tar.gzip")));
    }
}
