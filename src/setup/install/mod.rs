//! Setting up (or refreshing) the user's rootless containerd (`burrow setup install`): checks the
//! prerequisites, writes containerd's config, burrow.toml and the service, starts it and waits
//! until containerd answers.

mod start;
mod takeover;
mod write;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::change::Change;
use super::check::{self, Item, Report, Status};
use super::layout::{requested_data_root, Layout, LayoutError, NetDriver};
use super::service::{self, Manager};
use super::{programs, supervise, systemd};
use crate::connection::{Globals, UserEnv};

/// How to install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Run the supervised service even where a systemd user manager runs.
    pub no_systemd: bool,
    /// Replace a rootless containerd set up by something else (its files kept as FILE.burrow-backup).
    pub force: bool,
    /// The launcher [default: burrow-rootlesskit next to burrow, else on PATH].
    pub launcher: Option<PathBuf>,
    /// The namespace's network.
    pub net: NetDriver,
    /// Let containers reach the host's loopback at the gateway.
    pub host_loopback: bool,
    /// The launcher's --detach-netns (containerd in the host's network namespace).
    pub detach_netns: bool,
    /// Also install the socket-bypass service (kept by later installs once there).
    pub bypass: bool,
    /// The burrow-bypass binary [default: next to burrow, else on PATH].
    pub bypass_binary: Option<PathBuf>,
    /// Also install the Docker API: socket-activated units under systemd, a supervised service
    /// otherwise (kept by later installs once there).
    pub docker_api: bool,
    /// How long to wait for containerd to answer.
    pub timeout: Duration,
}

/// What install says while it works, before it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// No systemd user manager answers (`why`): the supervised service is used instead.
    NoSystemd { why: String },
    /// The user's burrow.toml at `path` sets keys install would set to something else; they
    /// stay as the user wrote them, and `wanted` are the lines install would have written.
    OwnBurrowToml { path: PathBuf, wanted: Vec<String> },
}

/// A finished install.
#[derive(Debug, Clone)]
pub struct Installed {
    /// containerd's version as it answers.
    pub version: String,
    pub manager: Manager,
    /// What changed, in order; empty when the install was unchanged and running.
    pub changes: Vec<Change>,
    /// From starting the service until containerd answered.
    pub elapsed: Duration,
    /// The installed setup's paths (socket, data, log, bypass socket).
    pub layout: Layout,
    /// The burrow binary the service runs.
    pub burrow: PathBuf,
    /// The bypass service's binary, when it runs.
    pub bypass: Option<PathBuf>,
    /// The Docker API's socket, when installed.
    pub docker_api: Option<PathBuf>,
}

/// Why an install did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("--data-root {} must be an absolute path", .0.display())]
    RelativeDataRoot(PathBuf),
    #[error("--net=slirp4netns: slirp4netns is not on PATH (as root: apt-get install slirp4netns), or use the default --net=builtin")]
    NoSlirp4netns,
    /// Checks failed (the report's FAIL items).
    #[error("{}", prerequisites_message(.failed))]
    Prerequisites { failed: Vec<Item> },
    /// A rootless containerd that burrow did not set up: its `files`, or a containerd answering
    /// on `socket`; `force` replaces it.
    #[error("a rootless containerd that burrow did not set up exists ({}), perhaps from nerdctl's containerd-rootless-setuptool.sh; burrow uses it as it is (`burrow info`). To replace it with burrow's: burrow setup install --force (its files are kept as FILE.burrow-backup)", foreign_list(.files, .socket.as_deref()))]
    Foreign {
        files: Vec<PathBuf>,
        socket: Option<PathBuf>,
    },
    /// With `force`: a containerd no unit manages still answers on the socket.
    #[error("a containerd not managed by systemd still answers on {}: stop it (e.g. `pkill -u $USER containerd`) and run install again", .socket.display())]
    ForeignStillAnswers { socket: PathBuf },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

fn prerequisites_message(failed: &[Item]) -> String {
    let mut msg = String::from("the prerequisites below are not met:");
    for c in failed {
        msg.push_str(&format!("\n  {}: {}", c.name, c.detail));
        if let Some(f) = &c.fix {
            msg.push_str(&format!("\n    fix: {f}"));
        }
    }
    msg.push_str("\nthen run `burrow setup install` again (`burrow setup check` lists everything)");
    msg
}

fn foreign_list(files: &[PathBuf], socket: Option<&Path>) -> String {
    let mut what: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    if let Some(s) = socket {
        what.push(format!("a running containerd on {}", s.display()));
    }
    what.join(", ")
}

/// The programs and choices one install runs with.
struct Plan {
    layout: Layout,
    report: Report,
    launcher: PathBuf,
    burrow: PathBuf,
    runtime: String,
    bypass: Option<PathBuf>,
    /// Install the Docker API too.
    docker_api: bool,
}

