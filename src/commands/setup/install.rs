//! `burrow setup install`: writes the rootless containerd's config and service, starts it, waits until it answers.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::check::{self, Status};
use super::layout::{self, Layout, NetDriver, MARKER};
use super::service::{self, Manager};
use super::{supervise, systemd};
use burrow::connection::{Globals, UserEnv};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The global --data-root DIR puts containerd's images and snapshots in DIR/containerd and burrow's
own state in DIR/nerdctl (use a local disk on hosts whose home is on NFS, Lustre or GPFS); it is
remembered in ~/.config/burrow/burrow.toml.

Running install again is safe: an unchanged, running install returns at once; a changed one is
rewritten and restarted.")]
pub struct Args {
    /// Run containerd as a background service supervised by burrow, even where a systemd user manager runs.
    #[arg(long)]
    pub no_systemd: bool,
    /// Replace a rootless containerd set up by something else (its files are kept as FILE.burrow-backup).
    #[arg(long)]
    pub force: bool,
    /// The RootlessKit-compatible launcher [default: burrow-rootlesskit next to burrow, else on PATH].
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
    /// The namespace's network: builtin (burrow's embedded userspace stack, the fastest) or
    /// slirp4netns (the external program, as RootlessKit's default setup uses).
    #[arg(long, value_enum, default_value_t = NetDriver::Builtin)]
    pub net: NetDriver,
    /// Let containers reach the host's loopback (127.0.0.1) at the gateway 10.0.2.2, as
    /// RootlessKit does without --disable-host-loopback. Off by default: with it every service
    /// listening on the host's loopback is reachable from every container.
    #[arg(long)]
    pub host_loopback: bool,
    /// Also install and start the socket-bypass service for `burrow run --bypass` (kept by later
    /// installs; removed by uninstall).
    #[arg(long)]
    pub bypass: bool,
    /// The burrow-bypass binary [default: next to burrow, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub bypass_binary: Option<PathBuf>,
    /// Seconds to wait for containerd to answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
}

/// The data root asked for: `--data-root`/BURROW_DATA_ROOT, else the one a previous install remembered.
pub fn requested_data_root(g: &Globals, env: &UserEnv) -> Option<PathBuf> {
    if let Some(d) = &g.data_root_flag {
        return Some(d.clone());
    }
    let toml = env.config_home.as_ref()?.join("burrow/burrow.toml");
    let text = std::fs::read_to_string(toml).ok()?;
    if !text.contains(MARKER) {
        return None;
    }
    let cfg: burrow::config::FileConfig = toml::from_str(&text).ok()?;
    let d = cfg.data_root?;
    (d.file_name()? == "nerdctl").then(|| d.parent().map(Path::to_path_buf))?
}

// `setup install-bypass`.
#[derive(Debug, clap::Args)]
pub struct BypassArgs {
    /// The burrow-bypass binary [default: next to burrow, else on PATH].
    #[arg(long, value_name = "PATH")]
    pub bypass_binary: Option<PathBuf>,
    /// Seconds to wait for containerd to answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
}

