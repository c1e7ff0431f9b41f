//! burrow-rootlesskit as the unprivileged test user, on real namespaces: id maps (subordinate
//! ids and the single-id fallback), copy-up, exit status and signals, the child dying with the
//! parent, the state dir (lock, child_pid, api.sock, restart after SIGKILL), the environment,
//! the network drivers (none, slirp4netns with the gateway to the host's loopback), --pidns,
//! --detach-netns and systemd socket activation.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, spawn_retrying, wait_for, TestMachine};

const T: Duration = Duration::from_secs(60);

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn launcher(m: &TestMachine) -> PathBuf {
    m.install_bin(env!("CARGO_BIN_EXE_burrow-rootlesskit"))
}

/// `burrow-rootlesskit ARGS` as the test user, to completion.
fn run(m: &TestMachine, args: &[&str]) -> Output {
    let mut cmd = m.user_command(launcher(m));
    cmd.args(args);
    run_with_timeout(&mut cmd, T)
}

/// A private state dir the test user owns (under its runtime dir), removed at the end.
struct StateDir(PathBuf);

impl StateDir {
    fn new(m: &TestMachine, name: &str) -> StateDir {
        let p = Path::new(&m.xdg_runtime_dir).join(format!(
            "burrow-test-launcher-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        StateDir(p)
    }

    fn flag(&self) -> String {
        format!("--state-dir={}", self.0.display())
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A launcher running in the background, in a process group of its own; the whole group is
/// killed when dropped, so nothing its command started outlives the test.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        burrow_testsupport::kill_group(self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(m: &TestMachine, args: &[&str]) -> Running {
    let mut cmd = m.user_command(launcher(m));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Running(spawn_retrying(&mut cmd).expect("start burrow-rootlesskit"))
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn read_child_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("child_pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn subid_start(m: &TestMachine, file: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && (f[0] == m.user || f[0] == m.uid.to_string()))
                .then(|| f[1].to_string())
        })
        .expect("the test user has subordinate ids")
}

#[test]
fn maps_come_from_the_subordinate_ids() {
    let Some(m) = TestMachine::get() else { return };
    let out = run(&m, &["cat", "/proc/self/uid_map", "/proc/self/gid_map"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    let uid = m.uid.to_string();
    let gid = m.gid.to_string();
    assert_eq!(rows[0], ["0", uid.as_str(), "1"]);
    assert_eq!(
        rows[1],
        ["1", subid_start(&m, "/etc/subuid").as_str(), "65536"]
    );
    assert_eq!(rows[2], ["0", gid.as_str(), "1"]);
    assert_eq!(
        rows[3],
        ["1", subid_start(&m, "/etc/subgid").as_str(), "65536"]
    );
}

#[test]
fn without_subordinate_ids_only_the_user_is_mapped_with_a_warning() {
    let Some(m) = TestMachine::get() else { return };
    let empty = tempfile::NamedTempFile::new().unwrap();
    std::fs::set_permissions(empty.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = m.user_command(launcher(&m));
    cmd.env("BURROW_ROOTLESSKIT_SUBUID_FILE", empty.path())
        .env("BURROW_ROOTLESSKIT_SUBGID_FILE", empty.path())
        .args(["--subid-source=static", "cat", "/proc/self/uid_map"]);
    let out = run_with_timeout(&mut cmd, T);
    assert!(out.status.success(), "{}", stderr(&out));
    let map: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", m.uid.to_string().as_str(), "1"]);
    assert!(
        stderr(&out).contains("no subordinate ids"),
        "no warning: {}",
        stderr(&out)
    );
}

#[test]
fn copy_up_makes_etc_writable_without_touching_the_hosts() {
    let Some(m) = TestMachine::get() else { return };
    let name = format!("burrow-copyup-{}", std::process::id());
    let script = format!("echo x > /etc/{name} && cat /etc/{name} && test -s /etc/passwd");
    let out = run(&m, &["--copy-up=/etc", "sh", "-c", &script]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "x\n");
    assert!(
        !Path::new("/etc").join(&name).exists(),
        "the host's /etc changed"
    );
    // Without copy-up /etc is the host's, read-only to the namespace's root.
    let out = run(&m, &["sh", "-c", &format!("echo x > /etc/{name}")]);
    assert!(!out.status.success());
}

#[test]
fn exit_status_and_signals_pass_through() {
    let Some(m) = TestMachine::get() else { return };
    let out = run(&m, &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = run(&m, &["no-such-program-here"]);
    assert!(!out.status.success());

    // SIGTERM to the launcher reaches the child, whose status becomes the launcher's.
    let mut r = spawn(
        &m,
        &[
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo up; while :; do sleep 0.1; done",
        ],
    );
    let mut first = [0u8; 3];
    r.0.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = r.0.wait().unwrap();
    assert_eq!(status.code(), Some(42));
}

#[test]
fn the_child_dies_with_the_launcher_and_the_state_dir_can_be_reused() {
    let Some(m) = TestMachine::get() else { return };
    let dir = StateDir::new(&m, "kill");
    let flag = dir.flag();
    let r = spawn(&m, &[&flag, "sleep", "300"]);
    assert!(
        wait_for(T, || read_child_pid(&dir.0).is_some()),
        "no child_pid"
    );
    let child = read_child_pid(&dir.0).unwrap();
    assert!(pid_alive(child));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.0.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(r);
    assert!(
        wait_for(Duration::from_secs(10), || !pid_alive(child)),
        "the child {child} outlived its launcher"
    );
    // Same state dir again after the SIGKILL: it works.
    let out = run(&m, &[&flag, "true"]);
    assert!(
        out.status.success(),
        "restart on the same state dir: {}",
        stderr(&out)
    );
}

#[test]
fn the_state_dir_is_locked_private_and_complete() {
    let Some(m) = TestMachine::get() else { return };
    let dir = StateDir::new(&m, "lock");
    let flag = dir.flag();
    let _r = spawn(
        &m,
        &[
            &flag,
            "--port-driver=builtin",
            "--net=slirp4netns",
            "sh",
            "-c",
            "env > \"$ROOTLESSKIT_STATE_DIR/env.txt\"; exec sleep 300",
        ],
    );
    assert!(
        wait_for(T, || read_child_pid(&dir.0).is_some()),
        "no child_pid"
    );
    let meta = std::fs::metadata(&dir.0).unwrap();
    assert_eq!(meta.uid(), m.uid);
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "state dir open to others"
    );
    let sock = std::fs::metadata(dir.0.join("api.sock")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&sock.file_type()));
    assert!(dir.0.join("lock").exists());

    // A second launcher on the same dir is refused, clearly.
    let out = run(&m, &[&flag, "true"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(dir.0.to_str().unwrap()), "{err}");
    assert!(err.contains("lock") || err.contains("already"), "{err}");

    // The child's environment names the state dir and the parent's ids.
    assert!(wait_for(T, || dir.0.join("env.txt").exists()));
    let env = std::fs::read_to_string(dir.0.join("env.txt")).unwrap();
    assert!(
        env.contains(&format!("ROOTLESSKIT_STATE_DIR={}", dir.0.display())),
        "{env}"
    );
    assert!(
        env.contains(&format!("ROOTLESSKIT_PARENT_EUID={}", m.uid)),
        "{env}"
    );
    assert!(
        env.contains(&format!("ROOTLESSKIT_PARENT_EGID={}", m.gid)),
        "{env}"
    );
}

#[test]
fn networks_none_and_slirp4netns() {
    let Some(m) = TestMachine::get() else { return };
    let out = run(&m, &["--net=none", "cat", "/proc/net/dev"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ifaces: Vec<String> = stdout(&out)
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|s| s.trim().to_string()))
        .collect();
    assert_eq!(ifaces, ["lo"]);

    let out = run(
        &m,
        &[
            "--net=slirp4netns",
            "--copy-up=/etc",
            "sh",
            "-c",
            "cat /proc/net/route; cat /etc/resolv.conf; ip -o link show tap0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Default route via 10.0.2.2 (little-endian hex 0202000A) on tap0.
    assert!(
        text.lines()
            .any(|l| l.starts_with("tap0\t00000000\t0202000A")),
        "{text}"
    );
    assert!(text.contains("nameserver 10.0.2.3"), "{text}");
    assert!(text.contains("65520"), "{text}");
    assert!(
        !stderr(&out).contains("tapfd"),
        "slirp4netns leaks its messages: {}",
        stderr(&out)
    );
}

#[test]
fn the_gateway_reaches_the_hosts_loopback_unless_disabled() {
    let Some(m) = TestMachine::get() else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let _ = std::io::Write::write_all(&mut c, b"HTTP/1.0 200 OK\r\n\r\nfrom-host\n");
        }
    });
    let url = format!("http://10.0.2.2:{port}/");
    let out = run(&m, &["--net=slirp4netns", "wget", "-qO-", "-T", "5", &url]);
    assert!(
        stdout(&out).contains("from-host"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run(
        &m,
        &[
            "--net=slirp4netns",
            "--disable-host-loopback",
            "wget",
            "-qO-",
            "-T",
            "5",
            &url,
        ],
    );
    assert!(
        !out.status.success(),
        "reached the host's loopback: {}",
        stdout(&out)
    );
}

#[test]
fn pidns_detach_netns_and_socket_activation() {
    let Some(m) = TestMachine::get() else { return };
    // --pidns: a new pid namespace whose pid 1 is the launcher's reaper, which also collects
    // orphans (the background sleep below leaves no zombie).
    let out = run(
        &m,
        &[
            "--pidns",
            "sh",
            "-c",
            "echo $$; cat /proc/1/comm; (sleep 0.2 &); sleep 1; grep -l ' Z ' /proc/[0-9]*/stat | wc -l",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2", "{lines:?}");
    // pid 1 is the launcher (re-executed as /proc/self/exe), not the command.
    assert!(matches!(lines[1], "exe" | "burrow-rootless"), "{lines:?}");
    assert_eq!(lines[2], "0", "zombies left: {lines:?}");

    // child_pid names the namespace's PID 1, so nsenter -p reaches the command's namespace
    // (as with RootlessKit); without a reaper the command is PID 1 and SIGTERM still ends it.
    let dir = StateDir::new(&m, "pidns");
    let flag = dir.flag();
    let r = spawn(&m, &[&flag, "--pidns", "--reaper=false", "sleep", "300"]);
    assert!(
        wait_for(T, || read_child_pid(&dir.0).is_some()),
        "no child_pid"
    );
    let child = read_child_pid(&dir.0).unwrap();
    let ns = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(
        ns(child as u32),
        ns(std::process::id()),
        "child_pid is not in the new pid namespace"
    );
    let mut enter = m.user_command("nsenter");
    enter.args([
        "-U",
        "--preserve-credentials",
        "-p",
        "-m",
        "-t",
        &child.to_string(),
        "cat",
        "/proc/1/comm",
    ]);
    let entered = run_with_timeout(&mut enter, T);
    assert_eq!(stdout(&entered), "sleep\n", "{}", stderr(&entered));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(r.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !pid_alive(child)),
        "SIGTERM did not end the command running as PID 1"
    );
    drop(r);

    // --detach-netns: the command keeps the host's network; the namespace's is at STATE/netns.
    let dir = StateDir::new(&m, "detach");
    let flag = dir.flag();
    let out = run(
        &m,
        &[
            &flag,
            "--net=slirp4netns",
            "--detach-netns",
            "sh",
            "-c",
            "readlink /proc/self/ns/net; nsenter --net=\"$ROOTLESSKIT_STATE_DIR/netns\" ip -o link show tap0",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(host_net.to_str().unwrap()),
        "{text} vs {host_net:?}"
    );
    assert!(text.contains("65520"), "{text}");

    // systemd socket activation: the listening fd and LISTEN_* reach the command.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let mut cmd = m.user_command("systemd-socket-activate");
    cmd.arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(launcher(&m))
        .args([
            "sh",
            "-c",
            "echo \"fds=$LISTEN_FDS pid_ok=$([ \"$LISTEN_PID\" = $$ ] && echo yes)\"; test -e /proc/self/fd/3 && echo fd3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = Running(spawn_retrying(&mut cmd).expect("systemd-socket-activate"));
    assert!(wait_for(T, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let mut out = String::new();
    let _ = child.0.stdout.take().unwrap().read_to_string(&mut out);
    assert!(out.contains("fds=1 pid_ok=yes"), "{out}");
    assert!(out.contains("fd3"), "{out}");
}

#[test]
fn the_slirp4netns_port_driver_publishes_through_slirp4netns() {
    let Some(m) = TestMachine::get() else { return };
    let dir = StateDir::new(&m, "slirpports");
    let flag = dir.flag();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:8000/tcp");
    let server = "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8000)); s.listen(8)\nwhile True:\n  c,a=s.accept(); c.sendall(('from-ns ' + a[0] + '\\n').encode()); c.close()\n";
    let _r = spawn(
        &m,
        &[
            &flag,
            "--net=slirp4netns",
            "--port-driver=slirp4netns",
            "-p",
            &publish,
            "python3",
            "-c",
            server,
        ],
    );
    let got = || -> Option<String> {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut s = String::new();
        c.read_to_string(&mut s).ok()?;
        (!s.is_empty()).then_some(s)
    };
    assert!(
        wait_for(T, || got().is_some()),
        "the published port does not answer"
    );
    // slirp4netns delivers the connection from its own gateway address.
    assert_eq!(got().unwrap(), "from-ns 10.0.2.2\n");

    let api = |args: &[&str]| {
        let mut cmd = m.user_command(m.install_bin(env!("CARGO_BIN_EXE_burrow-rootlessctl")));
        cmd.arg(format!("--socket={}", dir.0.join("api.sock").display()))
            .args(args);
        run_with_timeout(&mut cmd, T)
    };
    let out = api(&["info"]);
    assert!(stdout(&out).contains("slirp4netns"), "{}", stdout(&out));
    let out = api(&["list-ports"]);
    assert!(stdout(&out).contains(&port.to_string()), "{}", stdout(&out));
    // IPv6 and the child's loopback are refused with the reason.
    let out = api(&["add-ports", &format!("[::1]:{}:8000/tcp6", port + 1)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("IPv4 only"), "{}", stderr(&out));
    // Removing the port stops the forwarding.
    let out = api(&["remove-ports", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_for(T, || got().is_none()),
        "the port still answers after removal"
    );
}

/// A free TCP port on the host's loopback.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn detach_netns_publishes_ports_with_every_port_driver() {
    let Some(m) = TestMachine::get() else { return };
    // A one-shot server in the detached namespace, started by the command with nsenter (as
    // nerdctl's containerd-rootless.sh setups do), reached through the published port.
    let server = "exec nsenter --net=\"$ROOTLESSKIT_STATE_DIR/netns\" python3 -c '\
import socket\n\
s = socket.socket()\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind((\"0.0.0.0\", 8080))\n\
s.listen()\n\
c, _ = s.accept()\n\
c.sendall(b\"from-detached\")\n\
c.close()'";
    for (net, driver) in [
        ("slirp4netns", "builtin"),
        ("slirp4netns", "slirp4netns"),
        ("builtin", "builtin"),
        ("builtin", "slirp"),
    ] {
        let dir = StateDir::new(&m, &format!("detach-{net}-{driver}"));
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:8080/tcp");
        let net_flag = format!("--net={net}");
        let driver_flag = format!("--port-driver={driver}");
        let mut launcher = spawn(
            &m,
            &[
                &dir.flag(),
                &net_flag,
                &driver_flag,
                "--detach-netns=true",
                "--pidns=false",
                "-p",
                &publish,
                "sh",
                "-c",
                server,
            ],
        );
        let mut answer = String::new();
        let reached = wait_for(T, || {
            if let Ok(Some(_)) = launcher.0.try_wait() {
                return true;
            }
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            answer.clear();
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read_to_string(&mut answer);
            answer == "from-detached"
        });
        if !reached || answer != "from-detached" {
            let _ = launcher.0.kill();
            let mut err = String::new();
            let _ = launcher.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("--net={net} --port-driver={driver} --detach-netns: got {answer:?}; {err}");
        }
    }
}

#[test]
fn go_boolean_flag_forms_as_rootlesskit_takes_them() {
    let Some(m) = TestMachine::get() else { return };
    let out = run(
        &m,
        &["--pidns=true", "--reaper=auto", "sh", "-c", "echo $$"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "2", "the command under the reaper");
    let out = run(&m, &["--pidns=false", "-net=none", "sh", "-c", "echo $$"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(stdout(&out).trim(), "2", "no pid namespace");
    let out = run(
        &m,
        &["--evacuate-cgroup2=evac", "--pidns", "--cgroupns", "true"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--evacuate-cgroup2"),
        "{}",
        stderr(&out)
    );
}

/// What RootlessKit does and scripts may rely on: /sys shows the namespace's interfaces, the
/// host's /etc/hosts names stay resolvable in the namespace, the state directory is gone after the launcher exits, and an unknown
/// flag or a --cidr with host bits is refused (not run as the command), as by Debian's
/// rootlesskit.
#[test]
fn hosts_state_dir_and_refused_flags_as_rootlesskit() {
    let Some(m) = TestMachine::get() else { return };
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let dir = StateDir::new(&m, "exit");
    let flag = dir.flag();
    let out = run(
        &m,
        &[
            &flag,
            "--net=slirp4netns",
            "sh",
            "-c",
            "ls /sys/class/net | tr '\\n' ' '; echo; test -d /sys/fs/cgroup && echo cgroup; cat /etc/hosts",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let inside = stdout(&out);
    // A sysfs of the namespace's own: its interfaces, and the cgroup mounts kept.
    assert!(inside.starts_with("lo tap0 \ncgroup\n"), "{inside}");
    for line in hosts
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        assert!(
            inside.contains(line),
            "{line:?} missing from the namespace's /etc/hosts:\n{inside}"
        );
    }
    assert!(!dir.0.exists(), "the state dir outlived the launcher");

    let rootlesskit = Path::new("/usr/bin/rootlesskit");
    for args in [&["--bogus", "true"][..], &["--cidr=10.0.2.100/24", "true"]] {
        let out = run(&m, args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let flag_name = args[0].split('=').next().unwrap().trim_start_matches('-');
        assert!(
            stderr(&out).contains(flag_name),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("cannot run"),
            "{args:?} ran as a command"
        );
        if rootlesskit.exists() {
            let mut theirs = m.user_command(rootlesskit);
            theirs.args(args);
            let theirs = run_with_timeout(&mut theirs, T);
            assert!(!theirs.status.success(), "rootlesskit accepted {args:?}");
        }
    }
}
