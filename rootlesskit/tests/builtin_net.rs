//! `burrow-rootlesskit --net=builtin` (the embedded smoltcp stack) as the unprivileged test user:
//! TCP to the host's loopback through the gateway (and refused with --disable-host-loopback), to
//! the host's own address, DNS through .3 answered by a server this test runs, UDP echo, ping,
//! a gigabyte each way with checksums compared, and 500 connections open at once.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, TestMachine};
use sha2::{Digest, Sha256};

const T: Duration = Duration::from_secs(180);

fn launcher(m: &TestMachine) -> PathBuf {
    m.install_bin(env!("CARGO_BIN_EXE_burrow-rootlesskit"))
}

/// `burrow-rootlesskit --net=builtin EXTRA... bash -c SCRIPT` as the test user.
fn builtin(m: &TestMachine, extra: &[&str], script: &str) -> Output {
    let mut cmd = m.user_command(launcher(m));
    cmd.arg("--net=builtin")
        .args(extra)
        .args(["bash", "-c", script]);
    run_with_timeout(&mut cmd, T)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An HTTP server answering every request with `body`, on `addr`; returns its port.
fn http_server(addr: Ipv4Addr, body: &'static str) -> u16 {
    burrow_testsupport::http_server(addr.into(), body)
}

/// The host's first non-loopback IPv4 address.
fn host_address() -> Option<Ipv4Addr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|a| {
        let ip = a.address?.as_sockaddr_in()?.ip();
        (!ip.is_loopback()).then_some(ip)
    })
}

#[test]
fn tcp_reaches_the_hosts_loopback_and_address_unless_disabled() {
    let Some(m) = TestMachine::get() else { return };
    let port = http_server(Ipv4Addr::LOCALHOST, "from-loopback\n");
    let url = format!("http://10.0.2.2:{port}/");
    let out = builtin(&m, &[], &format!("wget -qO- -T 10 -t 1 {url}"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "from-loopback\n");

    // Refused, promptly and as a refusal (not a connection that then resets).
    let out = builtin(
        &m,
        &["--disable-host-loopback"],
        &format!("wget -qO- -T 10 -t 1 {url}; echo rc=$?"),
    );
    assert!(!stdout(&out).contains("from-loopback"), "{}", text(&out));
    assert!(stdout(&out).contains("rc=4"), "{}", text(&out));

    let Some(ip) = host_address() else {
        eprintln!("skipped the host-address half: this machine has no non-loopback IPv4 address");
        return;
    };
    let port = http_server(ip, "from-host-address\n");
    let out = builtin(
        &m,
        &[],
        &format!("wget -qO- -T 10 -t 1 http://{ip}:{port}/"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "from-host-address\n");
}

/// Answers every A query with 10.1.2.3 and every other query with no records.
fn dns_server() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while let Ok((n, peer)) = s.recv_from(&mut b) {
            let q = &b[..n];
            // Header (12 bytes), then the question: labels up to a zero byte, type, class.
            let Some(end) = q[12..].iter().position(|&x| x == 0).map(|p| 12 + p + 5) else {
                continue;
            };
            if end > n {
                continue;
            }
            let qtype = u16::from_be_bytes([q[end - 4], q[end - 3]]);
            let a = qtype == 1;
            let mut r = Vec::with_capacity(end + 16);
            r.extend_from_slice(&q[..2]); // id
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(a), 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..end]);
            if a {
                r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
            }
            let _ = s.send_to(&r, peer);
        }
    });
    port
}

#[test]
fn dns_udp_and_ping_go_through_the_stack() {
    let Some(m) = TestMachine::get() else { return };
    let dns = dns_server();
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        while let Ok((n, peer)) = echo.recv_from(&mut b) {
            let mut r = b"echo:".to_vec();
            r.extend_from_slice(&b[..n]);
            let _ = echo.send_to(&r, peer);
        }
    });
    let ping_target = host_address().unwrap_or(Ipv4Addr::new(10, 0, 2, 2));
    let script = format!(
        "busybox nslookup test.burrow.invalid 10.0.2.3 | grep -c 10.1.2.3; \
         exec 3<>/dev/udp/10.0.2.2/{echo_port}; echo hello-udp >&3; \
         timeout 10 dd bs=2048 count=1 status=none <&3; \
         busybox ping -c 2 -W 5 10.0.2.2 | grep -c 'bytes from'; \
         busybox ping -c 2 -W 5 {ping_target} | grep -c 'bytes from'"
    );
    let out = builtin(&m, &[&format!("--dns-upstream=127.0.0.1:{dns}")], &script);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(
        lines,
        ["1", "echo:hello-udp", "2", "2"],
        "nslookup answer count, UDP echo, pings of the gateway and of {ping_target}: {}",
        text(&out)
    );
}

