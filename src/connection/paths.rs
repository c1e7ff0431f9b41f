//! Where things live for the current user: XDG dirs and the nerdctl-compatible rootless paths.

use std::path::{Path, PathBuf};

/// The user's environment as far as connection and setup need it (injectable for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEnv {
    pub euid: u32,
    /// `$XDG_RUNTIME_DIR` when set and absolute.
    pub runtime_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub config_home: Option<PathBuf>,
    pub data_home: Option<PathBuf>,
}

impl UserEnv {
    /// Reads the process environment.
    pub fn current() -> UserEnv {
        let abs = |k: &str| {
            std::env::var_os(k)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let home = abs("HOME");
        UserEnv {
            euid: nix::unistd::geteuid().as_raw(),
            runtime_dir: abs("XDG_RUNTIME_DIR"),
            config_home: abs("XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config"))),
            data_home: abs("XDG_DATA_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".local/share"))),
            home,
        }
    }

    /// `/run/user/UID`, the runtime dir systemd-logind would have set.
    pub fn conventional_runtime_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/user/{}", self.euid))
    }
}

/// The rootful containerd socket.
pub const ROOTFUL_SOCKET: &str = "/run/containerd/containerd.sock";

/// The launcher's state dir: `RUNTIME/containerd-rootless`.
pub fn launcher_state_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("containerd-rootless")
}

/// Rootless containerd's socket: `RUNTIME/containerd/containerd.sock`.
pub fn rootless_socket(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("containerd/containerd.sock")
}

/// The CLI's own data (nerdctl's layout): `DATA/nerdctl` rootless, `/var/lib/nerdctl` rootful.
pub fn default_data_root(rootless: bool, env: &UserEnv) -> PathBuf {
    match (&env.data_home, rootless) {
        (Some(d), true) => d.join("nerdctl"),
        _ => PathBuf::from("/var/lib/nerdctl"),
    }
}
