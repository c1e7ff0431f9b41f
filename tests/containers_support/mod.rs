//! Shared by the container integration tests: a private rootful containerd with the test images
//! imported, a rootless containerd under Debian's RootlessKit for the test user (nerdctl's
//! layout, in a private runtime dir), and running the built `burrow` against either.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout, wait_for, Cleanup, TestMachine};

pub const LAYOUT: &str = "/var/lib/burrow-test/images/layout";
pub const IMPORTED_PREFIX: &str = "burrow-import";

pub fn is_root() -> bool {
    nix_euid() == 0
}

fn nix_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}

pub fn burrow_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_burrow"))
}

/// The built binary copied where the test user can run it, once per test process (parallel
/// tests copying it at once would race).
pub fn installed_burrow(machine: &TestMachine) -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // `burrow setup install` finds the launcher and burrow-bypass next to burrow.
        for helper in ["burrow-rootlesskit", "burrow-bypass"] {
            let path = burrow_exe().with_file_name(helper);
            if path.exists() {
                machine.install_bin(&path);
            }
        }
        machine.install_bin(burrow_exe())
    })
    .clone()
}

/// A tar of the provisioned OCI layout, readable by everyone.
pub fn images_tar(dir: &Path) -> PathBuf {
    let tar = dir.join("images.tar");
    let mut t = Command::new("tar");
    t.arg("-C").arg(LAYOUT).arg("-cf").arg(&tar).arg(".");
    expect_success(
        &run_with_timeout(&mut t, Duration::from_secs(60)),
        "tar the image layout",
    );
    let _ = std::fs::set_permissions(&tar, std::os::unix::fs::PermissionsExt::from_mode(0o644));
    tar
}

/// The name `ctr images import --base-name` gives a layout entry.
pub fn image(name: &str) -> String {
    format!("{IMPORTED_PREFIX}:{name}")
}

/// A private rootful containerd (own socket, root, state), the images imported, and burrow's
/// data root and CNI config dir of its own.
pub struct Rootful {
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub data: PathBuf,
    pub netconf: PathBuf,
    _cleanup: Cleanup,
}

pub fn rootful(name: &str) -> Option<Rootful> {
    if !is_root() || !Path::new("/usr/bin/containerd").exists() || !Path::new(LAYOUT).exists() {
        eprintln!("SKIP: needs root, containerd and the provisioned images in {LAYOUT}");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("burrow-ct-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("containerd.sock");
    let config = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{s}.ttrpc\"\n",
        d = dir.display(),
        s = sock.display()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let mut cleanup = Cleanup::new();
    cleanup.remove_dir(&dir);
    // Containers first (their tasks, shims, networks through the poststop hook), then mounts.
    let mut teardown = Command::new("sh");
    teardown.arg("-c").arg(format!(
        "export NETCONFPATH={d}/net.d; for c in $(ctr -a {s} -n default c ls -q 2>/dev/null); do \
         {b} --address {s} --data-root {d}/data rm -f $c; done; \
         for p in $(pgrep -f -- '-address {s}$'); do kill -9 $p; done; \
         grep -o ' {d}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true",
        d = dir.display(),
        s = sock.display(),
        b = burrow_exe().display()
    ));
    cleanup.run_on_drop(teardown);
    let mut cmd = Command::new("containerd");
    cmd.arg("--config").arg(dir.join("config.toml"));
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cleanup.spawn(&mut cmd);
    assert!(
        wait_for(Duration::from_secs(30), || sock.exists()),
        "containerd did not create {}",
        sock.display()
    );
    let tar = images_tar(&dir);
    let mut import = Command::new("ctr");
    import
        .arg("-a")
        .arg(&sock)
        .args([
            "-n",
            "default",
            "images",
            "import",
            "--base-name",
            IMPORTED_PREFIX,
        ])
        .arg(&tar);
    expect_success(
        &run_with_timeout(&mut import, Duration::from_secs(120)),
        "ctr images import",
    );
    Some(Rootful {
        data: dir.join("data"),
        netconf: dir.join("net.d"),
        dir,
        sock,
        _cleanup: cleanup,
    })
}

impl Rootful {
    /// burrow against this containerd, to spawn as the test likes.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(burrow_exe());
        cmd.arg("--address")
            .arg(&self.sock)
            .arg("--data-root")
            .arg(&self.data)
            .args(args)
            .env("NETCONFPATH", &self.netconf)
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE");
        cmd
    }

    /// [`Self::command`] as a shell command prefix, for tests that run burrow under sh or
    /// script(1): `NETCONFPATH=... burrow --address ... --data-root ...`.
    pub fn shell_prefix(&self) -> String {
        format!(
            "NETCONFPATH={} {} --address {} --data-root {}",
            self.netconf.display(),
            burrow_exe().display(),
            self.sock.display(),
            self.data.display()
        )
    }

    pub fn burrow(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), Duration::from_secs(120))
    }

    pub fn ctr(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.sock)
            .args(["-n", "default"])
            .args(args);
        expect_success(&run_with_timeout(&mut cmd, Duration::from_secs(30)), "ctr")
    }
}

