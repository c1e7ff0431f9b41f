//! Which containerd every command uses: the daemon (rootless or rootful), its socket, namespace,
//! data root and launcher, and entering the launcher's namespaces. [`crate::client`] connects to it.

pub mod launcher;
pub mod ns;
pub mod paths;

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, ConfigError, FileConfig};
pub use paths::UserEnv;

/// The global flags after flags, environment and burrow.toml were merged (flag > env > file > default).
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// `--address` / `CONTAINERD_ADDRESS`: a containerd socket; skips detection.
    pub address: Option<PathBuf>,
    /// `-n/--namespace` / `CONTAINERD_NAMESPACE`, default "default".
    pub namespace: String,
    /// `--data-root` / `BURROW_DATA_ROOT`: the CLI's own state (default as nerdctl).
    pub data_root: Option<PathBuf>,
    /// `--data-root` / `BURROW_DATA_ROOT` as given on the command line or in the environment
    /// (not from burrow.toml): `burrow setup` reads it as the parent of containerd's and burrow's data.
    pub data_root_flag: Option<PathBuf>,
    /// `--debug` / `BURROW_DEBUG`.
    pub debug: bool,
    /// `--snapshotter` / `CONTAINERD_SNAPSHOTTER`, default "overlayfs".
    pub snapshotter: String,
    /// `--cgroup-manager` / `BURROW_CGROUP_MANAGER` (systemd, cgroupfs, none); None: decided per mode.
    pub cgroup_manager: Option<String>,
    /// burrow.toml's `cdi_spec_dirs` (`BURROW_CDI_SPEC_DIRS` wins over it; see
    /// [`crate::devices::cdi::spec_dirs`]).
    pub cdi_spec_dirs: Option<Vec<PathBuf>>,
    /// The site's `user_data_root` for this user (filled in): the base of a rootless setup's
    /// data when neither `--data-root` nor the user's own install chose one.
    pub user_data_root: Option<PathBuf>,
}

/// What the user passed on the command line or in the environment (None: not given).
#[derive(Debug, Clone, Default)]
pub struct RawGlobals {
    pub config: Option<PathBuf>,
    pub address: Option<PathBuf>,
    pub namespace: Option<String>,
    pub data_root: Option<PathBuf>,
    pub debug: bool,
    pub snapshotter: Option<String>,
    pub cgroup_manager: Option<String>,
}

impl Globals {
    /// Merges flags/env with burrow.toml (the default file for this user, or `--config`).
    pub fn load(raw: RawGlobals, env: &UserEnv) -> Result<Globals, ConfigError> {
        // A Slurm job keeps everything in its own dir (deleted with the job).
        let in_job = crate::slurm::Job::current().is_some();
        let own = match &raw.config {
            Some(p) => Some((config::load(p, true)?, p.clone())),
            // In a job, the user's own file (the job's XDG_CONFIG_HOME is the job's dir), but
            // not where it points at a containerd: the job runs its own.
            None if in_job => match crate::slurm::user_config_home()
                .and_then(|c| config::default_path(env.euid, Some(&c)))
            {
                Some(p) => Some((config::load(&p, false)?.without_endpoint(), p)),
                None => None,
            },
            None => match config::default_path(env.euid, env.config_home.as_deref()) {
                Some(p) => Some((config::load(&p, false)?, p)),
                None => None,
            },
        };
        let site_path = config::site_path();
        let file = match own {
            // Root's own file is the site's.
            Some((f, p)) if p == site_path => f,
            Some((f, p)) => {
                config::merge_site(config::load(&site_path, false)?, &site_path, f, &p)?
            }
            None => config::load(&site_path, false)?,
        };
        config::set_defaults(file.container_defaults());
        let user_data_root = match (&file.user_data_root, env.euid) {
            (Some(t), uid)
                if uid != 0
                    && !in_job
                    && !crate::setup::layout::installed_with_default_data_root(env) =>
            {
                let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| uid.to_string());
                let tmp = std::env::var("TMPDIR").ok();
                config::expand_user_data_root(t, &name, uid, tmp.as_deref())
            }
            _ => None,
        };
        let mut g = Globals::merge(raw, file);
        if g.data_root.is_none() {
            g.data_root = user_data_root.as_ref().map(|d| d.join("nerdctl"));
        }
        g.user_data_root = user_data_root;
        Ok(g)
    }

    fn merge(raw: RawGlobals, file: FileConfig) -> Globals {
        Globals {
            address: raw.address.or(file.address),
            namespace: raw
                .namespace
                .or(file.namespace)
                .unwrap_or_else(|| "default".to_owned()),
            data_root_flag: raw.data_root.clone(),
            data_root: raw.data_root.or(file.data_root),
            debug: raw.debug || file.debug.unwrap_or(false),
            snapshotter: raw
                .snapshotter
                .or(file.snapshotter)
                .unwrap_or_else(|| "overlayfs".to_owned()),
            cgroup_manager: raw.cgroup_manager.or(file.cgroup_manager),
            cdi_spec_dirs: file.cdi_spec_dirs,
            user_data_root: None,
        }
    }
}

