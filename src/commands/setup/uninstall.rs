//! `burrow setup uninstall`: stops and removes the rootless containerd service; images stay unless --purge.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};

use super::install::{remove, requested_data_root};
use super::layout::{self, Layout};
use super::service;
use super::systemd;
use burrow::connection::{paths, Globals, UserEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also delete images, containers, volumes and network state (containerd's data dir, burrow's
    /// state and CNI allocations).
    #[arg(long)]
    pub purge: bool,
    /// The RootlessKit-compatible launcher used to delete data owned by subordinate ids (--purge).
    #[arg(long, env = "BURROW_LAUNCHER", value_name = "PATH")]
    pub launcher: Option<PathBuf>,
}

pub fn run(args: Args, g: &Globals) -> anyhow::Result<ExitCode> {
    let env = UserEnv::current();
    let l = Layout::new(&env, requested_data_root(g, &env).as_deref())?;
    let manager = service::installed(&l);
    if manager.is_none() && layout::foreign(&l.unit)? {
        bail!(
            "{} was not written by burrow (nerdctl's setup tool?): it is left alone; remove it with the tool that installed it (containerd-rootless-setuptool.sh uninstall)",
            l.unit.display()
        );
    }
    let mut did = Vec::new();
    service::stop(&l, manager)?;
    if manager.is_some() {
        did.push("stopped the rootless containerd and its launcher".to_owned());
    }
    if l.bypass_unit.exists() && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["disable", "--now", systemd::BYPASS_UNIT])?;
        let _ = systemd::run(&["reset-failed", systemd::BYPASS_UNIT]);
        did.push("stopped the socket-bypass service".to_owned());
    }
    if l.unit.exists() && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["disable", systemd::UNIT])?;
        let _ = systemd::run(&["reset-failed", systemd::UNIT]);
    }
    let had_unit = l.unit.exists() || l.bypass_unit.exists();
    remove(&l.unit, &mut did)?;
    remove(&l.bypass_unit, &mut did)?;
    let _ = std::fs::remove_file(&l.bypass_socket);
    if had_unit && systemd::user_manager_reachable().is_ok() {
        systemd::run(&["daemon-reload"])?;
    }
    remove(&l.supervise_marker, &mut did)?;
    for p in [&l.containerd_config, &l.burrow_toml] {
        if !layout::foreign(p)? {
            remove(p, &mut did)?;
        }
    }
    // Runtime leftovers: sockets, the launcher's state, containerd's state.
    for dir in [&l.state_dir, &l.run_dir] {
        if dir.exists() && std::fs::remove_dir_all(dir).is_err() {
            purge_in_namespace(&l, args.launcher.as_deref(), &[dir.as_path()])?;
        }
    }
    let data_dirs: Vec<PathBuf> = [
        Some(l.data_dir.clone()),
        l.cli_data_root
            .clone()
            .or_else(|| Some(paths::default_data_root(true, &env))),
        Some(l.cni_dir.clone()),
    ]
    .into_iter()
    .flatten()
    .filter(|d| d.exists())
    .collect();
    if args.purge {
        let refs: Vec<&Path> = data_dirs.iter().map(PathBuf::as_path).collect();
        if !refs.is_empty() {
            purge_in_namespace(&l, args.launcher.as_deref(), &refs)?;
            for d in &refs {
                did.push(format!("deleted {}", d.display()));
            }
        }
    }
    if did.is_empty() {
        println!("nothing to uninstall: no rootless containerd set up by burrow");
    }
    for line in &did {
        println!("{line}");
    }
    if !args.purge && !data_dirs.is_empty() {
        println!(
            "kept images and containers' data in {} (burrow setup uninstall --purge deletes them)",
            data_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes dirs whose files belong to subordinate ids: inside the launcher's user namespace.
fn purge_in_namespace(l: &Layout, launcher: Option<&Path>, dirs: &[&Path]) -> anyhow::Result<()> {
    // Files the user owns go first, without any namespace.
    let left: Vec<&Path> = dirs
        .iter()
        .copied()
        .filter(|d| std::fs::remove_dir_all(d).is_err() && d.exists())
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    let launcher = layout::find_launcher(launcher)?;
    let out = Command::new(&launcher)
        .arg("--net=none")
        .arg("rm")
        .arg("-rf")
        .arg("--")
        .args(&left)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", launcher.display()))?;
    let still: Vec<String> = left
        .iter()
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    if !out.status.success() || !still.is_empty() {
        bail!(
            "cannot delete {}: {} (try: {} --net=none rm -rf {}; the log is {})",
            still.join(" "),
            String::from_utf8_lossy(&out.stderr).trim(),
            launcher.display(),
            still.join(" "),
            l.log.display()
        );
    }
    Ok(())
}