#[test]
fn udp_bursts_through_the_stack_keep_each_datagram_whole_both_ways() {
    // The stack sends a run of one flow's datagrams from the namespace in one send (GSO when
    // they are of one size) and frames a run of replies as one GSO write to the tap: each
    // datagram must still arrive as itself, in order, both ways. (A first exchange resolves the
    // gateway's address: datagrams the namespace's kernel holds back until then may leave out of
    // order, with or without the stack.)
    let Some(m) = TestMachine::get() else { return };
    let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 65536];
        let mut seen = Vec::new();
        while let Ok((n, peer)) = echo.recv_from(&mut b) {
            let _ = echo.send_to(&b[..n], peer);
            if &b[..n] == b"ping" {
                continue;
            }
            seen.push(format!(
                "{}/{n}",
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            ));
            if seen.len() == 40 {
                let _ = seen_tx.send(seen.join(","));
            }
        }
    });
    let client = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)\n\
         s.connect(('10.0.2.2', {echo_port}))\n\
         s.send(b'ping'); s.recv(100)\n\
         size = lambda i: 300 if i == 17 else 1400 if i in (30, 31) else 1200\n\
         for i in range(40): s.send(i.to_bytes(4, 'big') + b'x' * (size(i) - 4))\n\
         got = []\n\
         for _ in range(40):\n\
         \x20   d = s.recv(65536); got.append('%d/%d' % (int.from_bytes(d[:4], 'big'), len(d)))\n\
         print(','.join(got))\n"
    );
    let out = builtin(&m, &[], &format!("python3 -c \"{client}\""));
    let size = |i: usize| match i {
        17 => 300,
        30 | 31 => 1400,
        _ => 1200,
    };
    let want: Vec<String> = (0..40).map(|i| format!("{i}/{}", size(i))).collect();
    let want = want.join(",");
    let seen = seen_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("the host got fewer than 40 datagrams: {}", text(&out)));
    assert_eq!(seen, want, "namespace -> host");
    assert_eq!(
        stdout(&out).trim(),
        want,
        "host -> namespace: {}",
        text(&out)
    );
}

#[test]
fn a_gigabyte_each_way_arrives_intact() {
    let Some(m) = TestMachine::get() else { return };
    const SIZE: u64 = 1 << 30;
    // Namespace → host: the namespace sends random bytes and their sha256; we hash what arrives.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let up_sum = std::thread::spawn(move || {
        let (mut c, _) = up.accept().unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = c.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
            h.update(&buf[..n]);
        }
        (total, format!("{:x}", h.finalize()))
    });
    // Host → namespace: we send pseudo-random bytes and their sha256; the namespace hashes them.
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let down_port = down.local_addr().unwrap().port();
    let down_sum = std::thread::spawn(move || {
        let (mut c, _) = down.accept().unwrap();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut sent = 0u64;
        while sent < SIZE {
            for chunk in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            c.write_all(&buf).unwrap();
            h.update(&buf);
            sent += buf.len() as u64;
        }
        format!("{:x}", h.finalize())
    });
    let script = format!(
        "set -e; head -c {SIZE} /dev/urandom | tee >(sha256sum > \"$ROOTLESSKIT_STATE_DIR/up\") \
         > /dev/tcp/10.0.2.2/{up_port}; wait $!; cut -d' ' -f1 \"$ROOTLESSKIT_STATE_DIR/up\"; \
         sha256sum < /dev/tcp/10.0.2.2/{down_port} | cut -d' ' -f1"
    );
    let out = builtin(&m, &[], &script);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    let (up_total, up_host) = up_sum.join().unwrap();
    let down_host = down_sum.join().unwrap();
    assert_eq!(up_total, SIZE, "namespace → host byte count");
    assert_eq!(lines.len(), 2, "{}", text(&out));
    assert_eq!(lines[0], up_host, "namespace → host checksum");
    assert_eq!(lines[1], down_host, "host → namespace checksum");
}

