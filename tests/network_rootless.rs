//! `network connect` and `--network-alias` rootless, as the unprivileged test user: the CNI
//! plugins run inside the launcher's namespaces (the `net-connect` helper joins them), and a
//! running container connected to a second network reaches a peer there by name and alias;
//! containers started at once all get their network.

mod containers_support;

use containers_support::*;

const FETCH: &str =
    "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $0 80 && exit 0; sleep 0.5; done; exit 1";

#[test]
fn rootless_connect_and_alias() {
    let Some(rl) = rootless("netconn") else {
        return;
    };
    let bb = image("busybox");
    ok(&rl.burrow(&["network", "create", "--subnet", "10.4.171.0/24", "rl-a"]));
    ok(&rl.burrow(&["network", "create", "--subnet", "10.4.172.0/24", "rl-b"]));
    // The first containers of a fresh launcher, started at once (as `compose up` does): their
    // CNI chains would each create the firewall plugin's chains in the one namespace, and the
    // losers failed with "File exists" before the chains were run one at a time.
    let names: Vec<String> = (0..8).map(|i| format!("at-once-{i}")).collect();
    let outs: Vec<_> = std::thread::scope(|s| {
        let started: Vec<_> = names
            .iter()
            .map(|n| {
                let (rl, bb) = (&rl, &bb);
                s.spawn(move || {
                    rl.burrow(&[
                        "run",
                        "-d",
                        "--name",
                        n,
                        "--network",
                        "rl-a",
                        bb,
                        "sleep",
                        "300",
                    ])
                })
            })
            .collect();
        started.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for out in &outs {
        ok(out);
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    ok(&rl.burrow(&rm));
    ok(&rl.burrow(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "rl-b",
        "--network-alias",
        "db",
        &image("demo"),
    ]));
    ok(&rl.burrow(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "rl-a",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&rl.burrow(&["network", "connect", "rl-b", "cli"]));
    let addr = ok(&rl.burrow(&["exec", "cli", "ip", "-4", "addr", "show", "eth1"]));
    assert!(addr.contains("inet 10.4.172."), "{addr}");
    // One gateway, the first network's, as Docker gives (not one default route per network).
    let routes = ok(&rl.burrow(&["exec", "cli", "ip", "route"]));
    let defaults: Vec<&str> = routes
        .lines()
        .filter(|l| l.starts_with("default"))
        .collect();
    assert!(
        defaults.len() == 1 && defaults[0].contains("dev eth0"),
        "{routes}"
    );
    // Two networks at `run`: attached at once, still one default route.
    let two = ok(&rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "rl-b",
        "--network",
        "rl-a",
        &bb,
        "ip",
        "route",
    ]));
    let defaults: Vec<&str> = two.lines().filter(|l| l.starts_with("default")).collect();
    assert!(
        defaults.len() == 1 && defaults[0].contains("dev eth0"),
        "{two}"
    );
    assert!(two.contains("dev eth1"), "{two}");
    for name in ["srv", "db"] {
        let got = ok(&rl.burrow(&["exec", "cli", "sh", "-c", FETCH, name]));
        assert!(got.contains("Hello"), "{name}: {got}");
    }
    ok(&rl.burrow(&["network", "disconnect", "rl-b", "cli"]));
    let out = rl.burrow(&["exec", "cli", "ip", "link", "show", "eth1"]);
    assert_ne!(code(&out), 0, "eth1 still there: {}", stdout(&out));
    // `network rm` deletes the network's bridge in the launcher's namespace, as Docker does
    // (left there, it would keep the subnet's route from a later network on the same subnet).
    ok(&rl.burrow(&["rm", "-f", "srv"]));
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&rl.burrow(&["network", "inspect", "rl-b"]))).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_string();
    let bridge = format!("br-{}:", &id[..12]);
    assert!(
        rl.launcher_links().contains(&bridge),
        "{}",
        rl.launcher_links()
    );
    // One masquerading rule for the network in the launcher's namespace, none per container.
    let masq = format!("! -o br-{} -j MASQUERADE", &id[..12]);
    let rules = rl.launcher_postrouting();
    assert_eq!(rules.matches(&masq).count(), 1, "{rules}");
    assert!(
        !rules.contains("-j CNI-"),
        "per-container masquerading: {rules}"
    );
    ok(&rl.burrow(&["network", "rm", "rl-b"]));
    // Down (routes gone) when rm returns; deleted a few milliseconds later, in the background.
    let state = rl.launcher_links();
    let line = state.lines().find(|l| l.contains(&bridge));
    assert!(
        line.is_none_or(|l| !l.contains(",UP") && !l.contains("<UP")),
        "{bridge} still up after network rm: {state}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut links = rl.launcher_links();
    while links.contains(&bridge) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        links = rl.launcher_links();
    }
    assert!(
        !links.contains(&bridge),
        "{bridge} outlived network rm: {links}"
    );
    let rules = rl.launcher_postrouting();
    assert!(
        !rules.contains(&masq),
        "masquerading outlived network rm: {rules}"
    );
}
