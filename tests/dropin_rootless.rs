//! burrow-rootlesskit in RootlessKit's place under a containerd laid out as nerdctl's
//! containerd-rootless.sh lays it out, with each of the script's launcher settings
//! (CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin|slirp4netns,
//! CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=true|false; the script's other flags as it passes
//! them), and burrow's CLI using that containerd: a published port answering on the host, a
//! container reaching another by name, and `--network host` joining the runtime's network
//! (the launcher's, or the host's own with --detach-netns); UDP both ways through a published
//! port, datagrams whole and in order.
//!
//! The script itself is nerdctl's and not part of this project (nor of Debian 12): running it
//! unmodified with burrow-rootlesskit as `rootlesskit` is described in docs/rootlesskit.md,
//! "Switching from RootlessKit"; this test starts the launcher with the flags the script
//! computes and lays the child out as the script does.

mod containers_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, wait_for, TestMachine};
use containers_support::*;

/// burrow-rootlesskit, installed where the test user can run it (next to burrow).
fn launcher(m: &TestMachine) -> Option<PathBuf> {
    let l = installed_burrow(m).with_file_name("burrow-rootlesskit");
    if l.exists() {
        Some(l)
    } else {
        eprintln!("SKIP: burrow-rootlesskit is not built (cargo build --workspace)");
        None
    }
}

/// The launcher flags containerd-rootless.sh passes, for a port driver, with or without
/// --detach-netns (what the script adds when the launcher's --help lists it).
fn script_flags(port_driver: &str, detach: bool) -> Vec<String> {
    let mut f: Vec<String> = [
        "--net=slirp4netns",
        "--mtu=65520",
        "--slirp4netns-sandbox=auto",
        "--slirp4netns-seccomp=auto",
        "--disable-host-loopback",
    ]
    .map(String::from)
    .to_vec();
    f.push(format!("--port-driver={port_driver}"));
    if detach {
        f.push("--detach-netns".into());
    }
    f
}

#[test]
fn burrow_cli_on_the_scripts_containerd_under_burrow_rootlesskit() {
    let Some(m) = TestMachine::get() else { return };
    let Some(launcher) = launcher(&m) else { return };
    let demo = image("demo");
    let bb = image("busybox");
    for (port_driver, detach) in [
        ("builtin", true),
        ("builtin", false),
        ("slirp4netns", false),
        ("slirp4netns", true),
    ] {
        let what = format!("--port-driver={port_driver} detach-netns={detach}");
        let flags = script_flags(port_driver, detach);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let name = format!("dropin-{port_driver}-{detach}");
        let Some(rl) = rootless_with(&name, Some(&launcher), &flags) else {
            return;
        };
        let port = free_port();
        let publish = format!("{port}:80");
        let out = rl.burrow(&["run", "-d", "--name", "web", "-p", &publish, &demo]);
        assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
        let body = http_get(&format!("127.0.0.1:{port}"));
        assert!(
            body.as_deref()
                .is_some_and(|b| b.contains("Hello from a rootless burrow")),
            "{what}: the published port did not answer: {body:?}"
        );
        let out = rl.burrow(&[
            "run",
            "--rm",
            &bb,
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 80 | tail -1",
        ]);
        assert!(
            stdout(&out).contains("Hello from a rootless burrow"),
            "{what}: a container did not reach another by name: {} {}",
            stdout(&out),
            stderr(&out)
        );
        // --network host is the runtime's own network: the launcher's (its tap0), or with
        // --detach-netns the host's own namespace (as nerdctl 2 gives it).
        let out = rl.burrow(&[
            "run",
            "--rm",
            "--network",
            "host",
            &bb,
            "sh",
            "-c",
            "readlink /proc/self/ns/net; ip addr",
        ]);
        let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
        let in_host = stdout(&out).contains(&*host_net.to_string_lossy());
        let on_tap = stdout(&out).contains("tap0") && stdout(&out).contains("10.0.2.100");
        assert!(
            if detach {
                in_host && !on_tap
            } else {
                on_tap && !in_host
            },
            "{what}: --network host is not the {} network: {} {}",
            if detach { "host's" } else { "launcher's" },
            stdout(&out),
            stderr(&out)
        );
        if detach {
            // containerd itself stays in the host's network namespace.
            let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
            let info = rl.burrow(&["info"]);
            assert_eq!(code(&info), 0, "{}", stderr(&info));
            let child =
                std::fs::read_to_string(rl.runtime_dir.join("containerd-rootless/child_pid"))
                    .unwrap();
            let child_net = std::fs::read_link(format!("/proc/{}/ns/net", child.trim())).unwrap();
            assert_eq!(
                child_net, host_net,
                "{what}: the child left the host's network"
            );
        }
        let out = rl.burrow(&["rm", "-f", "web"]);
        assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
        if detach {
            // `network rm` deletes the bridge in the namespace the containers are in, which
            // with --detach-netns is not the launcher child's (it was left there).
            let links = || ok(&rl.burrow(&["setup", "nsenter", "--", "ip", "-o", "link", "show"]));
            ok(&rl.burrow(&["network", "create", "dropin-net"]));
            let inspect: serde_json::Value =
                serde_json::from_str(&ok(&rl.burrow(&["network", "inspect", "dropin-net"])))
                    .unwrap();
            let bridge = format!("br-{}:", &inspect[0]["Id"].as_str().unwrap()[..12]);
            ok(&rl.burrow(&["run", "--rm", "--network", "dropin-net", &bb, "true"]));
            assert!(
                links().contains(&bridge),
                "{what}: no {bridge} in {}",
                links()
            );
            ok(&rl.burrow(&["network", "rm", "dropin-net"]));
            // Down when rm returns, deleted a moment later by a process of its own.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while links().contains(&bridge) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            assert!(
                !links().contains(&bridge),
                "{what}: {bridge} outlived network rm: {}",
                links()
            );
        }
        // slirp4netns's own forwarding drops the container's UDP replies while
        // --disable-host-loopback is on (it will not send to 10.0.2.2, where it shows the
        // host's clients), under RootlessKit too: see docs/rootlesskit.md.
        if port_driver == "builtin" {
            udp_through_a_published_port(&rl, &what);
        }
    }
}

