//! --enable-sandbox and --enable-seccomp: what burrow-slirp gives up once its tap, API socket and
//! resolver are in hand (a private mount namespace on a tmpfs root with only /etc and /run, no
//! capability but CAP_NET_BIND_SERVICE, and a system-call allowlist).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Moves into a private mount namespace whose root is a small tmpfs holding read-only binds of
/// /etc and /run (as slirp4netns's sandbox), and keeps no capability but CAP_NET_BIND_SERVICE.
/// Must run before any thread is started (joining a user namespace needs a single thread).
pub fn enter(userns: Option<&Path>) -> anyhow::Result<()> {
    enter_user_namespace(userns)?;
    unshare(CloneFlags::CLONE_NEWNS)
        .context("--enable-sandbox: cannot create a mount namespace")?;
    let none: Option<&str> = None;
    // Recursively private: nothing done below (above all the detach of the old root) can
    // propagate back to the mounts of the namespace we came from.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .context("--enable-sandbox: cannot make mounts private")?;
    let root = Path::new("/tmp");
    mount(
        Some("tmpfs"),
        root,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )
    .context("--enable-sandbox: cannot mount a tmpfs on /tmp for the new root")?;
    for d in ["etc", "run", "old"] {
        std::fs::create_dir(root.join(d))
            .with_context(|| format!("--enable-sandbox: cannot create /tmp/{d}"))?;
    }
    bind_read_only(Path::new("/etc"), &root.join("etc"))?;
    bind_read_only(Path::new("/run"), &root.join("run"))?;
    nix::unistd::chdir(root).context("--enable-sandbox: chdir /tmp")?;
    nix::unistd::pivot_root(".", "old").context("--enable-sandbox: pivot_root")?;
    nix::unistd::chdir("/").context("--enable-sandbox: chdir /")?;
    umount2("/old", MntFlags::MNT_DETACH)
        .context("--enable-sandbox: cannot detach the old root")?;
    std::fs::remove_dir("/old").context("--enable-sandbox: cannot remove /old")?;
    // As slirp4netns: a read-only root is a bonus, not a requirement.
    if let Err(e) = mount(
        Some("tmpfs"),
        "/",
        Some("tmpfs"),
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        none,
    ) {
        tracing::debug!("--enable-sandbox: cannot make the new root read-only: {e}");
    }
    nix::sys::prctl::set_no_new_privs().context("--enable-sandbox: no_new_privs")?;
    keep_only_net_bind_service()
}

/// Gains the capabilities the mount namespace needs: as (namespaced) root, nothing to do; else
/// join the target's user namespace (slirp4netns's way) or, with none known, a new one mapping
/// our own ids to root.
fn enter_user_namespace(userns: Option<&Path>) -> anyhow::Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    if let Some(p) = userns {
        let f = std::fs::File::open(p)
            .with_context(|| format!("--enable-sandbox: cannot open {}", p.display()))?;
        return match setns(&f, CloneFlags::CLONE_NEWUSER) {
            // EINVAL: we are in it already.
            Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
            Err(e) => Err(e).with_context(|| {
                format!(
                    "--enable-sandbox: cannot join the user namespace {}",
                    p.display()
                )
            }),
        };
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER)
        .context("--enable-sandbox: cannot create a user namespace")?;
    std::fs::write("/proc/self/setgroups", "deny")
        .context("--enable-sandbox: cannot write /proc/self/setgroups")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))
        .context("--enable-sandbox: cannot write /proc/self/uid_map")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))
        .context("--enable-sandbox: cannot write /proc/self/gid_map")?;
    Ok(())
}

/// Bind-mounts `from` (with what is mounted below it) on `to`, read-only where the kernel
/// lets us (locked mount flags may forbid it in a user namespace).
fn bind_read_only(from: &Path, to: &Path) -> anyhow::Result<()> {
    let none: Option<&str> = None;
    mount(
        Some(from),
        to,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .with_context(|| {
        format!(
            "--enable-sandbox: cannot bind {} on {}",
            from.display(),
            to.display()
        )
    })?;
    let ro = MsFlags::MS_REMOUNT
        | MsFlags::MS_BIND
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(Some(from), to, none, ro, none) {
        tracing::debug!("--enable-sandbox: {} stays writable: {e}", to.display());
    }
    Ok(())
}

/// Drops every capability but CAP_NET_BIND_SERVICE (as slirp4netns keeps, so the API can
/// still publish low ports where the host allows it) from all sets, ambient cleared.
fn keep_only_net_bind_service() -> anyhow::Result<()> {
    use caps::{CapSet, Capability};
    let keep = Capability::CAP_NET_BIND_SERVICE;
    caps::clear(None, CapSet::Ambient)
        .context("--enable-sandbox: cannot clear ambient capabilities")?;
    for cap in caps::all() {
        if cap != keep {
            caps::drop(None, CapSet::Bounding, cap).with_context(|| {
                format!("--enable-sandbox: cannot drop {cap} from the bounding set")
            })?;
        }
    }
    let only: caps::CapsHashSet = [keep].into_iter().collect();
    let has = caps::has_cap(None, CapSet::Permitted, keep).unwrap_or(false);
    let target = if has { only } else { caps::CapsHashSet::new() };
    for set in [CapSet::Effective, CapSet::Inheritable, CapSet::Permitted] {
        caps::set(None, set, &target)
            .with_context(|| format!("--enable-sandbox: cannot set the {set:?} capabilities"))?;
    }
    Ok(())
}

/// The system calls burrow-slirp makes once running (its stack thread, the API thread and the
/// runtime underneath); everything else fails with EPERM.
fn allowed() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_ppoll,
        // The stack's loop waits in epoll (its set is made after the filter is in place).
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        libc::SYS_getsockopt,
        libc::SYS_setsockopt,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendmmsg,
        libc::SYS_recvmmsg,
        libc::SYS_shutdown,
        libc::SYS_fcntl,
        libc::SYS_ioctl,
        libc::SYS_pipe2,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sigaltstack,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_yield,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_tgkill,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_getrandom,
        libc::SYS_prctl,
        libc::SYS_restart_syscall,
        libc::SYS_statx,
        libc::SYS_newfstatat,
        libc::SYS_fstat,
        libc::SYS_lseek,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_poll, libc::SYS_pipe]);
    v
}

/// Installs the allowlist for this thread and every thread started after (no new privileges).
pub fn seccomp() -> anyhow::Result<()> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| anyhow::anyhow!("--enable-seccomp: {e:?}"))?;
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        allowed().into_iter().map(|s| (s, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| anyhow::anyhow!("--enable-seccomp: {e}"))?;
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e| anyhow::anyhow!("--enable-seccomp: {e:?}"))?;
    nix::sys::prctl::set_no_new_privs().context("--enable-seccomp: no_new_privs")?;
    seccompiler::apply_filter(&prog).map_err(|e| anyhow::anyhow!("--enable-seccomp: {e}"))?;
    Ok(())
}
