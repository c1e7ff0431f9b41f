//! Runs slirp4netns (or a compatible binary such as burrow-slirp) for `--net=slirp4netns`: it
//! creates the tap device in the child's namespace and serves it; it exits when we do.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::cli::{Flags, Tristate};
use super::sync::{cloexec, inheritable};

/// A running slirp4netns; dropping it closes the exit fd (slirp4netns then exits) and reaps it.
pub struct Slirp {
    child: Child,
    exit_fd: Option<OwnedFd>,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        drop(self.exit_fd.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if std::time::Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }
}

fn supports(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).contains(flag)
                || String::from_utf8_lossy(&o.stderr).contains(flag)
        })
        .unwrap_or(false)
}

fn wanted(t: Tristate, binary: &Path, flag: &str) -> anyhow::Result<bool> {
    Ok(match t {
        Tristate::False => false,
        Tristate::Auto => supports(binary, flag),
        Tristate::True => {
            if !supports(binary, flag) {
                bail!(
                    "{} does not support {flag}: use a newer slirp4netns, or =auto/=false",
                    binary.display()
                );
            }
            true
        }
    })
}

/// Whose network namespace slirp4netns serves.
pub enum Target<'a> {
    /// The child's own namespaces, by pid (slirp4netns joins them itself, as RootlessKit has it do).
    Pid(i32),
    /// A detached network namespace file, entered through the child's user namespace.
    Path { userns: &'a Path, netns: &'a Path },
}

/// Starts slirp4netns for `target` and waits until its tap device is up. Its messages go to
/// `log` (the state dir's slirp4netns.log) unless `--debug` asked for them on stderr.
pub fn start(
    flags: &Flags,
    target: Target<'_>,
    api_socket: Option<PathBuf>,
    log: &Path,
) -> anyhow::Result<Slirp> {
    let bin = &flags.slirp4netns_binary;
    let mut sandbox = wanted(flags.slirp4netns_sandbox, bin, "--enable-sandbox")?;
    if sandbox && matches!(target, Target::Path { .. }) {
        // slirp4netns's sandbox cannot be combined with --userns-path (it fails in setegid).
        if flags.slirp4netns_sandbox == Tristate::True {
            bail!("--slirp4netns-sandbox=true cannot be combined with --detach-netns: use =auto or =false");
        }
        sandbox = false;
    }
    let seccomp = wanted(flags.slirp4netns_seccomp, bin, "--enable-seccomp")?;
    let (ready_r, ready_w) =
        pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe for slirp4netns")?;
    let (exit_r, exit_w) =
        pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe for slirp4netns")?;
    inheritable(&ready_w)?;
    inheritable(&exit_r)?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--mtu={}", flags.mtu()))
        .arg(format!("--cidr={}", flags.cidr))
        .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
        .arg(format!("--exit-fd={}", exit_r.as_raw_fd()));
    if flags.disable_host_loopback {
        cmd.arg("--disable-host-loopback");
    }
    if flags.ipv6 {
        cmd.arg("--enable-ipv6");
    }
    if sandbox {
        cmd.arg("--enable-sandbox");
    }
    if seccomp {
        cmd.arg("--enable-seccomp");
    }
    if let Some(sock) = api_socket {
        cmd.arg(format!("--api-socket={}", sock.display()));
    }
    match target {
        Target::Pid(pid) => {
            cmd.arg(pid.to_string());
        }
        Target::Path { userns, netns } => {
            cmd.arg(format!("--userns-path={}", userns.display()))
                .arg("--netns-type=path")
                .arg(netns);
        }
    }
    let stderr = if flags.debug {
        Stdio::inherit()
    } else {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            Ok(f) => Stdio::from(f),
            Err(_) => Stdio::null(),
        }
    };
    cmd.arg(&flags.ifname)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    tracing::debug!("starting {cmd:?}");
    let spawned = cmd.spawn();
    drop(ready_w);
    drop(exit_r);
    let child = match spawned {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} not found: install slirp4netns (apt-get install slirp4netns), point --slirp4netns-binary at it, or use --net=builtin",
            bin.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot start {}", bin.display())),
    };
    cloexec(&exit_w)?;
    let mut slirp = Slirp {
        child,
        exit_fd: Some(exit_w),
    };
    let mut ready = File::from(ready_r);
    let mut buf = [0u8; 1];
    let n = ready.read(&mut buf).unwrap_or(0);
    if n == 1 && buf[0] == b'1' {
        return Ok(slirp);
    }
    let status = slirp.child.wait().ok();
    let said = if flags.debug {
        "its messages are above".to_owned()
    } else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("it said: {}", tail.join(" | "))
    };
    bail!(
        "{} exited before its network was ready ({}); {said}",
        bin.display(),
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown status".into())
    );
}
