//! Socket bypass as the test user on the real stack (`burrow setup install --bypass`, runc's
//! seccomp listener, burrow-bypass under systemd --user): a bypassed connection is a host socket
//! held by the container's process; without --bypass the same connection is slirp4netns's;
//! container-to-container traffic stays on the bridge; a published port still answers; a
//! killed service never hangs the container; the service's fds stay flat over many connections.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::{wait_for, Cleanup, TestMachine};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// burrow, the launcher and burrow-bypass side by side where the test user can run them.
fn binaries(m: &TestMachine) -> PathBuf {
    let burrow = Path::new(env!("CARGO_BIN_EXE_burrow"));
    for name in ["burrow-rootlesskit", "burrow-bypass"] {
        let p = burrow.with_file_name(name);
        assert!(
            p.exists(),
            "{} is missing: build the workspace first (cargo build --workspace)",
            p.display()
        );
        m.install_bin(&p);
    }
    m.install_bin(burrow)
}

fn burrow(m: &TestMachine, bin: &Path, args: &[&str]) -> Output {
    let mut argv = vec![bin.to_str().unwrap()];
    argv.extend_from_slice(args);
    m.run_user(&argv, Duration::from_secs(300))
}

/// The rootless setup with the bypass service, uninstalled when the test ends.
struct Setup {
    m: TestMachine,
    bin: PathBuf,
    // Fields drop in order: uninstall first, then release the machine-wide lock.
    _cleanup: Cleanup,
    _lock: burrow_testsupport::ExclusiveGuard,
}

fn setup() -> Option<Setup> {
    let m = TestMachine::get()?;
    let bin = binaries(&m);
    let lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    let mut un = m.user_command(&bin);
    un.args(["setup", "uninstall"]);
    c.run_on_drop(un);
    let out = burrow(&m, &bin, &["setup", "install", "--bypass"]);
    assert!(
        out.status.success(),
        "install --bypass: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("socket bypass: burrow-bypass answers"));
    Some(Setup {
        m,
        bin,
        _cleanup: c,
        _lock: lock,
    })
}

impl Setup {
    fn burrow(&self, args: &[&str]) -> Output {
        burrow(&self.m, &self.bin, args)
    }

    fn service_pid(&self) -> i32 {
        let out = self.m.run_user(
            &[
                "systemctl",
                "--user",
                "show",
                "-p",
                "MainPID",
                "--value",
                "burrow-bypass.service",
            ],
            Duration::from_secs(30),
        );
        stdout(&out).trim().parse().expect("burrow-bypass's pid")
    }
}

/// An address of this host that is not loopback and not one of the container networks (10/8).
fn host_address() -> Option<IpAddr> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    stdout(&out)
        .split_whitespace()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .find(|a| matches!(a, IpAddr::V4(v4) if !v4.is_loopback() && v4.octets()[0] != 10))
}

/// The inode of the client end of a TCP connection whose peer is `server_port`, from /proc/net/tcp.
fn client_socket_inode(server_port: u16, client_port: u16) -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        let remote_port = u16::from_str_radix(f.get(2)?.rsplit(':').next()?, 16).ok()?;
        (local_port == client_port && remote_port == server_port).then(|| f[9].to_string())
    })
}

/// The inode of the socket listening on a TCP port in the host's namespace (v4 or v6).
fn listening_socket_inode(port: u16) -> Option<String> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|f| {
        let text = std::fs::read_to_string(f).ok()?;
        text.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && f.get(3) == Some(&"0A")).then(|| f[9].to_string())
        })
    })
}

/// The command name of the process holding a socket inode.
fn socket_owner(inode: &str) -> Option<String> {
    let want = format!("socket:[{inode}]");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == want) {
                return std::fs::read_to_string(e.path().join("comm"))
                    .ok()
                    .map(|c| c.trim().to_string());
            }
        }
    }
    None
}

/// Runs `nc HOST PORT` in a container and says which process held the client socket on the host.
fn who_holds_the_connection(s: &Setup, ip: IpAddr, ask: &[&str]) -> String {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 6];
        conn.read_exact(&mut buf).unwrap();
        let inode = client_socket_inode(port, peer.port());
        let owner = inode.as_deref().and_then(socket_owner);
        conn.write_all(b"bye\n").unwrap();
        (String::from_utf8_lossy(&buf).into_owned(), owner)
    });
    let target = format!("echo hello | nc {ip} {port}");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(ask);
    args.extend([s.m.image_busybox.as_str(), "sh", "-c", target.as_str()]);
    let out = s.burrow(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "bye\n");
    let (got, owner) = server.join().unwrap();
    assert_eq!(got, "hello\n");
    owner.unwrap_or_else(|| "unknown".into())
}