/// `setup install --bypass` with the installed setup's manager and network.
pub fn run_bypass(args: BypassArgs, g: &Globals) -> anyhow::Result<ExitCode> {
    let env = UserEnv::current();
    let data_root = requested_data_root(g, &env);
    let l = Layout::new(&env, data_root.as_deref())?;
    let installed = service::installed(&l);
    // What the installed setup chose: the supervised marker records it, the unit's launcher
    // flags show it.
    let (net, host_loopback) = match installed {
        Some(Manager::Supervised) => (
            supervise::installed_net(&l).unwrap_or_default(),
            supervise::installed_host_loopback(&l),
        ),
        Some(Manager::Systemd) => {
            let unit = std::fs::read_to_string(&l.unit).unwrap_or_default();
            let net = if unit.contains("--net=slirp4netns") {
                NetDriver::Slirp4netns
            } else {
                NetDriver::Builtin
            };
            (net, !unit.contains("--disable-host-loopback"))
        }
        None => (NetDriver::default(), false),
    };
    run(
        Args {
            no_systemd: installed == Some(Manager::Supervised),
            force: false,
            launcher: None,
            net,
            host_loopback,
            bypass: true,
            bypass_binary: args.bypass_binary,
            timeout: args.timeout,
        },
        g,
    )
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let env = UserEnv::current();
    let data_root = requested_data_root(g, &env);
    if let Some(d) = &data_root {
        if !d.is_absolute() {
            bail!("--data-root {} must be an absolute path", d.display());
        }
    }
    let mut l = Layout::new(&env, data_root.as_deref())?;
    l.net = args.net;
    l.host_loopback = args.host_loopback;
    if l.net == NetDriver::Slirp4netns && layout::which("slirp4netns").is_none() {
        bail!("--net=slirp4netns: slirp4netns is not on PATH (as root: apt-get install slirp4netns), or use the default --net=builtin");
    }
    let report = check::gather(g, args.launcher.as_deref());
    if !report.ok {
        let mut msg = String::from("the prerequisites below are not met:");
        for c in report.checks.iter().filter(|c| c.status == Status::Fail) {
            msg.push_str(&format!("\n  {}: {}", c.name, c.detail));
            if let Some(f) = &c.fix {
                msg.push_str(&format!("\n    fix: {f}"));
            }
        }
        msg.push_str(
            "\nthen run `burrow setup install` again (`burrow setup check` lists everything)",
        );
        bail!(msg);
    }
    let launcher = layout::find_launcher(args.launcher.as_deref())?;
    let burrow = layout::burrow_exe()?;
    let runtime = report
        .choices
        .runtime
        .clone()
        .unwrap_or_else(|| "runc".into());
    let bypass = if args.bypass || bypass_installed(&l) {
        Some(layout::find_bypass(args.bypass_binary.as_deref())?)
    } else {
        None
    };

    let mut did: Vec<String> = Vec::new();
    take_over_foreign(&l, args.force, &mut did)?;

    let manager = if args.no_systemd {
        Manager::Supervised
    } else {
        match systemd::user_manager_reachable() {
            Ok(()) => Manager::Systemd,
            Err(why) => {
                println!("no systemd user manager ({why}): using a supervised background service");
                Manager::Supervised
            }
        }
    };
    // Switching between the two ways: stop and remove the other one first.
    match (service::installed(&l), manager) {
        (Some(Manager::Systemd), Manager::Supervised) => {
            service::stop(&l, Some(Manager::Systemd))?;
            let _ = systemd::run(&["disable", "--now", systemd::UNIT, systemd::BYPASS_UNIT]);
            remove(&l.unit, &mut did)?;
            remove(&l.bypass_unit, &mut did)?;
            let _ = systemd::run(&["daemon-reload"]);
        }
        (Some(Manager::Supervised), Manager::Systemd) => {
            service::stop(&l, Some(Manager::Supervised))?;
            remove(&l.supervise_marker, &mut did)?;
        }
        _ => {}
    }

    for dir in [&l.data_dir, &l.run_dir, &l.cni_dir] {
        private_dir(dir)?;
    }
    if let Some(d) = &l.cli_data_root {
        private_dir(d)?;
    }
    if let Some(d) = l.log.parent() {
        private_dir(d)?;
    }
    let mut changed = false;
    changed |= write_file(
        &l.containerd_config,
        &layout::render_containerd_config(report.choices.single_id.then_some(burrow.as_path())),
        &mut did,
    )?;
    write_burrow_toml(&l, &report.choices, &mut did)?;
    match manager {
        Manager::Systemd => {
            changed |= write_file(
                &l.unit,
                &l.render_unit(&launcher, &burrow, &runtime),
                &mut did,
            )?;
        }
        Manager::Supervised => {
            let mut text = format!(
                "{MARKER}: the supervised rootless containerd (no systemd).\n\
                 # Start it (at login, e.g. from ~/.profile): {} setup supervise --background\n\
                 launcher = \"{}\"\nruntime = \"{runtime}\"\nnet = \"{}\"\n",
                burrow.display(),
                launcher.display(),
                l.net.as_str()
            );
            if let Some(b) = &bypass {
                text.push_str(&format!("bypass = \"{}\"\n", b.display()));
            }
            if l.host_loopback {
                text.push_str("host_loopback = true\n");
            }
            let mut bins: Vec<&Path> = vec![&launcher, &burrow];
            if let Some(b) = &bypass {
                bins.push(b);
            }
            text.push_str(&layout::binaries_stamp(&bins));
            changed |= write_file(&l.supervise_marker, &text, &mut did)?;
        }
    }
    let bypass_changed = match (&bypass, manager) {
        (Some(b), Manager::Systemd) => {
            write_file(&l.bypass_unit, &l.render_bypass_unit(b), &mut did)?
        }
        _ => false,
    };

    let timeout = Duration::from_secs(args.timeout);
    let started = Instant::now();
    let version = match manager {
        Manager::Systemd => start_systemd(&l, changed, timeout, &mut did)?,
        Manager::Supervised => start_supervised(
            &l,
            &launcher,
            &runtime,
            bypass.as_deref(),
            changed,
            timeout,
            &mut did,
        )?,
    };
    if bypass.is_some() {
        if manager == Manager::Systemd {
            start_bypass_unit(bypass_changed || changed, &mut did)?;
        }
        wait_bypass(&l)?;
    }
    for line in &did {
        println!("{line}");
    }
    println!(
        "rootless containerd {version} answers on {} ({} service{}, up in {:.1}s)",
        l.socket.display(),
        match manager {
            Manager::Systemd => "systemd user",
            Manager::Supervised => "supervised",
        },
        if did.is_empty() { ", unchanged" } else { "" },
        started.elapsed().as_secs_f64()
    );
    println!(
        "data: {}; logs: {} (burrow setup logs)",
        l.data_dir.display(),
        l.log.display()
    );
    if bypass.is_some() {
        println!(
            "socket bypass: burrow-bypass answers on {} (burrow run --bypass ...)",
            l.bypass_socket.display()
        );
    }
    if manager == Manager::Supervised {
        println!(
            "to start it at login, add this line to ~/.profile: {} setup supervise --background",
            burrow.display()
        );
    }
    println!("next: burrow info; burrow run -d -p 8080:80 nginx");
    Ok(ExitCode::SUCCESS)
}

