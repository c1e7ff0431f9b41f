//! The container bridge's MTU: rootless, every network's bridge takes the launcher's MTU (the
//! harness's launcher has `--mtu=65520`), so a container's TCP segments are as large as the
//! launcher's tap allows; rootful, the host's bridges keep the kernel's default (1500).

mod containers_support;

use std::io::Read;

use containers_support::*;

const MTU: &str = "cat /sys/class/net/eth0/mtu";

#[test]
fn rootless_bridges_take_the_launchers_mtu() {
    let Some(rl) = rootless("netmtu") else {
        return;
    };
    let bb = image("busybox");
    let default = ok(&rl.burrow(&["run", "--rm", &bb, "sh", "-c", MTU]));
    assert_eq!(default.trim(), "65520", "default network");
    ok(&rl.burrow(&["network", "create", "--subnet", "10.4.181.0/24", "mtu-net"]));
    let user = ok(&rl.burrow(&["run", "--rm", "--network", "mtu-net", &bb, "sh", "-c", MTU]));
    assert_eq!(user.trim(), "65520", "user-defined network");

    // A megabyte from the container to the host arrives whole over the large-MTU path.
    let Some(ip) = host_ip() else {
        eprintln!("SKIP (transfer): no non-loopback host address");
        return;
    };
    let listener = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got.len()
    });
    let send = format!("head -c 1048576 /dev/zero | nc {ip} {port}");
    ok(&rl.burrow(&["run", "--rm", &bb, "sh", "-c", &send]));
    assert_eq!(reader.join().unwrap(), 1 << 20);
}

#[test]
fn rootful_bridges_keep_the_hosts_default_mtu() {
    let Some(d) = rootful("netmtu") else {
        return;
    };
    let out = ok(&d.burrow(&["run", "--rm", &image("busybox"), "sh", "-c", MTU]));
    assert_eq!(out.trim(), "1500");
}