#[test]
fn five_hundred_connections_at_once() {
    let Some(m) = TestMachine::get() else { return };
    const N: usize = 500;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Every connection is held until all N are open, then each gets its own number back.
    let all = Arc::new(Barrier::new(N));
    std::thread::spawn(move || {
        for c in l.incoming().take(N) {
            let Ok(mut c) = c else { continue };
            let all = all.clone();
            std::thread::spawn(move || {
                let mut line = Vec::new();
                let mut b = [0u8; 1];
                while c.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
                    line.push(b[0]);
                }
                all.wait();
                let _ = c.write_all(&line);
                let _ = c.write_all(b"-ok\n");
            });
        }
    });
    let script = format!(
        "ulimit -n 4096; for i in $(seq 1 {N}); do \
           ( exec 3<>/dev/tcp/10.0.2.2/{port} && echo $i >&3 && read -t 120 -r r <&3 && echo $r ) & \
         done; wait"
    );
    let out = builtin(&m, &[], &script);
    let mut got: Vec<String> = stdout(&out).lines().map(String::from).collect();
    got.sort();
    let mut want: Vec<String> = (1..=N).map(|i| format!("{i}-ok")).collect();
    want.sort();
    assert_eq!(got.len(), N, "{}", text(&out));
    assert_eq!(got, want);
}

/// The receive buffer (bytes) of the UDP socket bound to `port` on the host, as `ss` shows it.
fn udp_receive_buffer(port: u16) -> Option<u64> {
    let out = std::process::Command::new("ss")
        .args(["-H", "-u", "-a", "-n", "-m", &format!("sport = :{port}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find(",rb")? + 3;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Retries `f` for up to a minute (the namespace's server starts after the launcher is ready).
fn retry<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("gave up: {e}"),
        }
    }
}

#[test]
fn the_slirp_port_driver_shows_the_clients_address() {
    let Some(m) = TestMachine::get() else { return };
    let Some(ip) = host_address() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address to connect from");
        return;
    };
    let (tcp_port, udp_port) = (free_port(), free_port());
    // In the namespace: a TCP (IPv4 and IPv6) and a UDP server that answer with the address
    // they see.
    let server = "import socket, threading\n\
        def peer(a): return a[0][7:] if a[0].startswith('::ffff:') else a[0]\n\
        def tcp():\n\
        \x20   s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
        \x20   s.bind(('::', 8080)); s.listen(8)\n\
        \x20   for _ in range(3):\n\
        \x20       c, a = s.accept(); c.sendall(peer(a).encode()); c.close()\n\
        def udp():\n\
        \x20   u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5353))\n\
        \x20   d, a = u.recvfrom(100); u.sendto(b'udp:' + a[0].encode(), a)\n\
        \x20   got = []\n\
        \x20   while len(got) < 40:\n\
        \x20       d, a = u.recvfrom(65536)\n\
        \x20       if d == b'who': u.sendto(b'udp:' + a[0].encode(), a); continue\n\
        \x20       got.append('%d/%d' % (int.from_bytes(d[:4], 'big'), len(d)))\n\
        \x20   u.sendto(','.join(got).encode(), a)\n\
        t = [threading.Thread(target=f) for f in (tcp, udp)]\n\
        [x.start() for x in t]; [x.join() for x in t]\n";
    let mut cmd = m.user_command(launcher(&m));
    cmd.args([
        "--net=builtin",
        "--ipv6",
        "--port-driver=slirp",
        "-p",
        &format!("{tcp_port}:8080/tcp"),
        "-p",
        &format!("0.0.0.0:{udp_port}:5353/udp"),
        "python3",
        "-c",
        server,
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = burrow_testsupport::spawn_retrying(&mut cmd).expect("start the launcher");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let ask = |addr: std::net::SocketAddr| {
        retry(|| {
            let mut c = std::net::TcpStream::connect(addr)?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            if s.is_empty() {
                return Err(std::io::Error::other("empty answer"));
            }
            Ok(s)
        })
    };
    assert_eq!(ask((ip, tcp_port).into()), ip.to_string(), "TCP from {ip}");
    assert_eq!(
        ask((Ipv4Addr::LOCALHOST, tcp_port).into()),
        "10.0.2.2",
        "TCP from the host's loopback shows as the gateway"
    );
    assert_eq!(
        ask((std::net::Ipv6Addr::LOCALHOST, tcp_port).into()),
        "fd00::2",
        "TCP from the host's ::1 enters over IPv6 from the IPv6 gateway"
    );
    let u = UdpSocket::bind((ip, 0)).unwrap();
    u.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let got = retry(|| {
        u.send_to(b"who", (ip, udp_port))?;
        let mut b = [0u8; 100];
        let n = u.recv(&mut b)?;
        Ok(String::from_utf8_lossy(&b[..n]).into_owned())
    });
    assert_eq!(got, format!("udp:{ip}"), "UDP from {ip}");
    // The published port's socket has room for bursts (the default 208 KiB lost half of a
    // 2 Gbit/s stream while the stack was not scheduled).
    let rb = udp_receive_buffer(udp_port).expect("ss shows the published UDP port");
    assert!(
        rb > 212_992,
        "the published UDP port's receive buffer is {rb} bytes"
    );
    // A burst of datagrams, runs of one size among others (the stack frames a run as one GSO
    // write to the tap): each arrives as itself, in order.
    let sizes = |i: usize| match i {
        17 => 300,
        30 | 31 => 1400,
        _ => 1200,
    };
    for i in 0..40usize {
        let mut d = vec![b'x'; sizes(i)];
        d[..4].copy_from_slice(&(i as u32).to_be_bytes());
        u.send_to(&d, (ip, udp_port)).unwrap();
    }
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 4096];
    let n = u
        .recv(&mut b)
        .expect("the namespace's server reports the burst");
    let want: Vec<String> = (0..40).map(|i| format!("{i}/{}", sizes(i))).collect();
    assert_eq!(String::from_utf8_lossy(&b[..n]), want.join(","));
    let status = child.0.wait().unwrap();
    assert!(status.success(), "the namespace's server failed: {status}");
}