/// Refuses (or with --force, backs up and stops) a rootless containerd that burrow did not set up.
fn take_over_foreign(l: &Layout, force: bool, did: &mut Vec<String>) -> anyhow::Result<()> {
    let foreign_files: Vec<&PathBuf> = [&l.unit, &l.containerd_config]
        .into_iter()
        .filter(|p| layout::foreign(p).unwrap_or(false))
        .collect();
    let ours = service::installed(l).is_some();
    let foreign_socket = !ours && burrow::connection::probe_socket(&l.socket).is_none();
    if foreign_files.is_empty() && !foreign_socket {
        return Ok(());
    }
    if !force {
        let mut what: Vec<String> = foreign_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if foreign_socket {
            what.push(format!("a running containerd on {}", l.socket.display()));
        }
        bail!(
            "a rootless containerd that burrow did not set up exists ({}), perhaps from nerdctl's containerd-rootless-setuptool.sh; \
             burrow uses it as it is (`burrow info`). To replace it with burrow's: burrow setup install --force \
             (its files are kept as FILE.burrow-backup)",
            what.join(", ")
        );
    }
    if l.unit.exists() && systemd::user_manager_reachable().is_ok() {
        let _ = systemd::run(&["disable", "--now", systemd::UNIT]);
        did.push(format!(
            "stopped and disabled the existing {}",
            systemd::UNIT
        ));
    }
    for p in foreign_files {
        let backup = PathBuf::from(format!("{}.burrow-backup", p.display()));
        std::fs::rename(p, &backup)
            .with_context(|| format!("cannot move {} to {}", p.display(), backup.display()))?;
        did.push(format!(
            "kept the existing {} as {}",
            p.display(),
            backup.display()
        ));
    }
    if foreign_socket && burrow::connection::probe_socket(&l.socket).is_none() {
        bail!(
            "a containerd not managed by systemd still answers on {}: stop it (e.g. `pkill -u $USER containerd`) and run install again",
            l.socket.display()
        );
    }
    Ok(())
}

fn start_systemd(
    l: &Layout,
    changed: bool,
    timeout: Duration,
    did: &mut Vec<String>,
) -> anyhow::Result<String> {
    if changed {
        systemd::run(&["daemon-reload"])?;
    }
    systemd::run(&["enable", systemd::UNIT])?;
    if systemd::is_active() {
        if !changed {
            if let Ok(v) = service::server_version(&l.socket) {
                return Ok(v);
            }
        } else {
            systemd::run(&["restart", systemd::UNIT])?;
            did.push(format!(
                "restarted {} (its configuration changed)",
                systemd::UNIT
            ));
        }
    } else {
        // A unit that failed too often is held back by the start limit; clear it first.
        let _ = systemd::run(&["reset-failed", systemd::UNIT]);
        systemd::run(&["start", systemd::UNIT])?;
        did.push(format!(
            "enabled and started the systemd user unit {}",
            systemd::UNIT
        ));
    }
    service::wait_ready(
        l,
        timeout,
        &|| {
            let s = systemd::property("ActiveState");
            s == "active" || s == "activating"
        },
        &|| systemd::property("NRestarts").parse().unwrap_or(0),
    )
}