/// The inode of the UDP socket bound to a local port in the host's namespace.
fn udp_socket_inode(local: u16) -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/udp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        (port == local).then(|| f[9].to_string())
    })
}

/// Runs busybox nslookup against HOST:PORT (it connects its UDP socket, then writes) in a
/// container and says which process held the queries' source socket on the host.
fn who_sends_the_datagram(s: &Setup, ip: IpAddr, bypass: bool) -> String {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut owner = None;
        let mut got = 0;
        let mut buf = [0u8; 512];
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        // Answers each query (A, then AAAA) as "no such name", so nslookup ends at once.
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            if owner.is_none() {
                owner = udp_socket_inode(peer.port())
                    .as_deref()
                    .and_then(socket_owner);
            }
            got += 1;
            if n >= 4 {
                buf[2] |= 0x80;
                buf[3] = 0x83;
                let _ = sock.send_to(&buf[..n], peer);
            }
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        }
        (got, owner)
    });
    let target = format!("nslookup example.com {ip}:{port}; true");
    let mut args = vec!["run", "--rm"];
    if bypass {
        args.push("--bypass");
    }
    args.extend([s.m.image_busybox.as_str(), "sh", "-c", target.as_str()]);
    let out = s.burrow(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let (got, owner) = server.join().unwrap();
    assert!(
        got > 0,
        "no query arrived: {}{}",
        stdout(&out),
        stderr(&out)
    );
    owner.unwrap_or_else(|| "unknown".into())
}

#[test]
fn connected_udp_is_a_host_socket_of_the_container() {
    let Some(s) = setup() else { return };
    let Some(ip) = host_address() else {
        eprintln!("SKIP: this host has no non-loopback address outside 10/8");
        return;
    };
    assert_eq!(who_sends_the_datagram(&s, ip, true), "nslookup");
    assert_eq!(who_sends_the_datagram(&s, ip, false), "burrow-rootless");
}

#[test]
fn bypassed_connections_are_host_sockets_of_the_container() {
    let Some(s) = setup() else { return };
    let Some(ip) = host_address() else {
        eprintln!("SKIP: this host has no non-loopback address outside 10/8");
        return;
    };
    // With --bypass the host socket is held by the container's nc itself ...
    assert_eq!(who_holds_the_connection(&s, ip, &["--bypass"]), "nc");
    // ... without, by the launcher (burrow-rootlesskit, its name cut to 15 characters by the
    // kernel), whose embedded stack is the namespace's userspace network.
    assert_eq!(who_holds_the_connection(&s, ip, &[]), "burrow-rootless");
    // nerdctl's label and annotation ask for the same.
    for ask in [
        ["-l", "nerdctl/bypass4netns=true"],
        ["--annotation", "nerdctl/bypass4netns=true"],
    ] {
        assert_eq!(who_holds_the_connection(&s, ip, &ask), "nc", "{ask:?}");
    }
}

