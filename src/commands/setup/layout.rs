//! Every path the setup tool reads or writes for one user, and the files it renders.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use burrow::connection::{self, paths, UserEnv};

/// The first line of every file burrow writes, so uninstall and --force know what is ours.
pub const MARKER: &str = "# Managed by burrow setup install";

/// The unit template shipped in systemd-user/.
pub const UNIT_TEMPLATE: &str = include_str!("../../../systemd-user/containerd.service");

/// The bypass service's unit template.
pub const BYPASS_UNIT_TEMPLATE: &str = include_str!("../../../systemd-user/burrow-bypass.service");

/// Where the rootless setup of this user lives.
#[derive(Debug, Clone)]
pub struct Layout {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub containerd_config: PathBuf,
    pub unit: PathBuf,
    pub burrow_toml: PathBuf,
    /// containerd's root (images, snapshots): `$XDG_DATA_HOME/containerd` or `--data-root`/containerd.
    pub data_dir: PathBuf,
    /// The CLI's data root written to burrow.toml when `--data-root` is given.
    pub cli_data_root: Option<PathBuf>,
    pub log: PathBuf,
    pub supervise_pid: PathBuf,
    /// The socket-bypass service's unit and socket.
    pub bypass_unit: PathBuf,
    pub bypass_socket: PathBuf,
    /// Present while the supervised (no-systemd) service is installed.
    pub supervise_marker: PathBuf,
    /// `$XDG_DATA_HOME/cni`: IP allocations of the namespace's networks.
    pub cni_dir: PathBuf,
    /// containerd's runtime state: `$XDG_RUNTIME_DIR/containerd` (bound over /run/containerd).
    pub run_dir: PathBuf,
    /// The launcher's network driver: builtin (the embedded stack) or slirp4netns.
    pub net: NetDriver,
    /// Whether containers reach the host's loopback at the gateway (no --disable-host-loopback).
    pub host_loopback: bool,
}

/// The network the launcher gives the rootless containerd's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum NetDriver {
    /// burrow's embedded userspace stack (no external program).
    #[default]
    Builtin,
    /// The slirp4netns program.
    Slirp4netns,
}

impl NetDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            NetDriver::Builtin => "builtin",
            NetDriver::Slirp4netns => "slirp4netns",
        }
    }

    pub fn parse(s: &str) -> Option<NetDriver> {
        match s {
            "builtin" => Some(NetDriver::Builtin),
            "slirp4netns" => Some(NetDriver::Slirp4netns),
            _ => None,
        }
    }
}

