//! Whether the rootless containerd is installed, running and answering, and where its parts are
//! (`burrow setup status`).

use std::path::PathBuf;

use serde::Serialize;

use super::layout::Layout;
use super::service::{self, Manager};
use super::{files, supervise, systemd};

/// The rootless containerd's service as it stands (`burrow setup status --format json`).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// systemd, supervised, foreign (set up by another tool) or none.
    pub installed: String,
    /// The unit's or supervisor's state: active, activating, failed, inactive...
    pub state: String,
    /// systemd's main pid of the unit, or the supervisor's pid.
    pub service_pid: Option<i32>,
    /// The launcher's child: the process whose namespaces containerd runs in.
    pub child_pid: Option<i32>,
    pub socket: PathBuf,
    /// containerd's version when it answers.
    pub containerd: Option<String>,
    /// Why it does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub unit: Option<PathBuf>,
    /// The socket-bypass service: "answering", "not answering" or "not installed".
    pub bypass: String,
    /// The Docker API (`setup install --docker-api`).
    pub docker_api: DockerApiStatus,
}

/// The installed Docker API as it stands.
#[derive(Debug, Clone, Serialize)]
pub struct DockerApiStatus {
    pub installed: bool,
    /// `unix://PATH`, for DOCKER_HOST.
    pub host: String,
    /// Something accepts connections on the socket (systemd's socket unit or the service).
    pub listening: bool,
    /// The service process runs now (socket-activated: only after a first connection).
    pub running: bool,
}

impl DockerApiStatus {
    fn gather(l: &Layout, manager: Option<Manager>) -> DockerApiStatus {
        let installed = service::docker_api_installed(l);
        let listening = crate::dockerapi::listen::listening(&l.docker_socket);
        let running = match manager {
            Some(Manager::Systemd) if l.docker_socket_unit.exists() => {
                systemd::unit_active(systemd::DOCKER_SERVICE)
            }
            _ => listening,
        };
        DockerApiStatus {
            installed,
            host: format!("unix://{}", l.docker_socket.display()),
            listening,
            running,
        }
    }

    /// One line for `setup status`.
    pub fn describe(&self) -> String {
        match (self.installed, self.listening, self.running) {
            (false, true, _) => format!("{} (listening; not installed by setup)", self.host),
            (false, false, _) => "not installed (burrow setup install --docker-api)".to_string(),
            (true, true, true) => format!("{}, listening, service running", self.host),
            (true, true, false) => format!(
                "{}, listening (the service starts on the first connection)",
                self.host
            ),
            (true, false, _) => format!(
                "{}, not listening (burrow setup install --docker-api starts it)",
                self.host
            ),
        }
    }
}

/// How the setup of the layout's user stands now.
pub fn gather(l: &Layout) -> ServiceStatus {
    let manager = service::installed(l);
    let (installed, state, service_pid, unit) = match manager {
        Some(Manager::Systemd) => {
            let state = if systemd::user_manager_reachable().is_ok() {
                let a = systemd::property("ActiveState");
                let s = systemd::property("SubState");
                format!("{a} ({s})")
            } else {
                "unknown (the systemd user manager does not answer)".into()
            };
            (
                "systemd".to_owned(),
                state,
                systemd::main_pid(),
                Some(l.unit.clone()),
            )
        }
        Some(Manager::Supervised) => {
            let pid = supervise::running_pid(l);
            let state = if pid.is_some() {
                "running"
            } else {
                "stopped (start it: burrow setup supervise --background)"
            };
            ("supervised".to_owned(), state.to_owned(), pid, None)
        }
        None if files::foreign(&l.unit).unwrap_or(false) => (
            "foreign (not set up by burrow)".to_owned(),
            systemd::property("ActiveState"),
            systemd::main_pid(),
            Some(l.unit.clone()),
        ),
        None => ("none".to_owned(), "not installed".to_owned(), None, None),
    };
    let (containerd, error) = match service::server_version(&l.socket) {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    ServiceStatus {
        installed,
        state,
        service_pid,
        child_pid: service::child_pid(l),
        socket: l.socket.clone(),
        containerd,
        error,
        data_dir: l.data_dir.clone(),
        log: l.log.clone(),
        unit,
        docker_api: DockerApiStatus::gather(l, manager),
        bypass: if !service::bypass_installed(l) {
            "not installed".into()
        } else if std::os::unix::net::UnixStream::connect(&l.bypass_socket).is_ok() {
            "answering".into()
        } else {
            "not answering".into()
        },
    }
}
