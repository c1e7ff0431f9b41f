//! The launcher's child stage (the re-executed launcher): creates the namespaces, configures the
//! network and mounts inside them when the parent says so, then runs the command.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};

use super::cli::{Flags, Net, Tristate};
use super::sync::{self, Channel};
use super::{exec, mounts, netconf, pidns};

/// Env vars the parent sets for the child stage only (removed before the command runs).
pub const PPID_ENV: &str = "_BURROW_ROOTLESSKIT_PPID";
pub const STATE_ENV: &str = "_BURROW_ROOTLESSKIT_STATE";
pub const LISTEN_ENV: &str = "_BURROW_ROOTLESSKIT_LISTEN";

/// Runs the child stage; returns the exit code (the command's, with --pidns).
pub fn run(flags: Flags, mut chan: Channel) -> i32 {
    match stage(&flags, &mut chan) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("burrow-rootlesskit: error: {e:#}");
            1
        }
    }
}

fn stage(flags: &Flags, chan: &mut Channel) -> anyhow::Result<i32> {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .context("cannot set the parent-death signal")?;
    let ppid: i32 = std::env::var(PPID_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if nix::unistd::getppid().as_raw() != ppid {
        bail!("the launcher's parent process exited during start-up");
    }
    let state = PathBuf::from(
        std::env::var_os(STATE_ENV)
            .context("the state directory is missing from the environment")?,
    );

    let mut ns = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS;
    if flags.own_netns() {
        ns |= CloneFlags::CLONE_NEWNET;
    }
    for (on, f) in [
        (flags.pidns, CloneFlags::CLONE_NEWPID),
        (flags.cgroupns, CloneFlags::CLONE_NEWCGROUP),
        (flags.utsns, CloneFlags::CLONE_NEWUTS),
        (flags.ipcns, CloneFlags::CLONE_NEWIPC),
    ] {
        if on {
            ns |= f;
        }
    }
    if let Err(e) = unshare(ns) {
        bail!(
            "cannot create the user namespace ({e}). Unprivileged user namespaces look disabled: \
             check `sysctl user.max_user_namespaces` (must be > 0), \
             `sysctl kernel.unprivileged_userns_clone` (Debian: must be 1) and, on Ubuntu, \
             `sysctl kernel.apparmor_restrict_unprivileged_userns` (0, or an AppArmor profile); \
             `burrow setup check` explains each"
        );
    }
    chan.send(sync::UNSHARED)?;
    if !chan.expect(sync::MAPPED)? {
        return Ok(1);
    }
    let netns_file = state.join("netns");
    if flags.detach_netns {
        detach_netns(&netns_file)?;
    }
    // --net=builtin: the tap is made here, where we hold CAP_NET_ADMIN; the parent copies this
    // fd out of us (pidfd_getfd) and serves it. Ours closes once the parent has its copy.
    let tap = if flags.net == Net::Builtin {
        let (name, mtu) = (flags.ifname.clone(), flags.mtu() as usize);
        let open = move || {
            burrow_netstack::open_tap(&name, mtu).map_err(|e| anyhow::anyhow!("--net=builtin: {e}"))
        };
        Some(if flags.detach_netns {
            in_netns_with(&netns_file, open)?
        } else {
            open()?
        })
    } else {
        None
    };
    chan.send(sync::NETNS)?;
    if !chan.expect(sync::NET)? {
        return Ok(1);
    }
    drop(tap);

    // Network.
    if flags.own_netns() {
        netconf::loopback_up()?;
        if let Some(plan) = plan(flags) {
            netconf::configure(&plan)?;
        }
    } else if flags.detach_netns {
        if let Some(plan) = plan(flags) {
            in_netns(&netns_file, move || netconf::configure(&plan))?;
        }
    }

    // Mounts.
    mounts::set_propagation(flags.propagation)?;
    for d in &flags.copy_up {
        mounts::copy_up(d)?;
    }
    if flags.own_netns() {
        mounts::remount_sysfs();
    }
    if flags.own_netns() && matches!(flags.net, Net::Slirp4netns | Net::Builtin) {
        let mut resolv = format!("nameserver {}\n", flags.cidr.dns());
        if flags.ipv6 {
            resolv.push_str("nameserver fd00::3\n");
        }
        mounts::bind_file(
            &state.join("resolv.conf"),
            &resolv,
            "/etc/resolv.conf".as_ref(),
        )?;
        let hosts = mounts::hosts_content(Some(flags.cidr.child_ip().into()));
        mounts::bind_file(&state.join("hosts"), &hosts, "/etc/hosts".as_ref())?;
    }
    let listen = std::env::var_os(LISTEN_ENV).is_some();
    let cmd = command(&flags.command);
    if flags.pidns {
        // PID 1 of the new namespace is made now and waits for GO: child_pid names it, so
        // `nsenter -p -t $(cat child_pid)` enters the command's PID namespace.
        let reaper = flags.reaper != Tristate::False;
        let pid1 = pidns::start(cmd, reaper, listen)?;
        chan.send(sync::READY)?;
        chan.send_pid(pid1.pid().as_raw())?;
        if !chan.expect(sync::GO)? {
            pid1.abandon();
            return Ok(1);
        }
        drop(std::mem::replace(chan, closed_channel()?));
        return Ok(pid1.go(reaper));
    }
    chan.send(sync::READY)?;
    if !chan.expect(sync::GO)? {
        return Ok(1);
    }
    drop(std::mem::replace(chan, closed_channel()?));
    Ok(exec::exec(cmd, listen))
}

/// A channel over /dev/null, standing in once the real pipes are closed.
fn closed_channel() -> anyhow::Result<Channel> {
    let r = std::fs::File::open("/dev/null")?;
    let w = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    Ok(Channel::new(r.into(), w.into()))
}

fn plan(flags: &Flags) -> Option<netconf::Plan> {
    if !matches!(flags.net, Net::Slirp4netns | Net::Builtin) {
        return None;
    }
    let c = flags.cidr;
    Some(netconf::Plan {
        ifname: flags.ifname.clone(),
        mtu: flags.mtu(),
        v4: (c.child_ip(), c.prefix, c.gateway()),
        v6: flags
            .ipv6
            .then(|| ("fd00::100".parse().unwrap(), 64, "fd00::2".parse().unwrap())),
    })
}

/// Creates a network namespace on a thread of its own and pins it at `file` (bind mount).
fn detach_netns(file: &std::path::Path) -> anyhow::Result<()> {
    std::fs::write(file, "").with_context(|| format!("cannot create {}", file.display()))?;
    let f = file.to_path_buf();
    std::thread::spawn(move || -> anyhow::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)
            .context("cannot create the detached network namespace")?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &f,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "cannot pin the detached network namespace at {}",
                f.display()
            )
        })?;
        netconf::loopback_up()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the netns thread panicked"))?
}

/// Runs `f` on a thread that has joined the network namespace at `file`.
fn in_netns<F>(file: &std::path::Path, f: F) -> anyhow::Result<()>
where
    F: FnOnce() -> anyhow::Result<()> + Send + 'static,
{
    in_netns_with(file, f)
}

/// Runs `f` on a thread that has joined the network namespace at `file`, returning its value.
fn in_netns_with<T, F>(file: &std::path::Path, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    let fd =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    std::thread::spawn(move || -> anyhow::Result<T> {
        setns(&fd, CloneFlags::CLONE_NEWNET)
            .context("cannot enter the detached network namespace")?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the netns thread panicked"))?
}

fn command(argv: &[OsString]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    for k in [sync::CHILD_ENV, PPID_ENV, STATE_ENV, LISTEN_ENV] {
        cmd.env_remove(k);
    }
    cmd
}
