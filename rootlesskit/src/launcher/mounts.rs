//! The child's mount namespace: propagation, copy-up of directories (tmpfs + symlinks to the
//! originals), the namespace's resolv.conf and hosts, and a fresh /proc for a PID namespace.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, MsFlags};

use super::cli::Propagation;

/// Sets the propagation of every mount in the new namespace.
pub fn set_propagation(p: Propagation) -> anyhow::Result<()> {
    let flag = match p {
        Propagation::Rprivate => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Propagation::Rslave => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Propagation::Rshared => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Shared => MsFlags::MS_SHARED,
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .context("cannot set the mount propagation of / in the new mount namespace")
}

/// Makes `dir` writable: a tmpfs over it holding symlinks to its original entries, which stay
/// reachable under DIR/.ro<suffix> (the original directory, moved there as a bind mount).
pub fn copy_up(dir: &Path) -> anyhow::Result<()> {
    let stage_base = std::env::temp_dir();
    if stage_base.starts_with(dir) {
        anyhow::bail!(
            "--copy-up={}: copying up a directory holding {} is not supported",
            dir.display(),
            stage_base.display()
        );
    }
    let stage = nix::unistd::mkdtemp(&stage_base.join(".burrow-rootlesskit-b.XXXXXX"))
        .with_context(|| {
            format!(
                "--copy-up={}: cannot create a staging directory in {}",
                dir.display(),
                stage_base.display()
            )
        })?;
    let res = copy_up_via(dir, &stage);
    let _ = fs::remove_dir(&stage);
    res
}

fn copy_up_via(dir: &Path, stage: &Path) -> anyhow::Result<()> {
    mount(
        Some(dir),
        stage,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("--copy-up={}: cannot bind-mount it aside", dir.display()))?;
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755"),
    )
    .with_context(|| format!("--copy-up={}: cannot mount a tmpfs over it", dir.display()))?;
    let ro_name = format!(".ro{:08x}", std::process::id().wrapping_mul(2654435761));
    let ro = dir.join(&ro_name);
    fs::create_dir(&ro).with_context(|| format!("cannot create {}", ro.display()))?;
    mount(
        Some(stage),
        &ro,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "cannot move the original {} onto {}",
            dir.display(),
            ro.display()
        )
    })?;
    for entry in fs::read_dir(&ro).with_context(|| format!("cannot list {}", ro.display()))? {
        let name = entry?.file_name();
        let link = dir.join(&name);
        symlink(Path::new(&ro_name).join(&name), &link)
            .with_context(|| format!("cannot create the symlink {}", link.display()))?;
    }
    Ok(())
}

/// Puts `content` at `target` inside the namespace: written to `staged` (in the state dir) and
/// bind-mounted over `target`, replacing a copy-up symlink by a plain file first.
pub fn bind_file(staged: &Path, content: &str, target: &Path) -> anyhow::Result<()> {
    fs::write(staged, content).with_context(|| format!("cannot write {}", staged.display()))?;
    if let Ok(meta) = fs::symlink_metadata(target) {
        if meta.file_type().is_symlink() {
            // A copy-up symlink (or a distribution's link into /run): replace it with a file of our own.
            if fs::remove_file(target).is_ok() {
                fs::write(target, "")
                    .with_context(|| format!("cannot create {}", target.display()))?;
            }
        }
    } else {
        fs::write(target, "").with_context(|| format!("cannot create {}", target.display()))?;
    }
    mount(
        Some(staged),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "cannot bind-mount {} over {}",
            staged.display(),
            target.display()
        )
    })
}

/// Mounts a /proc that shows the new PID namespace.
pub fn mount_proc() -> anyhow::Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .context("cannot mount /proc for the new PID namespace")
}

/// A fresh sysfs on /sys for the child's own network namespace, as RootlessKit mounts one:
/// `/sys/class/net` then lists the namespace's interfaces (lo, tap0), not the host's. The
/// cgroup mounts under /sys/fs/cgroup are kept (moved aside and back). When the kernel refuses
/// the mount, the host's /sys stays, with a warning.
pub fn remount_sysfs() {
    let cgroup = Path::new("/sys/fs/cgroup");
    let aside = match nix::unistd::mkdtemp(
        &std::env::temp_dir().join(".burrow-rootlesskit-sys.XXXXXX"),
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("burrow-rootlesskit: warning: /sys stays the host's (cannot make a temporary directory: {e})");
            return;
        }
    };
    let had_cgroup = cgroup.is_dir()
        && mount(
            Some(cgroup),
            &aside,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .is_ok();
    let mounted = mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    );
    if let Err(e) = mounted {
        eprintln!("burrow-rootlesskit: warning: /sys stays the host's (mounting a sysfs for the network namespace: {e})");
    } else if had_cgroup {
        if let Err(e) = mount(
            Some(&aside),
            cgroup,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        ) {
            eprintln!("burrow-rootlesskit: warning: /sys/fs/cgroup is missing from the namespace's /sys: {e}");
        }
    }
    if had_cgroup {
        let _ = nix::mount::umount2(&aside, nix::mount::MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir(&aside);
}

/// The namespace's /etc/hosts: the host's (its names stay resolvable, as under RootlessKit),
/// then the host name on the child's address.
pub fn hosts_content(child_ip: Option<std::net::IpAddr>) -> String {
    let host = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts_text(&host, child_ip)
}

fn hosts_text(host: &str, child_ip: Option<std::net::IpAddr>) -> String {
    let mut s = if host.trim().is_empty() {
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    } else {
        let mut h = host.to_string();
        if !h.ends_with('\n') {
            h.push('\n');
        }
        h
    };
    if let (Some(ip), Ok(h)) = (child_ip, nix::unistd::gethostname()) {
        if let Some(h) = h.to_str().filter(|h| !h.is_empty()) {
            s.push_str(&format!("{ip}\t{h}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::hosts_text;

    #[test]
    fn hosts_keep_the_hosts_entries() {
        let ip = Some("10.0.2.100".parse().unwrap());
        let got = hosts_text("127.0.0.1 localhost\n192.0.2.7 registry.lan", ip);
        assert!(
            got.starts_with("127.0.0.1 localhost\n192.0.2.7 registry.lan\n"),
            "{got}"
        );
        assert!(
            got.lines().last().unwrap().starts_with("10.0.2.100\t"),
            "{got}"
        );
        assert!(hosts_text("", ip).starts_with("127.0.0.1\tlocalhost\n"));
    }
}