/// Installs (or refreshes) the current user's rootless containerd and waits until it answers.
/// `notify` hears what install has to say along the way.
pub fn install(
    g: &Globals,
    opts: &InstallOptions,
    notify: &mut dyn FnMut(Notice),
) -> Result<Installed, InstallError> {
    let plan = plan(g, opts)?;
    let l = &plan.layout;
    let mut changes = takeover::take_over_foreign(l, opts.force)?;
    let manager = choose_manager(opts.no_systemd, notify);
    takeover::switch_manager(l, manager, &mut changes)?;
    let written = write::write_all(&plan, manager, &mut changes, notify)?;
    let started = Instant::now();
    let version = match manager {
        Manager::Systemd => start::start_systemd(l, written.service, opts.timeout, &mut changes)?,
        Manager::Supervised => {
            start::start_supervised(&plan, written.service, opts.timeout, &mut changes)?
        }
    };
    if plan.bypass.is_some() {
        if manager == Manager::Systemd {
            start::start_bypass_unit(written.bypass || written.service, &mut changes)?;
        }
        start::wait_bypass(l)?;
    }
    if plan.docker_api {
        match manager {
            Manager::Systemd => start::start_docker_socket(written.docker_api, &mut changes)?,
            Manager::Supervised => {}
        }
        start::wait_docker_api(l, manager)?;
    }
    let docker_api = plan.docker_api.then(|| plan.layout.docker_socket.clone());
    Ok(Installed {
        version,
        manager,
        changes,
        elapsed: started.elapsed(),
        layout: plan.layout,
        docker_api,
        burrow: plan.burrow,
        bypass: plan.bypass,
    })
}

/// The layout with the network asked for, the passed checks, and the programs to run.
fn plan(g: &Globals, opts: &InstallOptions) -> Result<Plan, InstallError> {
    let env = UserEnv::current();
    let data_root = requested_data_root(g, &env);
    if let Some(d) = &data_root {
        if !d.is_absolute() {
            return Err(InstallError::RelativeDataRoot(d.clone()));
        }
    }
    let mut layout = Layout::new(&env, data_root.as_deref())?;
    layout.net = opts.net;
    layout.host_loopback = opts.host_loopback;
    layout.detach_netns = opts.detach_netns;
    if layout.net == NetDriver::Slirp4netns && programs::which("slirp4netns").is_none() {
        return Err(InstallError::NoSlirp4netns);
    }
    let report = check::gather(g, opts.launcher.as_deref());
    if !report.ok {
        let failed = report.checks.iter().filter(|c| c.status == Status::Fail);
        return Err(InstallError::Prerequisites {
            failed: failed.cloned().collect(),
        });
    }
    let launcher = programs::find_launcher(opts.launcher.as_deref())?;
    let burrow = programs::burrow_exe()?;
    let runtime = report
        .choices
        .runtime
        .clone()
        .unwrap_or_else(|| "runc".into());
    let bypass = if opts.bypass || service::bypass_installed(&layout) {
        Some(programs::find_bypass(opts.bypass_binary.as_deref())?)
    } else {
        None
    };
    let docker_api = opts.docker_api || service::docker_api_installed(&layout);
    Ok(Plan {
        layout,
        report,
        launcher,
        burrow,
        runtime,
        bypass,
        docker_api,
    })
}

/// The supervised service when asked for or when no systemd user manager answers.
fn choose_manager(no_systemd: bool, notify: &mut dyn FnMut(Notice)) -> Manager {
    if no_systemd {
        return Manager::Supervised;
    }
    match systemd::user_manager_reachable() {
        Ok(()) => Manager::Systemd,
        Err(why) => {
            notify(Notice::NoSystemd { why });
            Manager::Supervised
        }
    }
}

/// `setup install --bypass` with the installed setup's way of running and network (what
/// `setup install-bypass` does); installs as the defaults would when nothing is installed.
pub fn bypass_options(
    g: &Globals,
    bypass_binary: Option<PathBuf>,
    timeout: Duration,
) -> Result<InstallOptions, LayoutError> {
    let l = Layout::current(g)?;
    let installed = service::installed(&l);
    // What the installed setup chose: the supervised marker records it, the unit's launcher
    // flags show it.
    let (net, host_loopback, detach_netns) = match installed {
        Some(Manager::Supervised) => (
            supervise::installed_net(&l).unwrap_or_default(),
            supervise::installed_host_loopback(&l),
            supervise::installed_detach_netns(&l),
        ),
        Some(Manager::Systemd) => {
            let unit = std::fs::read_to_string(&l.unit).unwrap_or_default();
            let net = if unit.contains("--net=slirp4netns") {
                NetDriver::Slirp4netns
            } else {
                NetDriver::Builtin
            };
            (
                net,
                !unit.contains("--disable-host-loopback"),
                unit.contains("--detach-netns"),
            )
        }
        None => (NetDriver::default(), false, false),
    };
    Ok(InstallOptions {
        no_systemd: installed == Some(Manager::Supervised),
        force: false,
        launcher: None,
        net,
        host_loopback,
        detach_netns,
        bypass: true,
        bypass_binary,
        docker_api: false,
        timeout,
    })
}