/// A rootless containerd for the test user under Debian's RootlessKit, laid out as nerdctl's
/// containerd-rootless.sh does (user dirs bound over /run/containerd and /var/lib/cni), with a
/// private XDG_RUNTIME_DIR and HOME so it never touches the user's real one.
pub struct Rootless {
    pub machine: TestMachine,
    pub dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub home: PathBuf,
    pub burrow: PathBuf,
    _cleanup: Cleanup,
}

pub fn rootless(name: &str) -> Option<Rootless> {
    rootless_with(
        name,
        None,
        &[
            "--net=slirp4netns",
            "--mtu=65520",
            "--disable-host-loopback",
            "--port-driver=builtin",
        ],
    )
}

/// [`rootless`] under `launcher` (None: Debian's `rootlesskit`) with these network and port
/// flags; the copy-ups, propagation and child script are nerdctl's containerd-rootless.sh's.
pub fn rootless_with(name: &str, launcher: Option<&Path>, net_flags: &[&str]) -> Option<Rootless> {
    let machine = TestMachine::get()?;
    if !is_root() || !Path::new("/usr/bin/rootlesskit").exists() || !Path::new(LAYOUT).exists() {
        eprintln!("SKIP: needs root (to prepare the test user's dirs), rootlesskit and {LAYOUT}");
        return None;
    }
    let dir = PathBuf::from(format!("/tmp/burrow-ctrl-{name}-{}", std::process::id()));
    let runtime_dir = dir.join("rt");
    let home = dir.join("home");
    std::fs::create_dir_all(&runtime_dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let chown = |p: &Path| {
        let mut c = Command::new("chown");
        c.arg("-R")
            .arg(format!("{}:{}", machine.uid, machine.gid))
            .arg(p);
        expect_success(&run_with_timeout(&mut c, Duration::from_secs(30)), "chown");
    };
    chown(&dir);
    for p in [&dir, &runtime_dir] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let burrow = installed_burrow(&machine);
    let config = format!(
        "version = 2\nroot = \"{h}/.local/share/containerd\"\nstate = \"{r}/containerd-state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = \"{r}/containerd/containerd.sock\"\n[ttrpc]\n  address = \"{r}/containerd/containerd.sock.ttrpc\"\n",
        h = home.display(),
        r = runtime_dir.display()
    );
    std::fs::write(home.join("containerd.toml"), config).unwrap();
    chown(&home);
    let child = format!(
        "if [ -L /run/cni ]; then rm -f /run/cni; fi; \
         mkdir -p {h}/.local/share/cni {r}/containerd && rm -f /var/lib/cni && mkdir -p /var/lib/cni && \
         mount --bind {h}/.local/share/cni /var/lib/cni && rm -f /run/containerd && mkdir -p /run/containerd && \
         mount --bind {r}/containerd /run/containerd && exec containerd --config {h}/containerd.toml",
        h = home.display(),
        r = runtime_dir.display()
    );
    let mut cleanup = Cleanup::new();
    cleanup.remove_dir(&dir);
    let mut cmd = machine.user_command(launcher.unwrap_or(Path::new("rootlesskit")));
    cmd.env("XDG_RUNTIME_DIR", &runtime_dir)
        .env("HOME", &home)
        .arg(format!(
            "--state-dir={}/containerd-rootless",
            runtime_dir.display()
        ))
        .args(net_flags)
        .args([
            "--copy-up=/etc",
            "--copy-up=/run",
            "--copy-up=/var/lib",
            "--propagation=rslave",
            "sh",
            "-c",
        ])
        .arg(child);
    // The launcher's and containerd's own words, shown if the start fails.
    let log_path = dir.join("rootlesskit.log");
    let log = std::fs::File::create(&log_path).unwrap();
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
    let launcher_pid = cleanup.spawn(&mut cmd).id();
    let sock = runtime_dir.join("containerd/containerd.sock");
    // Generous: on two busy cores, with sibling tests starting their own containerds, the
    // start has been seen to take most of 30 s.
    let started = wait_for(Duration::from_secs(90), || {
        sock.exists() && runtime_dir.join("containerd-rootless/child_pid").exists()
    });
    if !started {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let alive = std::fs::read_to_string(format!("/proc/{launcher_pid}/stat"))
            .is_ok_and(|st| !st.contains(") Z "));
        panic!(
            "rootless containerd did not start under {} in {} (launcher pid {launcher_pid} {}); \
             its output ends:\n{}",
            launcher.unwrap_or(Path::new("rootlesskit")).display(),
            runtime_dir.display(),
            if alive { "still running" } else { "exited" },
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let rl = Rootless {
        machine,
        dir: dir.clone(),
        runtime_dir,
        home,
        burrow,
        _cleanup: cleanup,
    };
    let tar = images_tar(&dir);
    let out = rl.user(&[
        "ctr",
        "-a",
        &sock.display().to_string(),
        "images",
        "import",
        "--base-name",
        IMPORTED_PREFIX,
        &tar.display().to_string(),
    ]);
    expect_success(&out, "ctr images import (rootless)");
    Some(rl)
}

impl Rootless {
    /// Runs argv as the test user with this instance's runtime dir and home.
    pub fn user(&self, argv: &[&str]) -> Output {
        let mut cmd = self.machine.user_command(argv[0]);
        cmd.args(&argv[1..])
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("HOME", &self.home)
            .current_dir(&self.home);
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    }

    pub fn burrow(&self, args: &[&str]) -> Output {
        let mut argv = vec![self.burrow.to_str().unwrap()];
        argv.extend_from_slice(args);
        self.user(&argv)
    }

    /// The launcher's published ports (GET /v1/ports on api.sock).
    pub fn launcher_ports(&self) -> String {
        let sock = self.runtime_dir.join("containerd-rootless/api.sock");
        let out = self.user(&[
            "curl",
            "-s",
            "--unix-socket",
            sock.to_str().unwrap(),
            "http://launcher/v1/ports",
        ]);
        expect_success(&out, "GET /v1/ports")
    }

    /// The network interfaces in the launcher's network namespace (`ip -o link`, entered as
    /// root).
    pub fn launcher_links(&self) -> String {
        let pid = std::fs::read_to_string(self.runtime_dir.join("containerd-rootless/child_pid"))
            .unwrap();
        let out = Command::new("nsenter")
            .args(["-t", pid.trim(), "-n", "ip", "-o", "link", "show"])
            .output()
            .unwrap();
        expect_success(&out, "ip link in the launcher's namespace")
    }

    /// `iptables -t nat -S POSTROUTING` in the launcher's network namespace.
    pub fn launcher_postrouting(&self) -> String {
        let pid = std::fs::read_to_string(self.runtime_dir.join("containerd-rootless/child_pid"))
            .unwrap();
        let out = Command::new("nsenter")
            .args([
                "-t",
                pid.trim(),
                "-n",
                "iptables",
                "-t",
                "nat",
                "-S",
                "POSTROUTING",
            ])
            .output()
            .unwrap();
        expect_success(&out, "iptables in the launcher's namespace")
    }

    pub fn ctr(&self, args: &[&str]) -> String {
        let sock = self.runtime_dir.join("containerd/containerd.sock");
        let mut argv = vec!["ctr", "-a", sock.to_str().unwrap()];
        argv.extend_from_slice(args);
        expect_success(&self.user(&argv), "ctr (rootless)")
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        // Remove containers while containerd still runs, so their ports and IPs are released.
        let ids = self.ctr(&["c", "ls", "-q"]);
        for id in ids.split_whitespace() {
            let _ = self.burrow(&["rm", "-f", id]);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The stdout of a command that must have succeeded (the test fails with both outputs if not).
pub fn ok(o: &Output) -> String {
    assert_eq!(code(o), 0, "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    stdout(o)
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A TCP port free on the host right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// GET http://addr/ with curl (retrying while the server starts); the body or None.
pub fn http_get(addr: &str) -> Option<String> {
    let mut body = None;
    wait_for(Duration::from_secs(20), || {
        let mut c = Command::new("curl");
        c.args(["-fsS", "--max-time", "2"])
            .arg(format!("http://{addr}/"));
        let out = run_with_timeout(&mut c, Duration::from_secs(5));
        if out.status.success() {
            body = Some(String::from_utf8_lossy(&out.stdout).to_string());
            true
        } else {
            false
        }
    });
    body
}

/// A non-loopback IPv4 address of this host, if it has one.
pub fn host_ip() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| !a.contains(':') && !a.starts_with("127.") && !a.starts_with("10.4."))
        .map(str::to_string)
}

/// The logging loop the log-follow tests run: `line-0` .. `line-{count-1}`, 20 ms apart.
pub fn numbered_lines_script(count: usize) -> String {
    format!("i=0; while [ $i -lt {count} ]; do echo line-$i; i=$((i+1)); sleep 0.02; done")
}

/// Checks that `logs -f` printed `line-K` .. `line-{count-1}`, each once and in order (the
/// oldest may have rotated away before it started); returns K.
pub fn assert_followed_lines(out: &Output, count: usize) -> usize {
    assert_eq!(code(out), 0, "{}", stderr(out));
    let lines: Vec<String> = stdout(out).lines().map(str::to_string).collect();
    let first: usize = lines
        .first()
        .and_then(|l| l.strip_prefix("line-")?.parse().ok())
        .unwrap_or_else(|| panic!("no output from logs -f: {lines:?}"));
    let want: Vec<String> = (first..count).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        lines, want,
        "each line once, in order, none lost at rotations"
    );
    first
}

/// How many `burrow exec` FIFO dirs a container's state dir still holds.
pub fn exec_fifo_dirs(container_dir: &Path) -> usize {
    std::fs::read_dir(container_dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("fifo-exec-"))
                .count()
        })
        .unwrap_or(0)
}
