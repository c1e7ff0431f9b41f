//! The launcher's parent stage: locks the state dir, starts the child stage, writes its id maps,
//! starts the network and port drivers and the API, publishes child_pid, forwards signals and
//! exits with the command's status.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;

use anyhow::{bail, Context};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, sigprocmask, SigmaskHow};
use nix::unistd::{getegid, geteuid, getpid, pipe2, Pid};

use super::child::{LISTEN_ENV, PPID_ENV, STATE_ENV};
use super::cli::{Flags, Net, PortDriverKind};
use super::state::StateDir;
use super::sync::{self, Channel};
use super::{idmap, pidns, slirp};
use crate::api::{self, ApiInfo, NetworkDriverInfo};
use crate::port::builtin::BuiltinDriver;
use crate::port::PortDriver;

/// Kills and reaps the child stage unless disarmed (start-up failed half-way).
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Copies the tap the child stage opened (the one fd of it on /dev/net/tun) and starts the
/// embedded stack on it.
fn start_stack(flags: &Flags, pid: Pid) -> anyhow::Result<burrow_netstack::StackHandle> {
    let dir = format!("/proc/{pid}/fd");
    let fd = std::fs::read_dir(&dir)
        .with_context(|| format!("--net=builtin: cannot list {dir}"))?
        .filter_map(Result::ok)
        .find(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t == std::path::Path::new("/dev/net/tun"))
        })
        .and_then(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .context("--net=builtin: the child stage holds no tap device")?;
    let tap = super::sys::take_fd_of(pid.as_raw(), fd).context(
        "--net=builtin: cannot copy the tap device out of the child stage (pidfd_getfd needs \
         Linux >= 5.6 and ptrace access to our own child: check kernel.yama.ptrace_scope <= 1)",
    )?;
    let cfg = burrow_netstack::StackConfig {
        cidr: (flags.cidr.network, flags.cidr.prefix),
        mtu: flags.mtu() as usize,
        disable_host_loopback: flags.disable_host_loopback,
        dns_upstream: flags.dns_upstream,
        disable_dns: false,
        ipv6: flags.ipv6,
        ..Default::default()
    };
    burrow_netstack::spawn_stack(tap, cfg).map_err(|e| anyhow::anyhow!("--net=builtin: {e}"))
}

