//! burrow-slirp as a drop-in for slirp4netns, checked the way slirp4netns's own test suite checks
//! slirp4netns (as the unprivileged test user, on namespaces made with `unshare`): the `-v`
//! block, option errors, the API's exact answers, --macaddress/--cidr, --disable-host-loopback,
//! --outbound-addr, --disable-dns, --ready-fd/--exit-fd and the sandbox.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, wait_for, Cleanup, TestMachine};

const T: Duration = Duration::from_secs(30);

fn slirp(m: &TestMachine) -> PathBuf {
    m.install_bin(env!("CARGO_BIN_EXE_burrow-slirp"))
}

/// A directory under /tmp every user can use, removed by `c`.
fn scratch(c: &mut Cleanup, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("burrow-slirp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    c.remove_dir(&d);
    d
}

/// `unshare --user --map-root-user --net sleep` as the test user; returns its pid once the
/// namespaces exist.
fn namespace(m: &TestMachine, c: &mut Cleanup) -> u32 {
    let mut cmd = m.user_command("unshare");
    cmd.args(["--user", "--map-root-user", "--net", "sleep", "300"])
        .stdin(Stdio::null());
    let pid = c.spawn(&mut cmd).id();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert!(
        wait_for(T, || std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .is_ok_and(|n| n != ours)),
        "unshare never made its namespace"
    );
    pid
}

/// Runs `argv` inside the namespace of `pid` as the test user.
fn in_ns(m: &TestMachine, pid: u32, argv: &[&str]) -> Output {
    let mut cmd = m.user_command("nsenter");
    cmd.arg(format!("--target={pid}"))
        .args(["--preserve-credentials", "--user", "--net"])
        .args(argv)
        .stdin(Stdio::null());
    run_with_timeout(&mut cmd, T)
}

/// Starts burrow-slirp with `args` (then PID and tap0) and waits for tap0 to appear.
fn start(m: &TestMachine, c: &mut Cleanup, pid: u32, args: &[&str]) -> u32 {
    let mut cmd = m.user_command(slirp(m));
    cmd.args(args)
        .args([&pid.to_string(), "tap0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let slirp_pid = c.spawn(&mut cmd).id();
    assert!(
        wait_for(T, || in_ns(m, pid, &["ip", "link", "show", "tap0"])
            .status
            .success()),
        "tap0 never appeared (burrow-slirp {args:?})"
    );
    slirp_pid
}

/// What a TCP connect to `ip:port` from inside the namespace says (bash's /dev/tcp), within
/// `secs` seconds: ("ok"|"timeout"|"failed", stderr).
fn connect_from_ns(m: &TestMachine, pid: u32, ip: &str, port: u16, secs: u32) -> (String, String) {
    let script = format!("exec 3<>/dev/tcp/{ip}/{port}");
    let out = in_ns(
        m,
        pid,
        &["timeout", &secs.to_string(), "bash", "-c", &script],
    );
    let verdict = match out.status.code() {
        Some(0) => "ok",
        Some(124) => "timeout",
        _ => "failed",
    };
    (
        verdict.to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn api(sock: &Path, req: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    // A request too large for slirp4netns's buffer is answered before it is all written.
    let _ = s.write_all(req);
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Read what came even if the reset of an unread request ends the read.
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

#[test]
fn dash_v_and_option_errors_read_as_slirp4netns_s() {
    let bin = env!("CARGO_BIN_EXE_burrow-slirp");
    let out = Command::new(bin).arg("-v").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("slirp4netns version 1.2.0"), "{text}");
    assert!(
        text.lines().any(|l| l == "SLIRP_CONFIG_VERSION_MAX: 4"),
        "{text}"
    );
    for (args, expect) in [
        (&["--cidr", "24"][..], "invalid CIDR: 24"),
        (&["--cidr", "foo"][..], "invalid CIDR: foo"),
        (&["--cidr", "10.0.2.0"][..], "invalid CIDR: 10.0.2.0"),
        (
            &["--cidr", "10.0.2.100/24"][..],
            "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24",
        ),
        (
            &["--cidr", "10.0.2.100/26"][..],
            "prefix length needs to be 1-25",
        ),
        (
            &["--macaddress", "0e:d4:18:d9:38:fb"][..],
            "--macaddress cannot be specified when --configure or -c is not specified",
        ),
        (
            &["-c", "--macaddress", "0e:d4:18:d9:38"][..],
            "is an invalid MAC address",
        ),
        (
            &["--outbound-addr", "no-such-interface0"][..],
            "--outbound-addr has to be a valid IPv4 address",
        ),
        (&["--target-type", "bess"][..], "--target-type must be"),
        (
            &["--mtu", "65522"][..],
            "MTU must be a positive integer (< 65522)",
        ),
    ] {
        let out = Command::new(bin)
            .args(args)
            .args(["1", "tap0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{args:?}: {err}"
        );
    }
    // A command line it cannot take exits 1, as slirp4netns's does (not clap's 2).
    for args in [&["--no-such-flag", "1", "tap0"][..], &[][..]] {
        let out = Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    let out = Command::new(bin).arg("--help").output().unwrap();
    assert!(out.status.success());
}

#[test]
fn api_answers_and_errors_are_slirp4netns_s() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let dir = scratch(&mut c, "api");
    let pid = namespace(&m, &mut c);
    let sock = dir.join("api.sock");
    start(
        &m,
        &mut c,
        pid,
        &["-c", "--api-socket", sock.to_str().unwrap()],
    );
    assert!(wait_for(T, || sock.exists()), "no API socket");
    let err = |d: &str| format!(r#"{{"error":{{"desc":"{d}"}}}}"#);
    assert_eq!(
        api(&sock, b"badjson\n"),
        err("bad request: cannot parse JSON")
    );
    assert_eq!(
        api(&sock, b"{\"unexpectedjson\": 42}"),
        err("bad request: no execute found")
    );
    assert_eq!(
        api(&sock, b"{\"execute\": \"bad\"}"),
        err("bad request: unknown execute")
    );
    assert_eq!(
        api(&sock, &[0u8; 8192]),
        err("bad request: too large message")
    );
    // A free port, asked for: another process may take it between the probe and the add, so
    // a refusal is tried again with another (a failed add takes no id).
    let mut added = None;
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let add = format!(
            r#"{{"execute": "add_hostfwd", "arguments":{{"proto": "tcp","host_addr": "127.0.0.1","host_port":{port},"guest_port":80}}}}"#
        );
        let answer = api(&sock, add.as_bytes());
        if answer != err("bad request: add_hostfwd: slirp_add_hostfwd failed") {
            added = Some((port, answer));
            break;
        }
    }
    let (port, answer) = added.expect("no free port could be forwarded in 5 tries");
    assert_eq!(answer, r#"{"return":{"id":1}}"#);
    assert_eq!(
        api(&sock, b"{\"execute\": \"list_hostfwd\"}"),
        format!(
            r#"{{"entries":[{{"id":1,"proto":"tcp","host_addr":"127.0.0.1","host_port":{port},"guest_addr":"10.0.2.100","guest_port":80}}]}}"#
        )
    );
    assert_eq!(
        api(
            &sock,
            b"{\"execute\": \"remove_hostfwd\", \"arguments\":{\"id\": 1}}"
        ),
        r#"{"return":{}}"#
    );
    assert_eq!(
        api(
            &sock,
            b"{\"execute\": \"remove_hostfwd\", \"arguments\":{\"id\": 1}}"
        ),
        err("bad request: remove_hostfwd: bad arguments.id")
    );
}

#[test]
fn macaddress_and_cidr_configure_the_tap() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let pid = namespace(&m, &mut c);
    let mac = "0e:d4:18:d9:38:fb";
    start(
        &m,
        &mut c,
        pid,
        &[
            "-c",
            "--macaddress",
            mac,
            "--cidr",
            "10.0.135.128/25",
            "--mtu",
            "65521",
        ],
    );
    let link = in_ns(&m, pid, &["ip", "-o", "link", "show", "tap0"]);
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains(&format!("link/ether {mac}")), "{link}");
    // slirp4netns's largest MTU.
    assert!(link.contains("mtu 65521"), "{link}");
    let addr = in_ns(&m, pid, &["ip", "-o", "-4", "addr", "show", "tap0"]);
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains("inet 10.0.135.228/25"), "{addr}");
    // The loopback is up too, as slirp4netns brings it up (servers bind 127.0.0.1).
    let lo = in_ns(&m, pid, &["ip", "-o", "link", "show", "lo"]);
    let lo = String::from_utf8_lossy(&lo.stdout);
    assert!(
        lo.contains(",UP") || lo.contains("<UP") || lo.contains("LOWER_UP"),
        "{lo}"
    );
    // The gateway of that network answers, so the stack serves it.
    let host_port = burrow_testsupport::http_server(Ipv4Addr::LOCALHOST.into(), "x");
    assert_eq!(
        connect_from_ns(&m, pid, "10.0.135.130", host_port, 10).0,
        "ok"
    );
    // A megabyte from the host arrives whole in the largest segments the MTU allows.
    let big: &'static str = Box::leak("y".repeat(1 << 20).into_boxed_str());
    let big_port = burrow_testsupport::http_server(Ipv4Addr::LOCALHOST.into(), big);
    let script = format!(
        "exec 3<>/dev/tcp/10.0.135.130/{big_port}; printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; tr -cd y <&3 | wc -c"
    );
    let got = in_ns(&m, pid, &["timeout", "20", "bash", "-c", &script]);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        (1 << 20).to_string(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
}

#[test]
fn disable_host_loopback_outbound_addr_and_disable_dns() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    // --disable-host-loopback: the gateway is unreachable, as libslirp's ICMP error says.
    let pid = namespace(&m, &mut c);
    start(&m, &mut c, pid, &["-c", "--disable-host-loopback"]);
    let (verdict, err) = connect_from_ns(&m, pid, "10.0.2.2", port, 10);
    assert_eq!(verdict, "failed", "{err}");
    assert!(err.contains("Network is unreachable"), "{err}");

    // --outbound-addr: host connections leave from that address.
    let pid = namespace(&m, &mut c);
    start(&m, &mut c, pid, &["-c", "--outbound-addr=127.0.0.9"]);
    let (verdict, err) = connect_from_ns(&m, pid, "10.0.2.2", port, 10);
    assert_eq!(verdict, "ok", "{err}");
    let (_conn, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)));

    // --disable-dns: nothing answers at .3 (the connect times out, as slirp4netns's test
    // expects); the default still refuses non-DNS ports there at once.
    let pid = namespace(&m, &mut c);
    start(&m, &mut c, pid, &["-c", "--disable-dns"]);
    assert_eq!(connect_from_ns(&m, pid, "10.0.2.3", 53, 2).0, "timeout");
    let pid = namespace(&m, &mut c);
    start(&m, &mut c, pid, &["-c"]);
    assert_eq!(connect_from_ns(&m, pid, "10.0.2.3", 80, 5).0, "failed");
}

#[test]
fn ready_fd_exit_fd_and_the_sandbox() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let dir = scratch(&mut c, "sandbox");
    let pid = namespace(&m, &mut c);
    let fifo = dir.join("exit.fifo");
    let ready = dir.join("ready");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o666)).unwrap();
    // As slirp4netns's tests pass them: fd 3 written once the network is up, fd 4 closed to stop.
    let script = format!(
        "exec {} --ready-fd=3 --exit-fd=4 --enable-sandbox {pid} tap0 3>{} 4<{}",
        slirp(&m).display(),
        ready.display(),
        fifo.display()
    );
    let mut cmd = m.user_command("bash");
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let slirp_pid = c.spawn(&mut cmd).id();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    assert!(
        wait_for(T, || std::fs::read_to_string(&ready)
            .is_ok_and(|s| s == "1")),
        "--ready-fd never said 1"
    );
    // Only CAP_NET_BIND_SERVICE (bit 10) is left, in every set.
    let status = std::fs::read_to_string(format!("/proc/{slirp_pid}/status")).unwrap();
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd"] {
        let line = status
            .lines()
            .find(|l| l.starts_with(set))
            .unwrap_or_else(|| panic!("{status}"));
        assert!(line.ends_with("0000000000000400"), "{line}");
    }
    let root = PathBuf::from(format!("/proc/{slirp_pid}/root"));
    assert!(root.join("etc").is_dir() && root.join("run").is_dir());
    assert!(!root.join("home").exists() && !root.join("var").exists());
    // Closing the exit fd ends it, cleanly.
    drop(writer);
    let gone = wait_for(T, || {
        std::fs::read_to_string(format!("/proc/{slirp_pid}/stat"))
            .map_or(true, |s| s.contains(") Z "))
    });
    assert!(gone, "burrow-slirp outlived its --exit-fd");
}

