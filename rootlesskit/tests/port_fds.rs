//! 1,000 concurrent connections through the builtin driver, then the process's fd count is back
//! where it started (alone in its own test binary so no other test moves the count).

mod port_support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burrow_rootlesskit::port::builtin::{BuiltinDriver, NetnsSockets};
use burrow_rootlesskit::port::PortDriver;
use port_support::*;

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (up to a generous bound, not a timing assertion) for the count to settle at `want`.
fn settle(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = fd_count();
        if n <= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn thousand_concurrent_connections_leave_no_fds_behind() {
    let Some(ns) = ChildNetns::new() else { return };
    let sockets = NetnsSockets::new(&ns.fd()).unwrap();
    let echo = tcp_echo(&sockets, "127.0.0.1".parse().unwrap());
    let driver = BuiltinDriver::new(ns.fd()).unwrap();
    let p = free_port();
    let st = driver
        .add(
            format!("127.0.0.1:{p}:{}/tcp", echo.port())
                .parse()
                .unwrap(),
        )
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], p).into();
    let start = fd_count();
    assert_eq!(tcp_roundtrip(addr, b"warm"), b"warm");

    let mut conns = Vec::new();
    for i in 0..1000u32 {
        let mut c =
            std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        c.write_all(&i.to_be_bytes()).unwrap();
        conns.push(c);
    }
    // All 1,000 are open at once: each gets its own bytes back.
    for (i, c) in conns.iter_mut().enumerate() {
        let mut b = [0u8; 4];
        c.read_exact(&mut b)
            .unwrap_or_else(|e| panic!("echo on connection {i}: {e}"));
        assert_eq!(u32::from_be_bytes(b), i as u32);
    }
    assert!(
        fd_count() >= start + 1000,
        "the connections were not concurrent"
    );
    drop(conns);
    // The driver keeps a few sockets for the next connections made ahead (at most STOCK_MAX)
    // and a few spare pipes.
    let most = start + NetnsSockets::STOCK_MAX + BuiltinDriver::SPARE_PIPE_FDS;
    let end = settle(most);
    assert!(end <= most, "fds leaked: {start} before, {end} after");

    driver.remove(st.id).unwrap();
    drop(driver);
    // Then the same as the unprivileged test user (sequentially: the re-run's pipes are fds too).
    rerun_as_test_user();
}
