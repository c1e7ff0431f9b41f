//! The builtin port driver against a real child network namespace: TCP and UDP over IPv4 and
//! IPv6, from loopback and from a non-loopback host address, half-close, conflicts, removal,
//! and connections reusing the driver's spare pipes.

mod port_support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

use burrow_rootlesskit::port::builtin::{BuiltinDriver, NetnsSockets, Options};
use burrow_rootlesskit::port::{PortDriver, PortError, PortSpec, Proto};
use port_support::*;

fn spec(s: &str) -> PortSpec {
    s.parse().unwrap()
}

fn setup() -> Option<(ChildNetns, NetnsSockets, std::sync::Arc<BuiltinDriver>)> {
    let ns = ChildNetns::new()?;
    let sockets = NetnsSockets::new(&ns.fd()).expect("socket helper for the test servers");
    let driver = BuiltinDriver::new(ns.fd()).expect("builtin driver");
    Some((ns, sockets, driver))
}

#[test]
fn tcp_v4_and_v6_from_loopback_and_host_address() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo4 = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let echo6 = tcp_echo(&sockets, "::1".parse().unwrap());

    // "tcp" with no parent IP: dual-stack listener, child IP defaults to 127.0.0.1.
    let p = free_port();
    let st = driver
        .add(spec(&format!("{p}:{}/tcp", echo4.port())))
        .unwrap();
    assert_eq!(st.spec.proto, Proto::Tcp);
    let msg = vec![7u8; 3 * 1024 * 1024];
    assert_eq!(
        tcp_roundtrip(SocketAddr::new("127.0.0.1".parse().unwrap(), p), &msg),
        msg
    );
    assert_eq!(
        tcp_roundtrip(SocketAddr::new("::1".parse().unwrap(), p), b"hello over v6"),
        b"hello over v6"
    );
    match host_global_addr(false) {
        Some(ip) => assert_eq!(
            tcp_roundtrip(SocketAddr::new(ip, p), b"from eth"),
            b"from eth"
        ),
        None => eprintln!("no global IPv4 address on this host: non-loopback v4 part skipped"),
    }
    match host_global_addr(true) {
        Some(ip) => assert_eq!(
            tcp_roundtrip(SocketAddr::new(ip, p), b"from eth6"),
            b"from eth6"
        ),
        None => eprintln!("no global IPv6 address on this host: non-loopback v6 part skipped"),
    }

    // tcp6 on [::1] to the child's [::1].
    let p6 = free_port();
    driver
        .add(spec(&format!("[::1]:{p6}:[::1]:{}/tcp6", echo6.port())))
        .unwrap();
    assert_eq!(
        tcp_roundtrip(SocketAddr::new("::1".parse().unwrap(), p6), b"six"),
        b"six"
    );

    // tcp4 bound to 127.0.0.1 only: the host address does not answer.
    let p4 = free_port();
    driver
        .add(spec(&format!("127.0.0.1:{p4}:{}/tcp4", echo4.port())))
        .unwrap();
    assert_eq!(
        tcp_roundtrip(SocketAddr::new("127.0.0.1".parse().unwrap(), p4), b"four"),
        b"four"
    );
    if let Some(ip) = host_global_addr(false) {
        assert!(
            std::net::TcpStream::connect(SocketAddr::new(ip, p4)).is_err(),
            "127.0.0.1-only port answered on {ip}"
        );
    }
    assert_eq!(driver.list().len(), 3);
}