#[test]
fn sandbox_leaves_the_callers_mounts_alone() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let dir = scratch(&mut c, "nounmount");
    // slirp4netns's sandbox-no-unmount test: in a mount namespace of our own, a shared /run
    // with a mount below it must survive burrow-slirp's sandbox (which detaches its old root).
    let script = format!(
        r#"set -e
slirp=; child=; trap 'kill -9 $slirp $child 2>/dev/null || true' EXIT
mount -t tmpfs tmpfs /run; mkdir /run/foo; mount -t tmpfs tmpfs /run/foo; mount --make-rshared /run
unshare -n sleep 300 & child=$!
for i in $(seq 100); do [ "$(readlink /proc/$child/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.05; done
{bin} --ready-fd=3 --enable-sandbox --netns-type=path /proc/$child/ns/net tap0 3>{d}/ready >/dev/null & slirp=$!
for i in $(seq 200); do [ -s {d}/ready ] && break; sleep 0.05; done
[ -s {d}/ready ]
nsenter --target=$child -n ip link show tap0 >/dev/null
findmnt /run/foo >/dev/null"#,
        bin = slirp(&m).display(),
        d = dir.display()
    );
    // Spawned through `c`, so its whole process group goes when the test ends, whatever the
    // script managed to clean up itself.
    let log = dir.join("log");
    let mut cmd = m.user_command("unshare");
    cmd.args([
        "--user",
        "--map-root-user",
        "--mount",
        "bash",
        "-c",
        &script,
    ])
    .stdin(Stdio::null())
    .stdout(std::fs::File::create(&log).unwrap())
    .stderr(std::fs::File::options().append(true).open(&log).unwrap());
    let child = c.spawn(&mut cmd);
    let mut status = None;
    assert!(
        wait_for(T, || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "the script did not finish"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn dhcp_leases_dot15_as_libslirp_does() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let pid = namespace(&m, &mut c);
    start(&m, &mut c, pid, &[]);
    let out = in_ns(
        &m,
        pid,
        &[
            "sh",
            "-c",
            "ip link set lo up && ip link set tap0 up && \
             busybox udhcpc -q -n -t 5 -T 1 -i tap0 -s /bin/true 2>&1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("lease of 10.0.2.15 obtained from 10.0.2.2"),
        "{text}"
    );
}

#[test]
fn netns_type_tapfd_serves_an_inherited_tap() {
    let Some(m) = TestMachine::get() else { return };
    let mut c = Cleanup::new();
    let pid = namespace(&m, &mut c);
    // What podman-like callers do: open the tap themselves and pass its descriptor.
    let opener = format!(
        "import fcntl, os, struct\n\
         fd = os.open('/dev/net/tun', os.O_RDWR)\n\
         fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'tap0', 0x0002 | 0x1000))\n\
         os.set_inheritable(fd, True)\n\
         os.execv('{bin}', ['{bin}', '--netns-type=tapfd', str(fd)])\n",
        bin = slirp(&m).display()
    );
    let mut cmd = m.user_command("nsenter");
    cmd.arg(format!("--target={pid}"))
        .args(["--preserve-credentials", "--user", "--net"])
        .args(["python3", "-c", &opener])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c.spawn(&mut cmd);
    assert!(
        wait_for(T, || in_ns(&m, pid, &["ip", "link", "show", "tap0"])
            .status
            .success()),
        "tap0 never appeared"
    );
    let out = in_ns(
        &m,
        pid,
        &[
            "sh",
            "-c",
            "ip link set tap0 up && busybox udhcpc -q -n -t 5 -T 1 -i tap0 -s /bin/true 2>&1",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lease of 10.0.2.15"), "{text}");
    // -c has nothing to configure with a ready-made tap.
    let out = Command::new(env!("CARGO_BIN_EXE_burrow-slirp"))
        .args(["-c", "--netns-type=tapfd", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--netns-type=tapfd"));
}