/// With `setup install --host-loopback` the gateway is the host's loopback: a bypassed connect to
/// it becomes a host socket to 127.0.0.1, the container's own process holding it.
#[test]
fn the_gateway_reaches_the_hosts_loopback_when_allowed() {
    let Some(s) = setup() else { return };
    let out = s.burrow(&["setup", "install", "--host-loopback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let gw: IpAddr = "10.0.2.2".parse().unwrap();
    assert_eq!(who_holds_the_connection(&s, gw, &["--bypass"]), "nc");
    assert_eq!(who_holds_the_connection(&s, gw, &[]), "burrow-rootless");
    // install-bypass keeps the choice.
    let out = s.burrow(&["setup", "install-bypass"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let unit = std::fs::read_to_string(
        Path::new(&s.m.home).join(".config/systemd/user/containerd.service"),
    )
    .unwrap_or_default();
    assert!(!unit.contains("--disable-host-loopback"), "{unit}");
}

#[test]
fn containers_still_reach_each_other_and_published_ports_answer() {
    let Some(s) = setup() else { return };
    let _ = s.burrow(&["rm", "-f", "bp-web"]);
    let port = {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let publish = format!("{port}:80");
    let out = s.burrow(&[
        "run",
        "-d",
        "--bypass",
        "--name",
        "bp-web",
        "-p",
        &publish,
        &s.m.image_demo,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    struct Rm<'a>(&'a Setup);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self.0.burrow(&["rm", "-f", "bp-web"]);
        }
    }
    let _rm = Rm(&s);
    // From the host through the published port.
    let answered = wait_for(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut c| {
                c.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
                let mut body = String::new();
                c.read_to_string(&mut body)?;
                Ok(body.contains("Hello from a rootless burrow container"))
            })
            .unwrap_or(false)
    });
    assert!(
        answered,
        "the bypassed container's published port does not answer"
    );
    // The host port is the container's own socket (its httpd holds it), not the launcher's.
    let holder = || {
        listening_socket_inode(port)
            .as_deref()
            .and_then(socket_owner)
    };
    let sockets = || {
        let out = std::process::Command::new("ss")
            .args(["-tanpe"])
            .output()
            .map(|o| stdout(&o))
            .unwrap_or_default();
        out.lines()
            .filter(|l| l.contains(&format!(":{port} ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(holder().as_deref(), Some("httpd"), "{}", sockets());
    // A restart publishes the port again and the new process takes it over again.
    let out = s.burrow(&["restart", "-t", "1", "bp-web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = wait_for(Duration::from_secs(20), || {
        holder().as_deref() == Some("httpd") && TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(again, "after a restart the port is held by {:?}", holder());
    // From a bypassed container over the bridge.
    let ip = stdout(&s.burrow(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "bp-web"]))
        .trim()
        .to_string();
    assert!(ip.starts_with("10."), "container ip {ip:?}");
    let url = format!("http://{ip}/");
    let out = s.burrow(&[
        "run",
        "--rm",
        "--bypass",
        &s.m.image_busybox,
        "wget",
        "-qO-",
        &url,
    ]);
    assert!(
        stdout(&out).contains("Hello from a rootless burrow container"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // And from a container without bypass: the bridge side of the port still answers.
    let out = s.burrow(&["run", "--rm", &s.m.image_busybox, "wget", "-qO-", &url]);
    assert!(
        stdout(&out).contains("Hello from a rootless burrow container"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Removed: the host port is free again.
    let out = s.burrow(&["rm", "-f", "bp-web"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let freed = wait_for(Duration::from_secs(10), || {
        TcpListener::bind(("0.0.0.0", port)).is_ok()
    });
    assert!(freed, "port {port} is still held after rm: {:?}", holder());
}

/// iperf3 prints both ends of each connection from getsockname and getpeername: a bypassed
/// container sees its own address and port, and the host's loopback as the gateway.
#[test]
fn bypassed_sockets_keep_the_containers_view_of_names() {
    let Some(s) = setup() else { return };
    let Some(host_ip) = host_address() else {
        eprintln!("SKIP: this host has no non-loopback address outside 10/8");
        return;
    };
    let _ = s.burrow(&["rm", "-f", "bp-iperf"]);
    let port = {
        let l = TcpListener::bind("0.0.0.0:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let publish = format!("{port}:5201");
    let out = s.burrow(&[
        "run",
        "-d",
        "--bypass",
        "--name",
        "bp-iperf",
        "-p",
        &publish,
        &s.m.image_tools,
        "iperf3",
        "-s",
        "-1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    struct Rm<'a>(&'a Setup);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self.0.burrow(&["rm", "-f", "bp-iperf"]);
        }
    }
    let _rm = Rm(&s);
    let ip = stdout(&s.burrow(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        "bp-iperf",
    ]))
    .trim()
    .to_string();
    assert!(ip.starts_with("10."), "container ip {ip:?}");
    let up = wait_for(Duration::from_secs(20), || {
        listening_socket_inode(port)
            .as_deref()
            .and_then(socket_owner)
            .as_deref()
            == Some("iperf3")
    });
    assert!(up, "iperf3's listener is not a host socket on port {port}");
    let client = std::process::Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
        .output()
        .expect("iperf3 on the host");
    assert!(
        client.status.success(),
        "{}{}",
        stdout(&client),
        stderr(&client)
    );
    let logs = || stdout(&s.burrow(&["logs", "bp-iperf"]));
    let seen = wait_for(Duration::from_secs(10), || logs().contains("connected to"));
    let text = logs();
    assert!(seen, "{text}");
    // The control connection's peer, then a data stream's two ends.
    assert!(text.contains("Accepted connection from 10.0.2.2"), "{text}");
    assert!(
        text.contains(&format!("local {ip} port 5201 connected to 10.0.2.2 port")),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1"), "{text}");

    // The client side: a bypassed connect to the host shows the container's address.
    let _ = s.burrow(&["rm", "-f", "bp-iperf"]);
    assert!(wait_for(Duration::from_secs(10), || {
        TcpListener::bind(("0.0.0.0", port)).is_ok()
    }));
    let server = std::process::Command::new("iperf3")
        .args(["-s", "-1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("iperf3 server on the host");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Reap(server);
    // Listening (not probed with a connection: the one-off server would take it).
    assert!(wait_for(Duration::from_secs(10), || {
        listening_socket_inode(port).is_some()
    }));
    let out = s.burrow(&[
        "run",
        "--rm",
        "--bypass",
        &s.m.image_tools,
        "iperf3",
        "-c",
        &host_ip.to_string(),
        "-p",
        &port.to_string(),
        "-t",
        "1",
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    let line = text
        .lines()
        .find(|l| l.contains("connected to"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("local 10.") && line.contains(&format!("connected to {host_ip} port {port}")),
        "{text}"
    );
}

#[test]
fn a_dead_service_never_hangs_the_container_and_fds_stay_flat() {
    let Some(s) = setup() else { return };
    let Some(ip) = host_address() else {
        eprintln!("SKIP: this host has no non-loopback address outside 10/8");
        return;
    };
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            drop(c);
        }
    });

    // Many short bypassed connections: the service's fd count comes back to where it was.
    let pid = s.service_pid();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let script = format!(
        "i=0; while [ $i -lt 10000 ]; do nc {ip} {port} </dev/null >/dev/null 2>&1; i=$((i+1)); done; echo done"
    );
    let out = s.burrow(&[
        "run",
        "--rm",
        "--bypass",
        &s.m.image_busybox,
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(stdout(&out), "done\n", "{}", stderr(&out));
    let settled = wait_for(Duration::from_secs(10), || fds() <= before);
    assert!(
        settled,
        "burrow-bypass holds {} fds, {before} before",
        fds()
    );

    // The service killed mid-run: the container's calls fail or go on, but nothing hangs.
    let script = format!(
        "sleep 2; for i in 1 2 3; do nc {ip} {port} </dev/null; echo rc=$?; done; echo finished"
    );
    let bin = s.bin.to_str().unwrap().to_string();
    let image = s.m.image_busybox.clone();
    let m2 = s.m.clone();
    let run = std::thread::spawn(move || {
        m2.run_user(
            &[&bin, "run", "--rm", "--bypass", &image, "sh", "-c", &script],
            Duration::from_secs(120),
        )
    });
    std::thread::sleep(Duration::from_millis(800));
    let _ = s.m.run_user(
        &[
            "systemctl",
            "--user",
            "kill",
            "-s",
            "KILL",
            "burrow-bypass.service",
        ],
        Duration::from_secs(30),
    );
    let out = run.join().unwrap();
    assert!(
        stdout(&out).contains("finished"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Under systemd the container's listener waited in the fd store and the restarted service
    // took it back: every connect after the kill still worked.
    assert_eq!(
        stdout(&out).matches("rc=0").count(),
        3,
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // systemd brings the service back.
    let back = wait_for(Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(
            Path::new(&s.m.xdg_runtime_dir).join("burrow/bypass.sock"),
        )
        .is_ok()
    });
    assert!(back, "burrow-bypass was not restarted");
}

#[test]
fn bypass_refuses_what_it_cannot_do() {
    let Some(s) = setup() else { return };
    let out = s.burrow(&[
        "run",
        "--rm",
        "--bypass",
        "--network",
        "none",
        &s.m.image_busybox,
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("needs a container network"),
        "{}",
        stderr(&out)
    );
    // The service down: a clear refusal, and nothing is created.
    let _ = s.m.run_user(
        &["systemctl", "--user", "stop", "burrow-bypass.service"],
        Duration::from_secs(30),
    );
    let out = s.burrow(&["run", "--rm", "--bypass", &s.m.image_busybox, "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).contains("burrow setup install --bypass"),
        "{}",
        stderr(&out)
    );
    let out = s.burrow(&["setup", "status"]);
    assert!(
        stdout(&out).contains("bypass:     not answering"),
        "{}",
        stdout(&out)
    );
    // install-bypass brings it back, keeping the setup as it is ...
    let out = s.burrow(&["setup", "install-bypass"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("socket bypass: burrow-bypass answers"),
        "{}",
        stdout(&out)
    );
    let unit = std::fs::read_to_string(
        Path::new(&s.m.home).join(".config/systemd/user/containerd.service"),
    )
    .unwrap_or_default();
    assert!(unit.contains("--net=builtin"), "{unit}");
    // ... and a later plain install keeps it.
    let out = s.burrow(&["setup", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.burrow(&["setup", "status"]);
    assert!(
        stdout(&out).contains("bypass:     answering"),
        "{}",
        stdout(&out)
    );
}
