//! The launcher's child (`burrow setup child`): inside the launcher, binds the user's dirs over
//! containerd's paths and execs containerd.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};

use super::programs;

/// Where the user's dirs are, as the host sees them (the flags of `burrow setup child`).
#[derive(Debug, Clone)]
pub struct ChildConfig {
    /// containerd's data (bound over /var/lib/containerd).
    pub data_dir: PathBuf,
    /// containerd's config file; its directory is bound over /etc/containerd.
    pub containerd_config: PathBuf,
    /// containerd's runtime state and socket (bound over /run/containerd).
    pub run_dir: PathBuf,
    /// CNI's IP allocations (bound over /var/lib/cni).
    pub cni_dir: PathBuf,
    /// The OCI runtime containerd's shim runs: runc, or crun (offered to the shim as `runc`).
    pub runtime: String,
}

/// Copy-up symlinks in the child's /run, /var/lib and /etc that would hide ours: the host's
/// iptables lock, and the host's /run/cni (made by rootful CNI users, root's own), where the
/// tuning plugin (`--mac-address`) keeps its state and the user could not write.
const STALE_LINKS: &[&str] = &["/run/xtables.lock", "/run/cni"];

/// Inside the launcher: binds the user's dirs over containerd's paths and execs containerd; returns
/// only when that fails. Run it single-threaded: it changes the environment before exec.
pub fn exec_containerd(args: &ChildConfig) -> anyhow::Result<Infallible> {
    let Some(config_dir) = args.containerd_config.parent() else {
        bail!(
            "--config {} has no parent directory",
            args.containerd_config.display()
        );
    };
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if uid_map.split_whitespace().take(2).collect::<Vec<_>>() == ["0", "0"] {
        bail!("`burrow setup child` must run inside the launcher's user namespace (the containerd service starts it)");
    }
    for link in STALE_LINKS {
        remove_symlink(Path::new(link))?;
    }
    let binds = [
        (args.run_dir.clone(), "/run/containerd"),
        (args.data_dir.clone(), "/var/lib/containerd"),
        (config_dir.to_path_buf(), "/etc/containerd"),
        (args.cni_dir.clone(), "/var/lib/cni"),
    ];
    for (src, dst) in &binds {
        bind(src, Path::new(dst))?;
    }
    if args.runtime == "crun" {
        offer_crun_as_runc(&args.run_dir)?;
    }
    let containerd = programs::which("containerd").context(
        "containerd is not on PATH inside the launcher: install it (apt-get install containerd)",
    )?;
    let prog = CString::new(containerd.as_os_str().as_encoded_bytes())?;
    let argv = [
        prog.clone(),
        CString::new("--config")?,
        CString::new(args.containerd_config.as_os_str().as_encoded_bytes())?,
    ];
    let err = nix::unistd::execv(&prog, &argv).unwrap_err();
    bail!("cannot exec {}: {err}", containerd.display())
}

/// The runc shim runs `runc` from PATH: put a `runc` that is crun first on PATH.
fn offer_crun_as_runc(run_dir: &Path) -> anyhow::Result<()> {
    let crun = programs::which("crun")
        .context("--runtime=crun but crun is not on PATH (apt-get install crun)")?;
    let bin = run_dir.join("bin");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&bin)?;
    let link = bin.join("runc");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&crun, &link)
        .with_context(|| format!("cannot link {} to {}", link.display(), crun.display()))?;
    let path = std::env::var("PATH").unwrap_or_default();
    // The process is still single-threaded here: nothing reads the environment concurrently.
    std::env::set_var("PATH", format!("/run/containerd/bin:{path}"));
    Ok(())
}

fn remove_symlink(p: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(p)
            .with_context(|| format!("cannot remove the copy-up symlink {}", p.display())),
        _ => Ok(()),
    }
}

/// Replaces `dst` (a copy-up symlink or nothing) by a directory and binds `src` over it.
fn bind(src: &Path, dst: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(src)
        .with_context(|| format!("cannot create {}", src.display()))?;
    remove_symlink(dst)?;
    std::fs::create_dir_all(dst)
        .with_context(|| format!("cannot create {} inside the launcher", dst.display()))?;
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "cannot bind {} over {} inside the launcher",
            src.display(),
            dst.display()
        )
    })
}