#[test]
fn udp_v4_and_v6_with_several_clients() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo4 = udp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let echo6 = udp_echo(&sockets, "::1".parse().unwrap());
    let p = free_port();
    driver
        .add(spec(&format!("{p}:{}/udp", echo4.port())))
        .unwrap();
    for i in 0..5u8 {
        let msg = vec![i; 1000 + i as usize];
        assert_eq!(
            udp_roundtrip(SocketAddr::new("127.0.0.1".parse().unwrap(), p), &msg),
            msg
        );
    }
    assert_eq!(
        udp_roundtrip(SocketAddr::new("::1".parse().unwrap(), p), b"v6 client"),
        b"v6 client"
    );
    if let Some(ip) = host_global_addr(false) {
        assert_eq!(
            udp_roundtrip(SocketAddr::new(ip, p), b"eth client"),
            b"eth client"
        );
    }
    let p6 = free_port();
    driver
        .add(spec(&format!("[::1]:{p6}:[::1]:{}/udp6", echo6.port())))
        .unwrap();
    assert_eq!(
        udp_roundtrip(SocketAddr::new("::1".parse().unwrap(), p6), b"six"),
        b"six"
    );
    if let Some(ip) = host_global_addr(true) {
        let p = free_port();
        driver
            .add(spec(&format!("[{ip}]:{p}:[::1]:{}/udp6", echo6.port())))
            .unwrap();
        assert_eq!(udp_roundtrip(SocketAddr::new(ip, p), b"eth6"), b"eth6");
    }
    let p4 = free_port();
    driver
        .add(spec(&format!(
            "0.0.0.0:{p4}:127.0.0.1:{}/udp4",
            echo4.port()
        )))
        .unwrap();
    assert_eq!(
        udp_roundtrip(SocketAddr::new("127.0.0.1".parse().unwrap(), p4), b"four"),
        b"four"
    );
}

#[test]
fn rootlesskit_family_semantics() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo4 = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let echo6 = tcp_echo(&sockets, "::1".parse().unwrap());
    let v4: IpAddr = "127.0.0.1".parse().unwrap();
    let v6: IpAddr = "::1".parse().unwrap();

    // 0.0.0.0 with "tcp" listens on IPv6 too (Go's net.Listen), to a child on IPv6.
    let p = free_port();
    driver
        .add(spec(&format!("0.0.0.0:{p}:[::1]:{}/tcp", echo6.port())))
        .unwrap();
    for ip in [v4, v6] {
        assert_eq!(
            tcp_roundtrip(SocketAddr::new(ip, p), b"dual"),
            b"dual",
            "{ip}"
        );
    }
    // [::] to a child on IPv4.
    let p = free_port();
    driver
        .add(spec(&format!("[::]:{p}:[127.0.0.1]:{}/tcp", echo4.port())))
        .unwrap();
    assert_eq!(
        tcp_roundtrip(SocketAddr::new(v6, p), b"six-to-four"),
        b"six-to-four"
    );
    assert_eq!(tcp_roundtrip(SocketAddr::new(v4, p), b"four"), b"four");

    // tcp4 and tcp6 on one port are one family each and do not conflict.
    let p = free_port();
    driver
        .add(spec(&format!("{p}:{}/tcp4", echo4.port())))
        .unwrap();
    driver
        .add(spec(&format!("{p}:[::1]:{}/tcp6", echo6.port())))
        .unwrap();
    assert_eq!(tcp_roundtrip(SocketAddr::new(v4, p), b"4"), b"4");
    assert_eq!(tcp_roundtrip(SocketAddr::new(v6, p), b"6"), b"6");
    assert_eq!(driver.list().len(), 4);
}