/// iperf3 in a container with 5201 published for TCP (its control connection) and UDP, and
/// iperf3 on the host sending UDP to it and (`-R`) receiving UDP from it: every datagram
/// that arrives must be whole and in order (iperf3 numbers them), and most must arrive.
fn udp_through_a_published_port(rl: &Rootless, what: &str) {
    let port = free_port();
    let tcp = format!("127.0.0.1:{port}:5201/tcp");
    let udp = format!("127.0.0.1:{port}:5201/udp");
    let tools = image("tools");
    let out = rl.burrow(&[
        "run", "-d", "--name", "udp", "-p", &tcp, "-p", &udp, &tools, "iperf3", "-s",
    ]);
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
    for reverse in [false, true] {
        let mut argv = vec![
            "-c",
            "127.0.0.1",
            "-u",
            "-b",
            "100M",
            "-l",
            "1400",
            "-t",
            "1",
        ];
        let port = port.to_string();
        argv.extend(["-p", &port, "--json"]);
        if reverse {
            argv.push("-R");
        }
        // The launcher's port answers before iperf3 in the container listens.
        let mut report = None;
        wait_for(Duration::from_secs(30), || {
            // iperf3 waits for ever for a UDP reply that does not come.
            let mut c = Command::new("timeout");
            c.args(["10", "iperf3"]).args(&argv);
            let out = run_with_timeout(&mut c, Duration::from_secs(20));
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let done = code(&out) == 0 && json["end"]["sum"]["packets"].as_u64().is_some();
            report = Some(json);
            done
        });
        let json = report.unwrap_or_default();
        let sum = &json["end"]["sum"];
        let (packets, lost) = (
            sum["packets"].as_u64().unwrap_or(0),
            sum["lost_packets"].as_u64().unwrap_or(u64::MAX),
        );
        let disorder = json["end"]["streams"][0]["udp"]["out_of_order"].as_u64();
        assert!(
            packets > 0 && lost < packets / 4 && disorder == Some(0),
            "{what}: UDP {} the published port: {packets} sent, {lost} lost, out of order \
             {disorder:?}; iperf3 said {}",
            if reverse { "back through" } else { "into" },
            json["error"]
        );
    }
    let out = rl.burrow(&["rm", "-f", "udp"]);
    assert_eq!(code(&out), 0, "{what}: {}", stderr(&out));
}