impl Layout {
    pub fn new(env: &UserEnv, data_root: Option<&Path>) -> anyhow::Result<Layout> {
        if env.euid == 0 {
            bail!("burrow setup manages a rootless containerd and must run as the unprivileged user, not root (use `runuser -u USER -- burrow setup ...`)");
        }
        let Some(runtime_dir) = connection::effective_runtime_dir(env) else {
            bail!(
                "XDG_RUNTIME_DIR is not set and /run/user/{uid} is not yours: export XDG_RUNTIME_DIR=/run/user/{uid} (as root: mkdir -m 0700 /run/user/{uid} && chown {uid} /run/user/{uid}), see docs/hpc.md",
                uid = env.euid
            );
        };
        let (Some(home), Some(config_home), Some(data_home)) =
            (&env.home, &env.config_home, &env.data_home)
        else {
            bail!("HOME is not set: burrow setup needs it for ~/.config and ~/.local");
        };
        let state_home = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".local/state"));
        Ok(Layout {
            state_dir: paths::launcher_state_dir(&runtime_dir),
            socket: paths::rootless_socket(&runtime_dir),
            containerd_config: config_home.join("containerd/config.toml"),
            unit: config_home.join("systemd/user/containerd.service"),
            burrow_toml: config_home.join("burrow/burrow.toml"),
            data_dir: data_root
                .map(|d| d.join("containerd"))
                .unwrap_or_else(|| data_home.join("containerd")),
            cli_data_root: data_root.map(|d| d.join("nerdctl")),
            log: state_home.join("burrow/containerd.log"),
            supervise_pid: runtime_dir.join("burrow/supervise.pid"),
            supervise_marker: config_home.join("burrow/supervised-service"),
            bypass_unit: config_home.join("systemd/user/burrow-bypass.service"),
            bypass_socket: runtime_dir.join("burrow/bypass.sock"),
            cni_dir: data_home.join("cni"),
            run_dir: runtime_dir.join("containerd"),
            net: NetDriver::default(),
            host_loopback: false,
        })
    }

    /// The launcher command line (RootlessKit-compatible flags) followed by the child command.
    pub fn service_argv(&self, launcher: &Path, burrow: &Path, runtime: &str) -> Vec<String> {
        let mut argv = vec![launcher.display().to_string()];
        argv.extend(launcher_flags(
            &self.state_dir.display().to_string(),
            self.net,
            self.host_loopback,
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

    /// The systemd user unit, from the template.
    pub fn render_unit(&self, launcher: &Path, burrow: &Path, runtime: &str) -> String {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let flags: Vec<String> =
            launcher_flags("%t/containerd-rootless", self.net, self.host_loopback)
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
/// out of the containers' reach unless `host_loopback`.
pub fn launcher_flags(state_dir: &str, net: NetDriver, host_loopback: bool) -> Vec<String> {
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
    std::iter::once(state.as_str())
        .chain(net_flags.iter().copied())
        .chain(loopback.iter().copied())
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

/// containerd's config for rootless use. Paths are as the child sees them (the user's dirs are bound there).
/// containerd's config. `squash_owners_with`: the burrow binary, when the user has no
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
        let accepts: Vec<String> = burrow::images::owners::ACCEPTS
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
    args = ["internal", "layer-squash"]
"#,
            accepts.join(", "),
            burrow::images::owners::RETURNS,
            burrow.display().to_string(),
        ));
    }
    config
}

/// burrow.toml defaults chosen by the install.
pub fn render_burrow_toml(
    snapshotter: &str,
    cgroup_manager: &str,
    data_root: Option<&Path>,
) -> String {
    let mut s = format!(
        "{MARKER}: defaults chosen by `burrow setup check` for this host.\nsnapshotter = \"{snapshotter}\"\ncgroup_manager = \"{cgroup_manager}\"\n"
    );
    if let Some(d) = data_root {
        s.push_str(&format!("data_root = \"{}\"\n", d.display()));
    }
    s
}

/// True when a file exists and was not written by burrow.
pub fn foreign(path: &Path) -> anyhow::Result<bool> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(!t.contains(MARKER)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// This burrow binary's path, also when it was replaced on disk while running (an upgrade):
/// the kernel then reports "PATH (deleted)" and the new file at PATH is used.
pub fn burrow_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find the burrow binary's path")?;
    if me.exists() {
        return Ok(std::fs::canonicalize(&me).unwrap_or(me));
    }
    let text = me.display().to_string();
    match text.strip_suffix(" (deleted)").map(PathBuf::from) {
        Some(p) if p.exists() => Ok(p),
        _ => anyhow::bail!(
            "the running burrow binary {} no longer exists: run the installed burrow again",
            text
        ),
    }
}

/// The launcher binary: `--launcher`, else burrow-rootlesskit next to this binary, else on PATH.
pub fn find_launcher(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    find_sibling("burrow-rootlesskit", "--launcher", explicit)
}

/// The bypass service: `--bypass-binary`, else burrow-bypass next to this binary, else on PATH.
pub fn find_bypass(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    find_sibling("burrow-bypass", "--bypass-binary", explicit)
}

/// One of burrow's programs: as given, else next to this binary, else on PATH.
fn find_sibling(name: &str, flag: &str, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return absolute_program(p);
    }
    let me = burrow_exe()?;
    if let Some(dir) = me.parent() {
        let sibling = dir.join(name);
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    which(name).ok_or_else(|| {
        anyhow::anyhow!(
            "{name} was not found next to {} nor on PATH: install it with ./install.sh (or pass {flag} PATH)",
            me.display()
        )
    })
}

fn absolute_program(p: &Path) -> anyhow::Result<PathBuf> {
    if p.components().count() > 1 {
        return std::fs::canonicalize(p)
            .with_context(|| format!("launcher {} not found", p.display()));
    }
    which(&p.display().to_string())
        .ok_or_else(|| anyhow::anyhow!("launcher {} not found on PATH", p.display()))
}

/// Looks a program up on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let env = UserEnv {
            euid: 1000,
            runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/u".into()),
            config_home: Some("/home/u/.config".into()),
            data_home: Some("/home/u/.local/share".into()),
        };
        Layout::new(&env, None).unwrap()
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
        for flag in launcher_flags("%t/containerd-rootless", NetDriver::Builtin, false) {
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
    fn paths_follow_nerdctl() {
        let l = layout();
        assert_eq!(
            l.socket,
            Path::new("/run/user/1000/containerd/containerd.sock")
        );
        assert_eq!(l.state_dir, Path::new("/run/user/1000/containerd-rootless"));
        assert_eq!(
            l.unit,
            Path::new("/home/u/.config/systemd/user/containerd.service")
        );
    }

    #[test]
    fn data_root_moves_images() {
        let env = UserEnv {
            euid: 1000,
            runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/u".into()),
            config_home: Some("/home/u/.config".into()),
            data_home: Some("/home/u/.local/share".into()),
        };
        let l = Layout::new(&env, Some(Path::new("/scratch/u"))).unwrap();
        assert_eq!(l.data_dir, Path::new("/scratch/u/containerd"));
        let t = render_burrow_toml("overlayfs", "none", l.cli_data_root.as_deref());
        let parsed: burrow::config::FileConfig = toml::from_str(&t).unwrap();
        assert_eq!(
            parsed.data_root.as_deref(),
            Some(Path::new("/scratch/u/nerdctl"))
        );
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

    #[test]
    fn root_is_refused() {
        let env = UserEnv {
            euid: 0,
            runtime_dir: None,
            home: None,
            config_home: None,
            data_home: None,
        };
        assert!(Layout::new(&env, None).is_err());
    }
}