#[test]
fn conflicts_and_addresses_in_use_are_refused() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let p = free_port();
    let st = driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    match driver.add(spec(&format!("127.0.0.1:{p}:9/tcp"))) {
        Err(PortError::Conflict { id, .. }) => assert_eq!(id, st.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Something else on the host holds the port.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = held.local_addr().unwrap().port();
    let err = driver
        .add(spec(&format!("127.0.0.1:{hp}:80/tcp4")))
        .unwrap_err();
    assert!(matches!(err, PortError::AddrInUse { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{hp}")),
        "message does not name the address: {err}"
    );
    assert_eq!(driver.list().len(), 1);
    assert!(matches!(
        driver.remove(12345),
        Err(PortError::NotFound(12345))
    ));
}

#[test]
fn privileged_port_fails_with_a_hint_when_unprivileged() {
    if nix::unistd::geteuid().is_root() {
        eprintln!("skipping: running as root, ports below 1024 bind fine; the unprivileged run covers this");
        return;
    }
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if start == 0 {
        eprintln!("skipping: net.ipv4.ip_unprivileged_port_start is 0 here");
        return;
    }
    let Some((_ns, _sockets, driver)) = setup() else {
        return;
    };
    let err = driver
        .add(spec(&format!("127.0.0.1:{}:80/tcp", start - 1)))
        .unwrap_err();
    assert!(matches!(err, PortError::Privileged { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ip_unprivileged_port_start"),
        "{err}"
    );
}

#[test]
fn remove_closes_the_listener_and_its_connections() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let p = free_port();
    let st = driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p);
    let mut open = std::net::TcpStream::connect(addr).unwrap();
    open.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    open.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    open.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");

    driver.remove(st.id).unwrap();
    assert!(driver.list().is_empty());
    assert_refused(addr);
    // The open connection was closed by the driver: EOF or reset, never more data.
    let mut rest = Vec::new();
    let _ = open.write_all(b"more");
    let r = open.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || r.is_err(),
        "connection still relays after removal"
    );
    // The port can be published again.
    driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    assert_eq!(tcp_roundtrip(addr, b"again"), b"again");
}

#[test]
fn connection_to_a_closed_child_port_is_closed() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    // Reserve a child port and keep nothing listening on it.
    let echo = udp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let p = free_port();
    driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "got data from nowhere: {r:?}");
}

#[test]
fn spare_pipes_never_carry_bytes_from_one_connection_to_the_next() {
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let p = free_port();
    driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    let addr = SocketAddr::new("127.0.0.1".parse().unwrap(), p);
    for round in 0..20u8 {
        // A client that sends plenty and goes away without reading: its connection ends in a
        // reset with bytes still on the way, perhaps in a pipe.
        let mut cut = std::net::TcpStream::connect(addr).unwrap();
        let _ = cut.write_all(&vec![0xEE; 256 * 1024]);
        drop(cut);
        // The connections after it get exactly their own bytes back, short and long.
        let short = vec![round; 1 + round as usize];
        assert_eq!(tcp_roundtrip(addr, &short), short, "round {round}");
        let long = vec![round.wrapping_add(100); 200 * 1024];
        assert!(
            tcp_roundtrip(addr, &long) == long,
            "round {round}: long echo differs"
        );
    }
}

#[test]
fn rootlessctl_publishes_a_port_through_our_api_and_driver() {
    let Some((ns, sockets, driver)) = setup() else {
        return;
    };
    if std::process::Command::new("rootlessctl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: Debian's rootlessctl (package rootlesskit) is not installed");
        return;
    }
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let info = burrow_rootlesskit::api::ApiInfo {
        version: "test".into(),
        state_dir: dir.path().to_path_buf(),
        child_pid: ns.pid() as i32,
        network_driver: burrow_rootlesskit::api::NetworkDriverInfo {
            driver: "none".into(),
            dns: vec![],
            child_ip: None,
        },
        port_driver: Some(driver),
    };
    let _server = burrow_rootlesskit::api::serve(&sock, info).unwrap();
    let p = free_port();
    let out = std::process::Command::new("rootlessctl")
        .arg("--socket")
        .arg(&sock)
        .args(["add-ports", &format!("127.0.0.1:{p}:{}/tcp", echo.port())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        tcp_roundtrip(
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p),
            b"via rootlessctl"
        ),
        b"via rootlessctl"
    );
    let out = std::process::Command::new("rootlessctl")
        .arg("--socket")
        .arg(&sock)
        .args(["info"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("- Port Driver: builtin") && text.contains("[tcp tcp4 tcp6 udp udp4 udp6]"),
        "{text}"
    );
    let out = std::process::Command::new("rootlessctl")
        .arg("--socket")
        .arg(&sock)
        .args(["remove-ports", "1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_refused(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p));
}

#[test]
fn all_of_the_above_as_the_unprivileged_test_user() {
    rerun_as_test_user();
}

#[test]
fn driver_made_on_a_short_lived_thread_keeps_working() {
    let Some(ns) = ChildNetns::new() else { return };
    let sockets = NetnsSockets::new(&ns.fd()).unwrap();
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let fd = ns.fd();
    // The namespace helper must outlive the thread that created the driver.
    let driver = std::thread::spawn(move || BuiltinDriver::new(fd).unwrap())
        .join()
        .unwrap();
    let p = free_port();
    driver
        .add(spec(&format!("127.0.0.1:{p}:{}/tcp", echo.port())))
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            tcp_roundtrip(
                SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p),
                b"still here"
            ),
            b"still here"
        );
    }
}

