//! Shared by the port tests: a real child network namespace (made with `unshare` by the current
//! user) and echo servers listening inside it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use burrow_rootlesskit::port::builtin::NetnsSockets;
use nix::sys::socket::{self, SockaddrStorage};

/// A `sleep` in new user + network namespaces with loopback up; killed on drop.
pub struct ChildNetns {
    child: Child,
}

impl ChildNetns {
    /// None (with the reason printed) when this machine cannot make user namespaces.
    pub fn new() -> Option<ChildNetns> {
        let spawned = Command::new("unshare")
            .args([
                "--user",
                "--map-root-user",
                "--net",
                "sh",
                "-c",
                "ip link set lo up && echo ready && exec sleep 600",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping: cannot run unshare: {e}");
                return None;
            }
        };
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line);
        if line.trim() != "ready" {
            let mut err = String::new();
            let _ = child
                .stderr
                .as_mut()
                .expect("piped")
                .read_to_string(&mut err);
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "skipping: cannot create a user+network namespace here: {}",
                err.trim()
            );
            return None;
        }
        Some(ChildNetns { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A fresh fd of the namespace, as the launcher would pass one.
    pub fn fd(&self) -> OwnedFd {
        std::fs::File::open(format!("/proc/{}/ns/net", self.pid()))
            .expect("open the child's netns")
            .into()
    }
}

impl Drop for ChildNetns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bound(sockets: &NetnsSockets, ip: IpAddr, ty: libc::c_int) -> (OwnedFd, SocketAddr) {
    let domain = if ip.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = sockets
        .socket_blocking(domain, ty)
        .expect("socket in the child netns");
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(SocketAddr::new(ip, 0)),
    )
    .expect("bind in the child netns");
    let local: SockaddrStorage =
        socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).expect("getsockname");
    let addr = if let Some(v4) = local.as_sockaddr_in() {
        SocketAddr::from(*v4)
    } else {
        SocketAddr::from(*local.as_sockaddr_in6().expect("inet6"))
    };
    (fd, addr)
}

/// A TCP echo server at `ip`:random port inside the namespace: echoes until the client
/// half-closes, then half-closes back. Runs until the process exits.
pub fn tcp_echo(sockets: &NetnsSockets, ip: IpAddr) -> SocketAddr {
    let (fd, addr) = bound(sockets, ip, libc::SOCK_STREAM);
    socket::listen(&fd, socket::Backlog::new(2048).unwrap()).expect("listen");
    let listener = std::net::TcpListener::from(fd);
    listener.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = conn.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

/// A UDP echo server at `ip`:random port inside the namespace.
pub fn udp_echo(sockets: &NetnsSockets, ip: IpAddr) -> SocketAddr {
    let (fd, addr) = bound(sockets, ip, libc::SOCK_DGRAM);
    let sock = std::net::UdpSocket::from(fd);
    sock.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    });
    addr
}

/// The host's first global address of the given family, if any (for "non-loopback" tests).
pub fn host_global_addr(v6: bool) -> Option<IpAddr> {
    let out = Command::new("ip")
        .args([
            if v6 { "-6" } else { "-4" },
            "-o",
            "addr",
            "show",
            "scope",
            "global",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let word = text
        .split_whitespace()
        .skip_while(|w| *w != "inet" && *w != "inet6")
        .nth(1)?;
    word.split('/').next()?.parse().ok()
}

/// A free port on the host (bound then released; tests accept the tiny race).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `msg`, half-closes, reads everything back.
pub fn tcp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.write_all(msg).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back)
        .unwrap_or_else(|e| panic!("read from {addr}: {e}"));
    back
}

/// Sends one datagram to `addr` from a new socket and returns the reply.
pub fn udp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    let s = std::net::UdpSocket::bind(local).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    s.send_to(msg, addr).unwrap();
    let mut buf = [0u8; 65536];
    let (n, _) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no udp reply via {addr}: {e}"));
    buf[..n].to_vec()
}

/// Asserts that `addr` refuses connections. Retries for a while because a process fork made by
/// another test running in parallel (std's spawn, the socket helper) can hold a copy of a
/// just-closed listener for the few microseconds before its exec/close_range.
pub fn assert_refused(addr: SocketAddr) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            Err(e) => panic!("connect {addr}: {e}"),
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(_) => panic!("{addr} still accepts connections after its port was removed"),
        }
    }
}

/// When run as root on a provisioned test machine, runs this whole test binary again as the
/// unprivileged test user and asserts it passes (there this function returns at once): the driver
/// must work for a launcher without any privilege.
pub fn rerun_as_test_user() {
    let Some(machine) = burrow_testsupport::TestMachine::get() else {
        return;
    };
    if machine.is_self {
        return;
    }
    let exe = machine.install_bin(std::env::current_exe().expect("the test binary's path"));
    let mut cmd = machine.user_command(&exe);
    cmd.arg("--test-threads=2");
    // ETXTBSY: a fork made by a parallel test can briefly hold the copy's write fd open.
    let mut tries = 0;
    let out = loop {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => {
                break r.unwrap_or_else(|e| {
                    panic!("running {} as {}: {e}", exe.display(), machine.user)
                })
            }
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the tests failed as the unprivileged user {}:\n{text}",
        machine.user
    );
    assert!(text.contains("test result: ok"), "{text}");
    eprintln!(
        "re-run as {}: {}",
        machine.user,
        text.lines()
            .find(|l| l.contains("test result"))
            .unwrap_or("")
    );
}

/// A UDP server inside the namespace that answers each datagram with the sender's address.
pub fn udp_whoami(sockets: &NetnsSockets, ip: IpAddr) -> SocketAddr {
    let (fd, addr) = bound(sockets, ip, libc::SOCK_DGRAM);
    let sock = std::net::UdpSocket::from(fd);
    sock.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(from.to_string().as_bytes(), from);
        }
    });
    addr
}

/// Sends `msg` from `sock` to `to` and returns the reply as text.
pub fn udp_ask(sock: &std::net::UdpSocket, to: SocketAddr, msg: &[u8]) -> String {
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    sock.send_to(msg, to).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no udp reply via {to}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