/// Whether the daemon runs in the user's launcher or is the system's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Rootless,
    Rootful,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Rootless => "rootless",
            Mode::Rootful => "rootful",
        })
    }
}

/// The user-namespace launcher that hosts a rootless containerd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LauncherInfo {
    /// `$XDG_RUNTIME_DIR/containerd-rootless`.
    pub state_dir: PathBuf,
    /// The pid in `child_pid`: the process whose namespaces containerd runs in.
    pub child_pid: i32,
    /// The launcher's REST API (`api.sock`).
    pub api_socket: PathBuf,
}

impl LauncherInfo {
    /// With `--detach-netns`: the network namespace containers are networked in, as a path
    /// inside the launcher's mount namespace (containerd itself runs in the host's network).
    /// Looked up when asked (creating a container), not on every CLI start.
    pub fn detached_netns(&self) -> Option<PathBuf> {
        ns::detached_netns(self.child_pid)
    }

    /// Whether the launcher's user namespace maps a single id (its user has no subordinate
    /// ids): then no file or process in it can belong to any other uid or gid.
    pub fn single_id(&self) -> bool {
        let path = format!("/proc/{}/uid_map", self.child_pid);
        std::fs::read_to_string(path).is_ok_and(|m| is_single_id_map(&m))
    }
}

/// Whether a /proc/PID/uid_map (or gid_map) maps exactly one id.
pub fn is_single_id_map(map: &str) -> bool {
    let total: u64 = map
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum();
    total == 1
}

/// A resolved containerd endpoint and what commands need to talk to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub mode: Mode,
    pub socket: PathBuf,
    pub namespace: String,
    pub launcher: Option<LauncherInfo>,
    /// The CLI's own state dir (nerdctl layout).
    pub data_root: PathBuf,
    pub snapshotter: String,
    /// systemd, cgroupfs or none (no cgroupsPath/resources in specs).
    pub cgroup_manager: String,
}

/// Why no daemon could be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{}", nothing_reachable_message(.tried, .runtime_dir_unset, *.euid))]
    NothingReachable {
        tried: Vec<(PathBuf, String)>,
        runtime_dir_unset: bool,
        euid: u32,
    },
    #[error("invalid containerd namespace {0:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadNamespace(String),
    #[error("cannot read the launcher's pid from {path}: {reason} (is the rootless containerd starting? see `burrow setup status`)")]
    BadChildPid { path: PathBuf, reason: String },
    #[error("this containerd is not rootless: there are no launcher namespaces to enter")]
    NotRootless,
    #[error(
        "cannot open {path}: {source} (is the launcher still running? see `burrow setup status`)"
    )]
    OpenNs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot enter the namespace {path}: {errno} (this must happen before any thread starts)"
    )]
    Setns { path: PathBuf, errno: nix::Error },
}

