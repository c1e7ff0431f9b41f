//! Container networking flags, rootful, against a private containerd: `network connect` /
//! `disconnect` of running and stopped containers (reaching peers by name and alias, the
//! interface coming and going), several `--network` at `run`, `--network container:NAME`
//! sharing a namespace and Docker's conflicting-options errors, `--mac-address`, and inspect.

mod containers_support;

use containers_support::*;

fn refused(out: &std::process::Output, code_wanted: i32, says: &str) {
    assert_eq!(code(out), code_wanted, "{}{}", stdout(out), stderr(out));
    assert!(
        stderr(out).contains(says),
        "wanted {says:?} in: {}",
        stderr(out)
    );
}

/// `nc NAME 80` from inside `from`, retried briefly (the server may still be starting).
const FETCH: &str =
    "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $0 80 && exit 0; sleep 0.5; done; exit 1";

fn inspect(d: &Rootful, what: &[&str]) -> serde_json::Value {
    let mut args = vec!["inspect"];
    args.extend(what);
    serde_json::from_str(&ok(&d.burrow(&args))).unwrap()
}

#[test]
fn connect_disconnect_and_several_networks() {
    let Some(d) = rootful("netconn") else { return };
    let bb = image("busybox");
    ok(&d.burrow(&["network", "create", "--subnet", "10.4.161.0/24", "nc-a"]));
    ok(&d.burrow(&["network", "create", "--subnet", "10.4.162.0/24", "nc-b"]));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "nc-b",
        "--network-alias",
        "db",
        &image("demo"),
    ]));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "nc-a",
        &bb,
        "sleep",
        "300",
    ]));
    // Not on nc-b yet: the names do not resolve.
    let out = d.burrow(&["exec", "cli", "sh", "-c", "nc -w 1 db 80 </dev/null"]);
    assert_ne!(code(&out), 0, "db reached before connecting");

    ok(&d.burrow(&["network", "connect", "--alias", "front", "nc-b", "cli"]));
    let addr = ok(&d.burrow(&["exec", "cli", "ip", "-4", "addr", "show", "eth1"]));
    assert!(addr.contains("inet 10.4.162."), "{addr}");
    for name in ["srv", "db"] {
        let got = ok(&d.burrow(&["exec", "cli", "sh", "-c", FETCH, name]));
        assert!(got.contains("Hello"), "{name}: {got}");
    }
    let v = inspect(&d, &["cli"]);
    let nets = &v[0]["NetworkSettings"]["Networks"];
    assert!(
        nets["nc-a"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.4.161."),
        "{nets}"
    );
    assert!(
        nets["nc-b"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.4.162."),
        "{nets}"
    );
    // As Docker: the given aliases, then the short ID (on user-defined networks).
    let aliases = nets["nc-b"]["Aliases"].as_array().unwrap();
    assert_eq!(aliases.len(), 2, "{nets}");
    assert_eq!(aliases[0], "front", "{nets}");
    assert_eq!(aliases[1].as_str().unwrap().len(), 12, "{nets}");
    assert_eq!(nets["nc-b"]["Gateway"], "10.4.162.1");
    assert_eq!(
        nets["nc-b"]["MacAddress"].as_str().unwrap().len(),
        17,
        "{nets}"
    );
    assert_eq!(
        nets["nc-b"]["NetworkID"].as_str().unwrap().len(),
        64,
        "{nets}"
    );
    let n: serde_json::Value =
        serde_json::from_str(&ok(&d.burrow(&["network", "inspect", "nc-b"]))).unwrap();
    let members: Vec<&str> = n[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert!(members.contains(&"cli") && members.contains(&"srv"), "{n}");

    // Docker's refusals.
    let again = d.burrow(&["network", "connect", "nc-b", "cli"]);
    refused(&again, 1, "already connected");
    refused(
        &d.burrow(&["network", "connect", "nope", "cli"]),
        1,
        "not found",
    );
    refused(
        &d.burrow(&["network", "connect", "nc-b", "nope"]),
        1,
        "nope",
    );
    refused(
        &d.burrow(&["network", "connect", "host", "cli"]),
        1,
        "host network",
    );
    refused(
        &d.burrow(&["network", "connect", "--alias", "x", "bridge", "cli"]),
        1,
        "user defined networks",
    );

    ok(&d.burrow(&["network", "disconnect", "nc-b", "cli"]));
    let out = d.burrow(&["exec", "cli", "ip", "link", "show", "eth1"]);
    assert_ne!(code(&out), 0, "eth1 still there: {}", stdout(&out));
    let hosts = ok(&d.burrow(&["exec", "cli", "cat", "/etc/hosts"]));
    assert!(!hosts.contains(" db"), "{hosts}");
    refused(
        &d.burrow(&["network", "disconnect", "nc-b", "cli"]),
        1,
        "not connected",
    );

    // Two networks at run: both attached, the first one's gateway the default route.
    let out = ok(&d.burrow(&[
        "run",
        "--rm",
        "--network",
        "nc-a",
        "--network",
        "name=nc-b,alias=second,ip=10.4.162.77",
        &bb,
        "sh",
        "-c",
        "ip -4 addr; ip route",
    ]));
    assert!(out.contains("inet 10.4.161."), "{out}");
    assert!(out.contains("inet 10.4.162.77/"), "{out}");
    assert!(out.contains("default via 10.4.161.1"), "{out}");

    // A stopped container is connected on its next start.
    ok(&d.burrow(&[
        "create",
        "--name",
        "later",
        "--network",
        "nc-a",
        &bb,
        "ip",
        "-4",
        "addr",
    ]));
    ok(&d.burrow(&["network", "connect", "--ip", "10.4.162.88", "nc-b", "later"]));
    let v = inspect(&d, &["later"]);
    assert!(
        v[0]["NetworkSettings"]["Networks"]["nc-b"].is_object(),
        "{v}"
    );
    let out = ok(&d.burrow(&["start", "-a", "later"]));
    assert!(out.contains("inet 10.4.162.88/"), "{out}");
    ok(&d.burrow(&["rm", "-f", "srv", "cli", "later"]));
    // Its bridges and masquerading rules are the host's: removed with the networks.
    ok(&d.burrow(&["network", "rm", "nc-a", "nc-b"]));
}

#[test]
fn container_network_mode_and_mac_address() {
    let Some(d) = rootful("netshare") else { return };
    let bb = image("busybox");
    ok(&d.burrow(&["network", "create", "--subnet", "10.4.163.0/24", "nc-c"]));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "base",
        "--hostname",
        "basehost",
        "--network",
        "nc-c",
        "--mac-address",
        "02:42:ac:11:00:99",
        &bb,
        "sleep",
        "300",
    ]));
    let mac = ok(&d.burrow(&["exec", "base", "cat", "/sys/class/net/eth0/address"]));
    assert_eq!(mac.trim(), "02:42:ac:11:00:99");
    let v = inspect(&d, &["base"]);
    let ip = v[0]["NetworkSettings"]["Networks"]["nc-c"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["nc-c"]["MacAddress"],
        "02:42:ac:11:00:99"
    );
    assert_eq!(v[0]["NetworkSettings"]["MacAddress"], "02:42:ac:11:00:99");

    let out = ok(&d.burrow(&[
        "run",
        "--rm",
        "--network",
        "container:base",
        &bb,
        "sh",
        "-c",
        "cat /sys/class/net/eth0/address; hostname; ip -4 addr show eth0; cat /etc/hosts",
    ]));
    assert!(out.contains("02:42:ac:11:00:99"), "{out}");
    assert!(out.contains("basehost"), "{out}");
    assert!(out.contains(&format!("inet {ip}/")), "{out}");

    // Started again later, it joins the other container's namespace as it is then.
    ok(&d.burrow(&[
        "create",
        "--name",
        "follower",
        "--network",
        "container:base",
        &bb,
        "cat",
        "/sys/class/net/eth0/address",
    ]));
    ok(&d.burrow(&["restart", "-t", "0", "base"]));
    let out = ok(&d.burrow(&["start", "-a", "follower"]));
    assert_eq!(out.trim(), "02:42:ac:11:00:99");
    ok(&d.burrow(&["stop", "-t", "0", "base"]));
    refused(&d.burrow(&["start", "follower"]), 1, "is not running");
    ok(&d.burrow(&["start", "base"]));

    for (flags, says) in [
        (&["-p", "8080:80"][..], "port publishing"),
        (&["--dns", "1.1.1.1"][..], "dns"),
        (
            &["--add-host", "a:1.2.3.4"][..],
            "custom host-to-IP mapping",
        ),
        (&["--hostname", "x"][..], "hostname"),
        (&["--mac-address", "02:00:00:00:00:01"][..], "mac-address"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "container:base"];
        args.extend(flags);
        args.extend([bb.as_str(), "true"]);
        refused(
            &d.burrow(&args),
            125,
            &format!("conflicting options: {says}"),
        );
    }
    ok(&d.burrow(&["create", "--name", "idle", "--network", "nc-c", &bb, "true"]));
    refused(
        &d.burrow(&["run", "--rm", "--network", "container:idle", &bb, "true"]),
        125,
        "is not running",
    );
    refused(
        &d.burrow(&[
            "run",
            "--rm",
            "--mac-address",
            "02:42:ac:11:00",
            &bb,
            "true",
        ]),
        125,
        "six hex pairs",
    );
    refused(
        &d.burrow(&["run", "--rm", "--network-alias", "x", &bb, "true"]),
        125,
        "user defined networks",
    );
    refused(
        &d.burrow(&["network", "connect", "nc-c", "idle2"]),
        1,
        "idle2",
    );
    let left = d.ctr(&["containers", "ls", "-q"]);
    assert_eq!(
        left.lines().count(),
        3,
        "a failed run left a container: {left}"
    );
    ok(&d.burrow(&["rm", "-f", "base", "idle", "follower"]));
    ok(&d.burrow(&["network", "rm", "nc-c"]));
}