/// Runs the launcher; returns the command's exit code.
pub fn run(flags: Flags) -> anyhow::Result<i32> {
    flags.validate().map_err(anyhow::Error::msg)?;
    if flags.port_driver == PortDriverKind::Slirp4netns && flags.net != Net::Slirp4netns {
        bail!("--port-driver=slirp4netns needs --net=slirp4netns (slirp4netns itself publishes the ports); use --port-driver=builtin otherwise");
    }
    let state = StateDir::open(flags.state_dir.as_deref())?;

    // Block the signals we forward before any thread exists, so every thread inherits the mask and
    // only the forwarding thread receives them (through sigwait).
    let fwd = pidns::signal_set(false);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&fwd), None).context("cannot block signals")?;

    let (c_rx, p_tx) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    let (p_rx, c_tx) = pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    sync::inheritable(&c_rx)?;
    sync::inheritable(&c_tx)?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("burrow-rootlesskit")
        .args(std::env::args_os().skip(1))
        .env(sync::CHILD_ENV, sync::env_value(&c_rx, &c_tx))
        .env(PPID_ENV, getpid().to_string())
        .env(STATE_ENV, &state.path)
        .env("ROOTLESSKIT_STATE_DIR", &state.path)
        .env("ROOTLESSKIT_PARENT_EUID", geteuid().to_string())
        .env("ROOTLESSKIT_PARENT_EGID", getegid().to_string());
    if std::env::var("LISTEN_PID").ok().as_deref() == Some(&getpid().to_string()) {
        cmd.env(LISTEN_ENV, "1");
    }
    let spawned = cmd
        .spawn()
        .context("cannot start the launcher's child process");
    drop(c_rx);
    drop(c_tx);
    let child = spawned?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut guard = ChildGuard(Some(child));
    let mut chan = Channel::new(p_rx, p_tx);

    macro_rules! step {
        ($want:expr) => {
            if !chan.expect($want)? {
                // The child failed and said why; report its status.
                let st = guard.0.take().map(|mut c| c.wait());
                return Ok(match st {
                    Some(Ok(s)) => s.code().unwrap_or(1).max(1),
                    _ => 1,
                });
            }
        };
    }

    step!(sync::UNSHARED);
    idmap::write_maps(pid, flags.subid_source)?;
    chan.send(sync::MAPPED)?;
    step!(sync::NETNS);
    // A detached netns is bind-mounted inside the child's mount namespace only: the parent
    // reaches it through the child's root.
    let netns_path: PathBuf = if flags.detach_netns {
        let file = state.file("netns");
        PathBuf::from(format!("/proc/{pid}/root"))
            .join(file.strip_prefix("/").unwrap_or(file.as_path()))
    } else {
        PathBuf::from(format!("/proc/{pid}/ns/net"))
    };
    let _slirp = match flags.net {
        Net::Slirp4netns => {
            let userns = PathBuf::from(format!("/proc/{pid}/ns/user"));
            let target = if flags.detach_netns {
                slirp::Target::Path {
                    userns: &userns,
                    netns: &netns_path,
                }
            } else {
                slirp::Target::Pid(pid.as_raw())
            };
            let api = (flags.port_driver == PortDriverKind::Slirp4netns)
                .then(|| state.file("slirp4netns.sock"));
            Some(slirp::start(
                &flags,
                target,
                api,
                &state.file("slirp4netns.log"),
            )?)
        }
        _ => None,
    };
    let stack = match flags.net {
        Net::Builtin => Some(Arc::new(start_stack(&flags, pid)?)),
        _ => None,
    };
    chan.send(sync::NET)?;
    step!(sync::READY);
    // With --pidns, the child names the namespace's PID 1: child_pid and the API give it.
    let ns_pid = if flags.pidns {
        Pid::from_raw(chan.expect_pid()?)
    } else {
        pid
    };

    let driver: Option<Arc<dyn PortDriver>> = match flags.port_driver {
        PortDriverKind::Builtin => {
            let fd: OwnedFd = File::open(&netns_path)
                .with_context(|| {
                    format!(
                        "cannot open the child's network namespace {}",
                        netns_path.display()
                    )
                })?
                .into();
            let d: Arc<dyn PortDriver> =
                BuiltinDriver::new(fd).map_err(|e| anyhow::anyhow!("{e}"))?;
            Some(d)
        }
        PortDriverKind::Slirp => {
            let stack = stack
                .clone()
                .context("--port-driver=slirp needs --net=builtin")?;
            let d: Arc<dyn PortDriver> = Arc::new(crate::port::slirp::SlirpDriver::new(
                stack,
                flags.cidr.child_ip(),
            ));
            Some(d)
        }
        PortDriverKind::Slirp4netns => {
            let d: Arc<dyn PortDriver> =
                Arc::new(crate::port::slirp4netns::Slirp4netnsDriver::new(
                    state.file("slirp4netns.sock"),
                    flags.cidr.child_ip(),
                    flags.disable_host_loopback,
                ));
            Some(d)
        }
        _ => None,
    };
    if let Some(d) = &driver {
        for spec in &flags.publish {
            d.add(spec.clone())
                .map_err(|e| anyhow::anyhow!("cannot publish {spec}: {e}"))?;
        }
    }
    let (driver_name, dns, child_ip) = match flags.net {
        Net::Slirp4netns | Net::Builtin => (
            if flags.net == Net::Slirp4netns {
                "slirp4netns"
            } else {
                "builtin"
            },
            vec![flags.cidr.dns().into()],
            Some(flags.cidr.child_ip().into()),
        ),
        Net::None => ("none", vec![], None),
        Net::Host => ("host", vec![], None),
    };
    let _api = api::serve(
        &state.file("api.sock"),
        ApiInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            state_dir: state.path.clone(),
            child_pid: ns_pid.as_raw(),
            network_driver: NetworkDriverInfo {
                driver: driver_name.into(),
                dns,
                child_ip,
            },
            port_driver: driver.clone(),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    state.write("child_pid", &ns_pid.to_string())?;
    chan.send(sync::GO)?;
    drop(chan);

    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if let Ok(sig) = fwd.wait() {
                tracing::debug!("forwarding {sig:?} to {pid}");
                let _ = kill(pid, sig);
            }
        })
        .context("cannot start the signal thread")?;

    let mut child = guard.0.take().expect("child present");
    let status = child.wait().context("cannot wait for the child")?;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    };
    drop(_api);
    if let Some(d) = &driver {
        for p in d.list() {
            let _ = d.remove(p.id);
        }
    }
    drop(driver);
    drop(stack);
    state.cleanup();
    Ok(code)
}