fn start_supervised(
    l: &Layout,
    launcher: &Path,
    runtime: &str,
    bypass: Option<&Path>,
    changed: bool,
    timeout: Duration,
    did: &mut Vec<String>,
) -> anyhow::Result<String> {
    if supervise::running_pid(l).is_some() {
        if !changed {
            if let Ok(v) = service::server_version(&l.socket) {
                return Ok(v);
            }
        } else {
            service::stop(l, Some(Manager::Supervised))?;
            did.push("stopped the supervised service (its configuration changed)".into());
        }
    }
    if let Some(pid) = supervise::start_background(l, Some(launcher), runtime, bypass)? {
        did.push(format!("started the supervised service (pid {pid})"));
    }
    service::wait_ready(l, timeout, &|| supervise::running_pid(l).is_some(), &|| {
        supervise::restarts(l)
    })
}

/// True when an earlier install set up the bypass service (later installs keep it).
pub fn bypass_installed(l: &Layout) -> bool {
    let unit = std::fs::read_to_string(&l.bypass_unit).is_ok_and(|t| t.contains(MARKER));
    let supervised = std::fs::read_to_string(&l.supervise_marker)
        .is_ok_and(|t| t.lines().any(|x| x.starts_with("bypass = ")));
    unit || supervised
}

fn start_bypass_unit(changed: bool, did: &mut Vec<String>) -> anyhow::Result<()> {
    if changed {
        systemd::run(&["daemon-reload"])?;
    }
    systemd::run(&["enable", systemd::BYPASS_UNIT])?;
    if !systemd::unit_active(systemd::BYPASS_UNIT) {
        let _ = systemd::run(&["reset-failed", systemd::BYPASS_UNIT]);
        systemd::run(&["start", systemd::BYPASS_UNIT])?;
        did.push(format!("enabled and started {}", systemd::BYPASS_UNIT));
    } else if changed {
        systemd::run(&["restart", systemd::BYPASS_UNIT])?;
        did.push(format!("restarted {}", systemd::BYPASS_UNIT));
    }
    Ok(())
}

/// Waits until burrow-bypass accepts connections on its socket.
fn wait_bypass(l: &Layout) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(&l.bypass_socket).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "burrow-bypass did not come up on {}; the log {} ends with:\n{}",
        l.bypass_socket.display(),
        l.log.display(),
        service::log_tail(&l.log, 10)
    )
}

/// burrow.toml: the snapshotter and cgroup manager the check chose, and the data root.
fn write_burrow_toml(
    l: &Layout,
    choices: &check::Choices,
    did: &mut Vec<String>,
) -> anyhow::Result<()> {
    let text = layout::render_burrow_toml(
        &choices.snapshotter,
        &choices.cgroup_manager,
        l.cli_data_root.as_deref(),
    );
    if layout::foreign(&l.burrow_toml)? {
        println!(
            "note: {} is yours, so it is left alone; for this host it should say:\n{}",
            l.burrow_toml.display(),
            text.lines()
                .skip(1)
                .map(|x| format!("    {x}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        return Ok(());
    }
    write_file(&l.burrow_toml, &text, did)?;
    Ok(())
}

/// Creates a directory (and parents) private to the user.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `text` to `path` (0600, atomically) unless it already holds it; true when written.
fn write_file(path: &Path, text: &str, did: &mut Vec<String>) -> anyhow::Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(false);
    }
    let dir = path.parent().context("a file path without a directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.burrow-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    let existed = path.exists();
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    did.push(format!(
        "{} {}",
        if existed { "updated" } else { "wrote" },
        path.display()
    ));
    Ok(true)
}

/// Removes a file burrow wrote, saying so.
pub fn remove(path: &Path, did: &mut Vec<String>) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            did.push(format!("removed {}", path.display()));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