#[test]
fn ipv6_reaches_the_hosts_loopback_through_the_gateway() {
    let Some(m) = TestMachine::get() else { return };
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: this host has no IPv6 loopback");
        return;
    };
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let peer = c
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let mut req = [0u8; 1024];
            let _ = c.read(&mut req);
            let body = format!("v6 from {peer}\n");
            let _ = write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let echo = UdpSocket::bind("[::1]:0").unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut b = [0u8; 2048];
        while let Ok((n, peer)) = echo.recv_from(&mut b) {
            let mut r = b"echo6:".to_vec();
            r.extend_from_slice(&b[..n]);
            let _ = echo.send_to(&r, peer);
        }
    });
    let script = format!(
        "ip -6 -o addr show tap0 | grep -c 'fd00::100/64'; \
         wget -qO- -T 10 -t 1 'http://[fd00::2]:{port}/'; \
         exec 3<>/dev/udp/fd00::2/{echo_port}; echo hi >&3; \
         timeout 10 dd bs=2048 count=1 status=none <&3; \
         busybox ping -6 -c 2 -W 5 fd00::2 | grep -c 'bytes from'"
    );
    let out = builtin(&m, &["--ipv6"], &script);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(
        lines,
        ["1", "v6 from ::1", "echo6:hi", "2"],
        "address, TCP and UDP to the host's ::1 via fd00::2, ping of fd00::2: {}",
        text(&out)
    );
    // Without --ipv6 the namespace has no IPv6 route out.
    let out = builtin(
        &m,
        &[],
        &format!("wget -qO- -T 5 -t 1 'http://[fd00::2]:{port}/'; echo rc=$?"),
    );
    assert!(!stdout(&out).contains("v6 from"), "{}", text(&out));
}
