//! --enable-sandbox and --enable-seccomp: what burrow-slirp gives up once its tap, API socket and
//! resolver are in hand (a private mount namespace on an empty root, no capabilities, and a
//! system-call allowlist).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Moves into a private mount namespace whose root is an empty tmpfs and drops every capability.
/// Must run before any thread is started (joining a user namespace needs a single thread).
pub fn enter(userns: Option<&Path>) -> anyhow::Result<()> {
    // A mount namespace needs CAP_SYS_ADMIN in our user namespace: join the target's (we stay in
    // the host's network namespace) or, without one, make our own.
    let joined = match userns {
        Some(p) => {
            let f = std::fs::File::open(p)
                .with_context(|| format!("--enable-sandbox: cannot open {}", p.display()))?;
            match setns(&f, CloneFlags::CLONE_NEWUSER) {
                Ok(()) => true,
                // Already in it.
                Err(nix::errno::Errno::EINVAL) => false,
                Err(e) => {
                    return Err(e).context("--enable-sandbox: cannot join the user namespace")
                }
            }
        }
        None => false,
    };
    if !joined {
        unshare(CloneFlags::CLONE_NEWUSER)
            .context("--enable-sandbox: cannot create a user namespace")?;
    }
    unshare(CloneFlags::CLONE_NEWNS)
        .context("--enable-sandbox: cannot create a mount namespace")?;
    let none: Option<&str> = None;
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
    .context("--enable-sandbox: cannot mount the empty root")?;
    std::fs::create_dir(root.join("old")).context("--enable-sandbox: mkdir")?;
    nix::unistd::pivot_root(root, &root.join("old")).context("--enable-sandbox: pivot_root")?;
    nix::unistd::chdir("/").context("--enable-sandbox: chdir /")?;
    umount2("/old", MntFlags::MNT_DETACH)
        .context("--enable-sandbox: cannot detach the old root")?;
    let _ = std::fs::remove_dir("/old");
    drop_capabilities()
}

fn drop_capabilities() -> anyhow::Result<()> {
    for cap in caps::all() {
        caps::drop(None, caps::CapSet::Bounding, cap).with_context(|| {
            format!("--enable-sandbox: cannot drop {cap} from the bounding set")
        })?;
    }
    for set in [
        caps::CapSet::Inheritable,
        caps::CapSet::Effective,
        caps::CapSet::Permitted,
    ] {
        caps::clear(None, set).context("--enable-sandbox: cannot clear capabilities")?;
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