fn nothing_reachable_message(
    tried: &[(PathBuf, String)],
    runtime_dir_unset: &bool,
    euid: u32,
) -> String {
    let mut s = String::from("no containerd is reachable; tried:");
    for (path, why) in tried {
        s.push_str(&format!("\n  {}: {}", path.display(), why));
    }
    if *runtime_dir_unset {
        s.push_str(&format!(
            "\nXDG_RUNTIME_DIR is not set (as after su or ssh without a login session): \
             `export XDG_RUNTIME_DIR=/run/user/{euid}` if that directory exists, else see docs/hpc.md"
        ));
    }
    if euid == 0 {
        s.push_str("\nto fix: start the system containerd (`systemctl start containerd`, or `containerd &`), or pass --address SOCKET");
    } else {
        s.push_str("\nto fix: run `burrow setup install` to set up a rootless containerd for this user (`burrow setup check` lists what is missing)");
    }
    s
}

/// Checks a containerd namespace name as containerd does (`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`).
pub fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 76
        && ns
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Picks the daemon by issue 4's rules from the real environment; sync and cheap.
pub fn resolve(g: &Globals) -> Result<Endpoint, ConnectError> {
    resolve_in(g, &UserEnv::current(), &probe_socket)
}

/// `probe` says why a socket is not usable (None: it accepted a connection).
pub fn resolve_in(
    g: &Globals,
    env: &UserEnv,
    probe: &dyn Fn(&Path) -> Option<String>,
) -> Result<Endpoint, ConnectError> {
    if !valid_namespace(&g.namespace) {
        return Err(ConnectError::BadNamespace(g.namespace.clone()));
    }
    let runtime_dir = effective_runtime_dir(env);
    let launcher = if env.euid != 0 {
        match &runtime_dir {
            Some(rd) => read_launcher(rd)?,
            None => None,
        }
    } else {
        None
    };
    let endpoint = |mode: Mode, socket: PathBuf, launcher: Option<LauncherInfo>| {
        let rootless = mode == Mode::Rootless;
        Endpoint {
            mode,
            socket,
            namespace: g.namespace.clone(),
            launcher,
            data_root: g
                .data_root
                .clone()
                .unwrap_or_else(|| paths::default_data_root(rootless, env)),
            snapshotter: g.snapshotter.clone(),
            cgroup_manager: g
                .cgroup_manager
                .clone()
                .unwrap_or_else(|| default_cgroup_manager(rootless).to_owned()),
        }
    };

    if let Some(addr) = &g.address {
        // An explicit address is used as given; it is the user's launcher only if it is its socket.
        let rootless_sock = runtime_dir.as_deref().map(paths::rootless_socket);
        return Ok(match launcher {
            Some(l) if rootless_sock.as_deref() == Some(addr.as_path()) => {
                endpoint(Mode::Rootless, addr.clone(), Some(l))
            }
            _ => endpoint(Mode::Rootful, addr.clone(), None),
        });
    }

    let rootful = PathBuf::from(paths::ROOTFUL_SOCKET);
    if env.euid == 0 {
        return Ok(endpoint(Mode::Rootful, rootful, None));
    }
    let mut tried = Vec::new();
    if let Some(rd) = &runtime_dir {
        let sock = paths::rootless_socket(rd);
        if let Some(l) = launcher {
            return Ok(endpoint(Mode::Rootless, sock, Some(l)));
        }
        tried.push((
            sock,
            format!(
                "no rootless containerd ({} does not exist)",
                paths::launcher_state_dir(rd).join("child_pid").display()
            ),
        ));
    }
    match probe(&rootful) {
        None => Ok(endpoint(Mode::Rootful, rootful, None)),
        Some(why) => {
            tried.push((rootful, why));
            Err(ConnectError::NothingReachable {
                tried,
                runtime_dir_unset: env.runtime_dir.is_none(),
                euid: env.euid,
            })
        }
    }
}