/// The host's nat rules that mention `what` (CNI's comments carry the container's id).
fn nat_rules_with(what: &str) -> String {
    let out = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S", "--wait"])
        .output()
        .unwrap();
    assert!(out.status.success(), "iptables -t nat -S: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| l.contains(what))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The packets nat's POSTROUTING masqueraded by the rule that mentions `what`.
fn masq_packets(what: &str) -> u64 {
    let out = std::process::Command::new("iptables")
        .args(["-t", "nat", "-S", "POSTROUTING", "-v", "--wait"])
        .output()
        .unwrap();
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains(what) && l.contains("MASQUERADE"))
        .unwrap_or_else(|| panic!("no masquerading rule with {what:?}: {text}"));
    // `-A POSTROUTING -s NET ! -o BR -c PACKETS BYTES -j MASQUERADE`
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "-c").expect("counters");
    words[at + 1].parse().unwrap()
}

#[test]
fn nat_rules_go_with_the_container_and_the_network() {
    let Some(d) = rootful("netrules") else { return };
    let bb = image("busybox");
    let subnet = "-s 10.4.187.0/24 ";
    ok(&d.burrow(&["network", "create", "--subnet", "10.4.187.0/24", "nr-a"]));
    let with = ok(&d.burrow(&[
        "run",
        "-d",
        "--network",
        "nr-a",
        "-p",
        "127.0.0.1:18093:80",
        &bb,
        "sleep",
        "300",
    ]));
    let with = with.trim();
    let without = ok(&d.burrow(&["run", "-d", "--network", "nr-a", &bb, "sleep", "300"]));
    let without = without.trim();
    // portmap's DNAT for the published port only; one masquerading rule for the network.
    let rules = nat_rules_with(with);
    assert!(
        rules.contains("--dports 18093"),
        "no DNAT for 18093: {rules}"
    );
    let rules = nat_rules_with(without);
    assert!(
        !rules.contains("DNAT"),
        "DNAT without a published port: {rules}"
    );
    let masq = nat_rules_with(subnet);
    assert_eq!(
        masq.lines().filter(|l| l.contains("MASQUERADE")).count(),
        1,
        "not one masquerading rule for the network: {masq}"
    );
    // A connection out (to TEST-NET-1, which nobody answers) goes through the rule, where
    // the host routes beyond itself at all.
    if std::fs::read_to_string("/proc/net/route").is_ok_and(|r| r.contains("\t00000000\t")) {
        let before = masq_packets(subnet);
        let _ = d.burrow(&["exec", without, "nc", "-w", "1", "192.0.2.1", "80"]);
        let after = masq_packets(subnet);
        assert!(
            after > before,
            "no packet masqueraded ({before} -> {after})"
        );
    }
    ok(&d.burrow(&["rm", "-f", with, without]));
    for id in [with, without] {
        let left = nat_rules_with(id);
        assert!(left.is_empty(), "rules of {id} outlived it: {left}");
    }
    // Still there while the network is; gone with it.
    assert!(
        !nat_rules_with(subnet).is_empty(),
        "masquerading went before the network"
    );
    ok(&d.burrow(&["network", "rm", "nr-a"]));
    let left = nat_rules_with(subnet);
    assert!(left.is_empty(), "masquerading outlived the network: {left}");
}
