//! Every path the setup tool reads or writes for one user, and the network it gives the namespace.

use std::path::{Path, PathBuf};

use crate::connection::{self, paths, Globals, UserEnv};

/// The first line of every file burrow writes, so uninstall and --force know what is ours.
pub const MARKER: &str = "# Managed by burrow setup install";

/// Why there is no layout for this user.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("burrow setup manages a rootless containerd and must run as the unprivileged user, not root (use `runuser -u USER -- burrow setup ...`)")]
    Root,
    #[error("XDG_RUNTIME_DIR is not set and /run/user/{uid} is not yours: export XDG_RUNTIME_DIR=/run/user/{uid} (as root: mkdir -m 0700 /run/user/{uid} && chown {uid} /run/user/{uid}), see docs/hpc.md")]
    NoRuntimeDir { uid: u32 },
    #[error("HOME is not set: burrow setup needs it for ~/.config and ~/.local")]
    NoHome,
}

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
    /// The Docker API's socket and its socket-activated units (`setup install --docker-api`).
    pub docker_socket: PathBuf,
    pub docker_socket_unit: PathBuf,
    pub docker_service_unit: PathBuf,
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
    /// The launcher's --detach-netns: containerd stays in the host's network namespace (so
    /// `--network host` is the node's network) and containers' networks live in a detached one.
    pub detach_netns: bool,
}

/// The network the launcher gives the rootless containerd's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    /// The layout of the current user, with the data root asked for ([`requested_data_root`]).
    pub fn current(g: &Globals) -> Result<Layout, LayoutError> {
        let env = UserEnv::current();
        Layout::new(&env, requested_data_root(g, &env).as_deref())
    }

    /// The layout of `env`'s user; `data_root` holds containerd's and burrow's data when given.
    pub fn new(env: &UserEnv, data_root: Option<&Path>) -> Result<Layout, LayoutError> {
        if env.euid == 0 {
            return Err(LayoutError::Root);
        }
        let Some(runtime_dir) = connection::effective_runtime_dir(env) else {
            return Err(LayoutError::NoRuntimeDir { uid: env.euid });
        };
        let (Some(home), Some(config_home), Some(data_home)) =
            (&env.home, &env.config_home, &env.data_home)
        else {
            return Err(LayoutError::NoHome);
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
            docker_socket: runtime_dir.join("burrow/docker.sock"),
            docker_socket_unit: config_home.join("systemd/user/burrow-docker.socket"),
            docker_service_unit: config_home.join("systemd/user/burrow-docker.service"),
            cni_dir: data_home.join("cni"),
            run_dir: runtime_dir.join("containerd"),
            net: NetDriver::default(),
            host_loopback: false,
            detach_netns: false,
        })
    }
}

/// The data root asked for: `--data-root`/BURROW_DATA_ROOT, else the one a previous install remembered.
pub fn requested_data_root(g: &Globals, env: &UserEnv) -> Option<PathBuf> {
    if let Some(d) = &g.data_root_flag {
        return Some(d.clone());
    }
    recorded_data_root(env).or_else(|| g.user_data_root.clone())
}

/// Whether an install of this user's is recorded in their burrow.toml without a data root: it
/// uses the default one, whatever the site's `user_data_root` says now (that applies to
/// installs made after it; an existing setup moves only by `setup install --data-root`).
pub fn installed_with_default_data_root(env: &UserEnv) -> bool {
    matches!(recorded(env), Some(None))
}

/// The data root a previous install recorded in the user's burrow.toml.
fn recorded_data_root(env: &UserEnv) -> Option<PathBuf> {
    recorded(env).flatten()
}

/// What the user's burrow.toml says of an install: None when no install wrote there; else the
/// data root it recorded, if any.
fn recorded(env: &UserEnv) -> Option<Option<PathBuf>> {
    let toml = env.config_home.as_ref()?.join("burrow/burrow.toml");
    let text = std::fs::read_to_string(toml).ok()?;
    if !text.contains(MARKER) {
        return None;
    }
    let cfg: crate::config::FileConfig = toml::from_str(&text).ok()?;
    Some(
        cfg.data_root.and_then(|d| {
            (d.file_name()? == "nerdctl").then(|| d.parent().map(Path::to_path_buf))?
        }),
    )
}

/// A user's environment for tests: uid 1000 with home /home/u.
#[cfg(test)]
pub(crate) fn example_env() -> UserEnv {
    UserEnv {
        euid: 1000,
        runtime_dir: Some("/run/user/1000".into()),
        home: Some("/home/u".into()),
        config_home: Some("/home/u/.config".into()),
        data_home: Some("/home/u/.local/share".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_nerdctl() {
        let l = Layout::new(&example_env(), None).unwrap();
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
        let l = Layout::new(&example_env(), Some(Path::new("/scratch/u"))).unwrap();
        assert_eq!(l.data_dir, Path::new("/scratch/u/containerd"));
        assert_eq!(
            l.cli_data_root.as_deref(),
            Some(Path::new("/scratch/u/nerdctl"))
        );
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
        assert!(matches!(Layout::new(&env, None), Err(LayoutError::Root)));
    }
}