#[test]
fn udp_bursts_keep_each_datagram_whole_and_in_order_both_ways() {
    // Back-to-back datagrams of one size go to the child as one GSO send and come back the same
    // way: each must still arrive as itself, not merged with its neighbours or cut.
    let Some((_ns, sockets, driver)) = setup() else {
        return;
    };
    let echo = udp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let p = free_port();
    driver
        .add(spec(&format!("{p}:{}/udp", echo.port())))
        .unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(("127.0.0.1", p)).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    // The first datagram opens the flow.
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 65536];
    let n = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    // Runs of one size with shorter and longer ones between them, 40 at a time (well inside
    // the echo's default socket buffer, so none is dropped for room).
    let sizes: Vec<usize> = (0..200)
        .map(|i| match i % 40 {
            17 => 300,
            30 | 31 => 9000,
            _ => 1200,
        })
        .collect();
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let mut m = vec![(i % 251) as u8; n];
            m[..4].copy_from_slice(&(i as u32).to_be_bytes());
            m
        })
        .collect();
    for burst in msgs.chunks(40) {
        for m in burst {
            client.send(m).unwrap();
        }
        for (k, m) in burst.iter().enumerate() {
            let n = client
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("echo {k} of a burst of {}: {e}", burst.len()));
            assert_eq!(
                n,
                m.len(),
                "datagram {k} of a burst came back {n} bytes long"
            );
            assert_eq!(&buf[..n], m.as_slice(), "datagram {k} of a burst");
        }
    }
}

#[test]
fn udp_flows_are_per_client_and_close_when_idle() {
    let Some(ns) = ChildNetns::new() else { return };
    let sockets = NetnsSockets::new(&ns.fd()).unwrap();
    let whoami = udp_whoami(&sockets, "127.0.0.1".parse().unwrap());
    let idle = std::time::Duration::from_millis(300);
    let driver = BuiltinDriver::with_options(
        ns.fd(),
        Options {
            udp_idle_timeout: idle,
        },
    )
    .unwrap();
    let long = BuiltinDriver::new(ns.fd()).unwrap();
    let (p, q) = (free_port(), free_port());
    driver
        .add(spec(&format!("127.0.0.1:{p}:{}/udp", whoami.port())))
        .unwrap();
    long.add(spec(&format!("127.0.0.1:{q}:{}/udp", whoami.port())))
        .unwrap();
    let short_port = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p);
    let long_port = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), q);

    // Default idle timeout (60 s): one client keeps its flow; another client gets its own.
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a1 = udp_ask(&a, long_port, b"1");
    assert_eq!(udp_ask(&a, long_port, b"2"), a1, "one client, two flows");
    assert_ne!(udp_ask(&b, long_port, b"3"), a1, "two clients, one flow");

    // Past the idle timeout the flow is gone: the same client comes from a new child socket.
    let s1 = udp_ask(&a, short_port, b"x");
    std::thread::sleep(idle * 3);
    let s2 = udp_ask(&a, short_port, b"y");
    assert_ne!(s1, s2, "the idle flow was reused");
}
