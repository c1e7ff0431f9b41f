//! `burrow setup status`: is the rootless containerd installed, running and answering, and where its parts are.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::install::requested_data_root;
use super::layout::{self, Layout};
use super::service::{self, Manager};
use super::{supervise, systemd};
use burrow::connection::{Globals, UserEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Debug, Serialize)]
struct Status {
    /// systemd, supervised, foreign (set up by another tool) or none.
    installed: String,
    /// The unit's or supervisor's state: active, activating, failed, inactive...
    state: String,
    /// systemd's main pid of the unit, or the supervisor's pid.
    service_pid: Option<i32>,
    /// The launcher's child: the process whose namespaces containerd runs in.
    child_pid: Option<i32>,
    socket: PathBuf,
    /// containerd's version when it answers.
    containerd: Option<String>,
    /// Why it does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    data_dir: PathBuf,
    log: PathBuf,
    unit: Option<PathBuf>,
    /// The socket-bypass service: "answering", "not answering" or "not installed".
    bypass: String,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let env = UserEnv::current();
    let l = Layout::new(&env, requested_data_root(g, &env).as_deref())?;
    let st = gather(&l);
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        println!("installed:  {}", st.installed);
        if let Some(u) = &st.unit {
            println!("unit:       {}", u.display());
        }
        println!("state:      {}", st.state);
        if let Some(p) = st.service_pid {
            println!("service:    pid {p}");
        }
        if let Some(p) = st.child_pid {
            println!("namespaces: pid {p} (burrow setup nsenter enters them)");
        }
        match (&st.containerd, &st.error) {
            (Some(v), _) => println!("containerd: {v}, answering on {}", st.socket.display()),
            (None, Some(e)) => {
                println!("containerd: not answering on {} ({e})", st.socket.display())
            }
            (None, None) => println!("containerd: not answering on {}", st.socket.display()),
        }
        println!("data:       {}", st.data_dir.display());
        println!("log:        {} (burrow setup logs)", st.log.display());
        println!("bypass:     {}", st.bypass);
        if st.installed == "none" {
            println!("to set it up: burrow setup install");
        } else if st.containerd.is_none() {
            println!("to see why: burrow setup logs; to (re)start it: burrow setup install");
        }
    }
    // As `systemctl status`: 0 when running, 3 when not.
    Ok(if st.containerd.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn gather(l: &Layout) -> Status {
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
        None if layout::foreign(&l.unit).unwrap_or(false) => (
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
    Status {
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
        bypass: if !super::install::bypass_installed(l) {
            "not installed".into()
        } else if std::os::unix::net::UnixStream::connect(&l.bypass_socket).is_ok() {
            "answering".into()
        } else {
            "not answering".into()
        },
    }
}