/// `$XDG_RUNTIME_DIR`, else `/run/user/UID` when it exists and is the user's (so `su` still works).
pub fn effective_runtime_dir(env: &UserEnv) -> Option<PathBuf> {
    if env.runtime_dir.is_some() {
        return env.runtime_dir.clone();
    }
    if env.euid == 0 {
        return None;
    }
    let conv = env.conventional_runtime_dir();
    match std::fs::metadata(&conv) {
        Ok(m) if m.is_dir() && m.uid() == env.euid => {
            tracing::debug!(dir = %conv.display(), "XDG_RUNTIME_DIR unset; using the conventional runtime dir");
            Some(conv)
        }
        _ => None,
    }
}

fn read_launcher(runtime_dir: &Path) -> Result<Option<LauncherInfo>, ConnectError> {
    let state_dir = paths::launcher_state_dir(runtime_dir);
    let pid_path = state_dir.join("child_pid");
    let text = match std::fs::read_to_string(&pid_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConnectError::BadChildPid {
                path: pid_path,
                reason: e.to_string(),
            })
        }
    };
    let child_pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ConnectError::BadChildPid {
            path: pid_path.clone(),
            reason: format!("{:?} is not a pid", text.trim()),
        })?;
    Ok(Some(LauncherInfo {
        api_socket: state_dir.join("api.sock"),
        state_dir,
        child_pid,
    }))
}

/// The cgroup manager when none was asked for (design.md: systemd on v2 with systemd, none rootless on v1).
fn default_cgroup_manager(rootless: bool) -> &'static str {
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let systemd = Path::new("/run/systemd/system").exists();
    match (v2, rootless) {
        (true, _) if systemd => "systemd",
        (true, _) => "cgroupfs",
        (false, true) => "none",
        (false, false) => "cgroupfs",
    }
}

/// Tries a unix connect; returns why it failed.
pub fn probe_socket(path: &Path) -> Option<String> {
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("does not exist".to_owned()),
        Err(e) => Some(e.to_string()),
    }
}

/// Joins the launcher's user and mount namespaces (before any runtime or thread starts).
pub fn enter_launcher_namespaces(ep: &Endpoint) -> Result<(), ConnectError> {
    ns::enter(ep, ns::Join { net: false })
}

/// Joins the launcher's user, network and mount namespaces (before any runtime or thread starts).
pub fn enter_launcher_namespaces_with_net(ep: &Endpoint) -> Result<(), ConnectError> {
    ns::enter(ep, ns::Join { net: true })
}

/// Joins the user, network and mount namespaces of the launcher child `pid` (the helpers burrow
/// re-executes itself as get the pid; before any runtime or thread starts).
pub fn enter_launcher_pid_with_net(pid: i32) -> Result<(), ConnectError> {
    ns::enter_pid(pid, ns::Join { net: true })
}

/// The CLI's async runtime: one thread, IO and timers.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        // Building a current-thread runtime only fails when the OS refuses an epoll fd.
        Err(err) => panic!("cannot start the async runtime: {err}"),
    }
}

/// The Docker API service's runtime: worker threads (at least two, so one slow request never
/// stalls the others), IO and timers. Namespace switches never run on its workers: the paths the
/// service reaches do theirs in helper processes burrow re-executes itself as.
pub fn service_runtime() -> tokio::runtime::Runtime {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("burrow-api")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => panic!("cannot start the async runtime: {err}"),
    }
}

/// Runs blocking work (a helper process to wait for, a file to copy) from async code: on a
/// worker of a multi-thread runtime (the Docker API service) the runtime is told first, so the
/// worker's other tasks move to another thread meanwhile; elsewhere (the CLI's one thread, no
/// runtime) it simply runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests;
