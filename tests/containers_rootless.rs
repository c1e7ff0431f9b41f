//! `burrow run` rootless, as the unprivileged test user: under Debian's RootlessKit in a
//! private runtime dir (published ports through the launcher's API, CNI bridge inside its
//! network namespace, failures leaving nothing behind), and the README's goal end to end:
//! `burrow setup install`, `burrow load` of the demo image, `burrow run -d -p 8080:80
//! burrow-demo/web`, and curl on the host answering from the container.

mod containers_support;

use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout, wait_for, TestMachine};
use containers_support::*;

#[test]
fn rootless_published_port_through_the_launcher() {
    let Some(rl) = rootless("port") else { return };
    let port = free_port();
    let publish = format!("{port}:80");
    let out = rl.burrow(&["run", "-d", "--name", "web", "-p", &publish, &image("demo")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let body = http_get(&format!("127.0.0.1:{port}")).expect("the published port answers");
    assert!(
        body.contains("Hello from a rootless burrow container"),
        "{body}"
    );
    if let Some(ip) = host_ip() {
        assert!(
            http_get(&format!("{ip}:{port}")).is_some(),
            "no answer on {ip}:{port}"
        );
    }
    let ports = rl.launcher_ports();
    assert!(
        ports.contains(&format!("\"parentPort\":{port}"))
            && ports.contains("\"childIP\":\"10.4.0."),
        "{ports}"
    );

    // The same host port again: refused with the reason, and nothing of the second run is left.
    let containers_before = rl.ctr(&["c", "ls", "-q"]);
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &publish,
        &image("demo"),
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains(&port.to_string()), "{}", stderr(&out));
    assert_eq!(rl.ctr(&["c", "ls", "-q"]), containers_before);
    assert_eq!(
        rl.launcher_ports(),
        ports,
        "the failed run changed the launcher's ports"
    );
    let names = std::fs::read_dir(rl.home.join(".local/share/nerdctl/names/default"))
        .unwrap()
        .count();
    assert_eq!(names, 1, "the failed run kept its name");
    let ipam: Vec<_> = std::fs::read_dir(rl.home.join(".local/share/cni/networks/bridge"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10.4."))
        .collect();
    assert_eq!(ipam.len(), 1, "the failed run kept an IP");

    let hosts = rl.burrow(&["exec", "web", "cat", "/etc/resolv.conf"]);
    assert!(
        stdout(&hosts).contains("nameserver 10.0.2.3"),
        "{}",
        stdout(&hosts)
    );

    let out = rl.burrow(&["stop", "-t", "1", "web"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !rl.launcher_ports()
            .contains(&format!("\"parentPort\":{port}")),
        "stop left the port published"
    );
    let out = rl.burrow(&["rm", "web"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(rl.ctr(&["c", "ls", "-q"]).trim().is_empty());

    // A detached container that exits by itself lets go of its port and address at once, as
    // with Docker (not only at its next start or removal): another container can take them.
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "brief",
        "-p",
        &publish,
        &image("busybox"),
        "true",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let published = format!("\"parentPort\":{port}");
    assert!(
        wait_for(Duration::from_secs(20), || !rl
            .launcher_ports()
            .contains(&published)),
        "the exited container kept its port: {}",
        rl.launcher_ports()
    );
    let state = rl.burrow(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.NetworkSettings.IPAddress}}.",
        "brief",
    ]);
    assert_eq!(stdout(&state).trim(), "exited 0 .", "{}", stderr(&state));
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "web3",
        "-p",
        &publish,
        &image("demo"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        http_get(&format!("127.0.0.1:{port}")).is_some(),
        "the port taken over answers"
    );
    let out = rl.burrow(&["rm", "-f", "brief", "web3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `run` attaches the network ahead of the task in a namespace the task joins: the container
/// has its address and port, its record no longer names that namespace afterwards (so a later
/// start attaches a fresh one in the hook), and `run --rm` leaves no lease behind.
#[test]
fn rootless_run_attaches_ahead_and_start_attaches_again() {
    let Some(rl) = rootless("ahead") else { return };
    let leases = || -> Vec<String> {
        std::fs::read_dir(rl.home.join(".local/share/cni/networks/bridge"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.starts_with("10.4."))
                    .collect()
            })
            .unwrap_or_default()
    };
    let bb = image("busybox");
    let out = rl.burrow(&["run", "--rm", &bb, "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("inet 10.4.0."), "{}", stdout(&out));
    assert!(leases().is_empty(), "run --rm kept a lease: {:?}", leases());
    // The namespace made ahead has its loopback up, as one runc makes: a server on
    // 127.0.0.1 answers the container itself.
    let out = rl.burrow(&[
        "run",
        "--rm",
        &bb,
        "sh",
        "-c",
        "httpd -p 127.0.0.1:81 -h /etc; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 81 | head -1",
    ]);
    assert!(
        stdout(&out).starts_with("HTTP/1.1 200"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "ahead",
        "-p",
        &publish,
        &image("demo"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(
        http_get(&format!("127.0.0.1:{port}")).is_some(),
        "no answer"
    );
    let info = rl.ctr(&["c", "info", &id]);
    let spec: serde_json::Value = serde_json::from_str(&info).expect("ctr c info is JSON");
    let netns = spec["Spec"]["linux"]["namespaces"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["type"] == "network").cloned())
        .expect("a network namespace in the spec");
    assert!(
        netns.get("path").is_none(),
        "the record still names a path: {netns}"
    );
    let state_dir = rl
        .home
        .join(".local/share/nerdctl/containers/default")
        .join(&id);
    let gone =
        burrow_testsupport::wait_for(Duration::from_secs(5), || !state_dir.join("netns").exists());
    assert!(gone, "the ahead namespace's mount point is still there");

    let out = rl.burrow(&["stop", "-t", "1", "ahead"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(leases().is_empty(), "stop kept a lease: {:?}", leases());
    let out = rl.burrow(&["start", "ahead"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        http_get(&format!("127.0.0.1:{port}")).is_some(),
        "no answer after start"
    );
    assert_eq!(leases().len(), 1, "{:?}", leases());
    let out = rl.burrow(&["rm", "-f", "ahead"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(leases().is_empty(), "rm kept a lease: {:?}", leases());
    assert!(rl.ctr(&["c", "ls", "-q"]).trim().is_empty());
}

#[test]
fn rootless_run_exit_codes_and_bind_mount_ownership() {
    let Some(rl) = rootless("exit") else { return };
    let bb = image("busybox");
    let out = rl.burrow(&["run", "--rm", &bb, "sh", "-c", "echo hi; exit 5"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    let out = rl.burrow(&["run", "--rm", "--network", "none", &bb, "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    // Words after the image are the container's even when they are run's own flags (Docker).
    let out = rl.burrow(&["run", "--rm", "--entrypoint", "echo", &bb, "-e", "hi", "-P"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi -P\n");

    // A directory the user owns is root's inside the container (uid 0 maps to the user).
    let shared = rl.home.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("f"), "x").unwrap();
    let mut chown = Command::new("chown");
    chown
        .arg("-R")
        .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
        .arg(&shared);
    expect_success(
        &run_with_timeout(&mut chown, Duration::from_secs(10)),
        "chown",
    );
    let vol = format!("{}:/shared", shared.display());
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &vol,
        &bb,
        "sh",
        "-c",
        "stat -c %u:%g /shared/f && echo y > /shared/g",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "0:0\n");
    let meta = std::fs::metadata(shared.join("g")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        rl.machine.uid,
        "a file the container wrote is the user's on the host"
    );
    assert!(rl.ctr(&["c", "ls", "-q"]).trim().is_empty());
}

/// Docker's habits the scripts people have rely on: `rm -f`/`rmi -f` of what is not there
/// succeed, `kill` goes on past a name it cannot find, `run -it` wants a terminal, and a
/// container on the host's network has the host's name.
#[test]
fn rootless_cli_habits_of_docker_scripts() {
    let Some(rl) = rootless("habits") else { return };
    let bb = image("busybox");
    let out = rl.burrow(&["rm", "-f", "habits-none"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rl.burrow(&["rmi", "-f", "habits-none:1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));
    assert_ne!(code(&rl.burrow(&["rm", "habits-none"])), 0);

    let out = rl.burrow(&[
        "run", "-d", "--name", "habits-k", "--label", "tier=a", "--label", "flag", &bb, "sleep",
        "60",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A label without a value is kept (containerd keeps no empty value; burrow does).
    let labels = rl.burrow(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"flag\"}}|{{.Config.Labels.tier}}",
        "habits-k",
    ]);
    assert_eq!(stdout(&labels), "|a\n", "{}", stderr(&labels));
    let ps = rl.burrow(&[
        "ps",
        "--filter",
        "label=flag",
        "--format",
        "{{.Names}} {{.Labels}}",
    ]);
    assert_eq!(stdout(&ps), "habits-k flag=,tier=a\n", "{}", stderr(&ps));
    let out = rl.burrow(&["kill", "habits-none", "habits-k"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "habits-k\n");
    // kill returns once the signal is sent, as Docker's: the exit follows.
    let mut running = String::new();
    for _ in 0..50 {
        let state = rl.burrow(&["inspect", "-f", "{{.State.Running}}", "habits-k"]);
        running = stdout(&state).trim().to_string();
        if running == "false" {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(running, "false", "kill stopped at the missing name");
    assert_eq!(code(&rl.burrow(&["rm", "habits-k"])), 0);

    // No terminal here (the test's stdin is not one): refused before anything is made.
    let before = rl.ctr(&["c", "ls", "-q"]);
    let out = rl.burrow(&["run", "-it", "--rm", &bb, "true"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("not a TTY"), "{}", stderr(&out));
    assert_eq!(rl.ctr(&["c", "ls", "-q"]), before);

    let out = rl.burrow(&["run", "--rm", "--network", "host", &bb, "hostname"]);
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(stdout(&out).trim(), host, "{}", stderr(&out));

    // A detached container's last line without a newline reaches its log (the shim keeps the
    // log pipe open until the task is deleted, so no end of stream says it is complete).
    let script = "echo first; printf partial; sleep 1; printf ' and more'";
    let out = rl.burrow(&["run", "-d", "--name", "habits-l", &bb, "sh", "-c", script]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let logs = || stdout(&rl.burrow(&["logs", "habits-l"]));
    assert!(
        wait_for(Duration::from_secs(10), || logs()
            == "first\npartial and more"),
        "{:?}",
        logs()
    );
    assert_eq!(code(&rl.burrow(&["rm", "habits-l"])), 0);

    // start -i attaches (input and output) as -a does; start -a of a running one joins it.
    let out = rl.burrow(&[
        "create",
        "-i",
        "--name",
        "habits-i",
        &bb,
        "sh",
        "-c",
        "read v; echo got:$v; exit 4",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = format!("echo hello | {} start -i habits-i", rl.burrow.display());
    let out = rl.user(&["sh", "-c", &script]);
    assert_eq!(
        (stdout(&out).as_str(), code(&out)),
        ("got:hello\n", 4),
        "{}",
        stderr(&out)
    );
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "habits-a",
        &bb,
        "sh",
        "-c",
        "sleep 1; echo late; exit 6",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rl.burrow(&["start", "-a", "habits-a"]);
    assert_eq!(
        (stdout(&out).as_str(), code(&out)),
        ("late\n", 6),
        "{}",
        stderr(&out)
    );
    // ps --filter ancestor= takes the image's ID too, not only the name it was run by.
    let id = stdout(&rl.burrow(&["inspect", "-f", "{{.Image}}", "habits-a"]));
    let short = &id.trim().trim_start_matches("sha256:")[..12];
    let filter = format!("ancestor={short}");
    let ps = rl.burrow(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]);
    assert!(
        stdout(&ps).lines().any(|l| l == "habits-a"),
        "{}{}",
        stdout(&ps),
        stderr(&ps)
    );
    assert_eq!(code(&rl.burrow(&["rm", "habits-i", "habits-a"])), 0);
}

/// The README's first command, as the test user, on the real per-user setup.
#[test]
fn readme_goal_run_d_p_8080_answers_on_the_host() {
    let Some(m) = TestMachine::get() else { return };
    let burrow = installed_burrow(&m);
    let help = m.run_user(
        &[burrow.to_str().unwrap(), "setup", "--help"],
        Duration::from_secs(30),
    );
    let load = m.run_user(
        &[burrow.to_str().unwrap(), "load", "--help"],
        Duration::from_secs(30),
    );
    if !stdout(&help).contains("install") || !load.status.success() {
        eprintln!(
            "SKIP: `burrow setup install` or `burrow load` is not available in this build yet"
        );
        return;
    }
    let _lock = m.exclusive("rootless-containerd");
    let out = m.run_user(
        &[burrow.to_str().unwrap(), "setup", "install"],
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "burrow setup install: {}{}",
        stdout(&out),
        stderr(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let archive = dir.path().join("demo.tar");
    let mut build = Command::new("python3");
    build
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/images/build.py"
        ))
        .arg("--demo-archive")
        .arg(&archive);
    expect_success(
        &run_with_timeout(&mut build, Duration::from_secs(120)),
        "build the demo archive",
    );
    std::fs::set_permissions(
        &archive,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = m.run_user(
        &[
            burrow.to_str().unwrap(),
            "load",
            "-i",
            archive.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "burrow load: {}", stderr(&out));

    let b = burrow.to_str().unwrap();
    let _ = m.run_user(&[b, "rm", "-f", "burrow-goal"], Duration::from_secs(60));
    let port = if std::net::TcpListener::bind("0.0.0.0:8080").is_ok() {
        8080
    } else {
        free_port()
    };
    let publish = format!("{port}:80");
    struct Rm<'a>(&'a TestMachine, &'a str);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = self.0.run_user(
                &[self.1, "rm", "-f", "burrow-goal"],
                Duration::from_secs(60),
            );
        }
    }
    let _rm = Rm(&m, b);
    let out = m.run_user(
        &[
            b,
            "run",
            "-d",
            "--name",
            "burrow-goal",
            "-p",
            &publish,
            "burrow-demo/web",
        ],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "burrow run -d -p {publish} burrow-demo/web: {}",
        stderr(&out)
    );
    let body = http_get(&format!("127.0.0.1:{port}"))
        .expect("curl http://127.0.0.1:PORT/ answers from the container");
    assert!(
        body.contains("Hello from a rootless burrow container"),
        "{body}"
    );
}

#[test]
fn rootless_cp_keeps_owners_right_running_and_stopped() {
    let Some(rl) = rootless("cp") else { return };
    let bb = image("busybox");
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "cpr",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo inside > /made; sleep 300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(500));
    let dir = rl.home.join("cp");
    let f = dir.join("in.txt");
    let mk = rl.user(&[
        "sh",
        "-c",
        &format!(
            "mkdir -p {} && echo from-host > {}",
            dir.display(),
            f.display()
        ),
    ]);
    assert_eq!(code(&mk), 0, "{}", stderr(&mk));
    // In: owned by the container's root.
    let out = rl.burrow(&["cp", f.to_str().unwrap(), "cpr:/tmp/in.txt"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rl.burrow(&["exec", "cpr", "stat", "-c", "%u:%g %s", "/tmp/in.txt"]);
    assert_eq!(stdout(&out), "0:0 10\n", "{}", stderr(&out));
    // exec's own flags end at the container: the rest is the command's (Docker).
    let out = rl.burrow(&[
        "exec",
        "-e",
        "A=1",
        "cpr",
        "sh",
        "-c",
        "echo $A \"$@\"",
        "-",
        "-w",
        "/",
        "-e",
        "x",
    ]);
    assert_eq!(stdout(&out), "1 -w / -e x\n", "{}", stderr(&out));
    // Out: owned by the user on the host.
    let back = dir.join("made");
    let out = rl.burrow(&["cp", "cpr:/made", back.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let meta = std::fs::metadata(&back).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), rl.machine.uid);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "inside\n");
    // Stopped: the snapshot is mounted inside the launcher's namespaces.
    let out = rl.burrow(&["stop", "-t", "1", "cpr"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let again = dir.join("again");
    let out = rl.burrow(&["cp", "cpr:/tmp/in.txt", again.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), "from-host\n");
    // No cgroups for rootless containers on cgroup v1: stats says why instead of zeros.
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let out = rl.burrow(&["stats", "--no-stream"]);
        assert_eq!(code(&out), 1);
        assert!(stderr(&out).contains("cgroup v1"), "{}", stderr(&out));
        // Limits and a parent cgroup are refused with the same reason, nothing made.
        let bb = image("busybox");
        for flags in [
            &["--cpu-shares", "512"][..],
            &["--cgroup-parent", "mine"][..],
        ] {
            let mut argv = vec!["run", "--rm", "--name", "limited"];
            argv.extend_from_slice(flags);
            argv.extend([bb.as_str(), "true"]);
            let out = rl.burrow(&argv);
            assert_eq!(code(&out), 125, "{flags:?}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("cgroup v1") && stderr(&out).contains(flags[0]),
                "{flags:?}: {}",
                stderr(&out)
            );
        }
    }
    let _ = rl.burrow(&["rm", "-f", "cpr"]);
}

#[test]
fn rootless_new_named_volume_gets_the_images_content_with_owners() {
    let Some(rl) = rootless("volfill") else {
        return;
    };
    let ml = image("multilayer");
    let vol = format!("rfill{}", std::process::id());
    let mount = format!("{vol}:/data");
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        &ml,
        "sh",
        "-c",
        "stat -c '%u:%g %n' /data/owned/user1000 /data/owned/nobody; cat /data/target.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "1000:1000 /data/owned/user1000\n65534:65534 /data/owned/nobody\ntarget\n",
        "owners as the container sees them (subordinate ids on the host)"
    );
    let _ = rl.burrow(&["volume", "rm", &vol]);
}

/// As the test user: an attached `run --rm` whose CLI is killed leaves its watcher behind, so
/// the container runs on and is removed once it ends; inspect shows when it started.
#[test]
fn rootless_run_rm_outlives_a_killed_cli() {
    let Some(rl) = rootless("rmkill") else { return };
    let bb = image("busybox");
    let name = format!("rl-rmkill-{}", std::process::id());
    let out_file = format!("rmkill-{}.out", std::process::id());
    // The CLI in the background, SIGKILLed once the container has said it runs.
    let script = format!(
        "{b} run --rm --name {name} --network none {bb} sh -c 'echo ready; exec sleep 600' \
           >{out_file} 2>&1 & pid=$!; \
         i=0; until grep -q ready {out_file}; do \
           i=$((i+1)); [ $i -gt 600 ] && {{ cat {out_file}; exit 9; }}; sleep 0.1; done; \
         kill -9 $pid",
        b = rl.burrow.display()
    );
    let out = rl.user(&["sh", "-c", &script]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let names = || stdout(&rl.burrow(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(
        names().lines().any(|l| l == name),
        "the container ends with its process, not with the CLI: {}",
        names()
    );
    let started = stdout(&rl.burrow(&["inspect", "-f", "{{.State.StartedAt}}", &name]));
    assert!(started.starts_with("20"), "{started}");
    let out = rl.burrow(&["kill", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        burrow_testsupport::wait_for(Duration::from_secs(30), || !names()
            .lines()
            .any(|l| l == name)),
        "--rm after a killed CLI left the container: {}",
        names()
    );
}

/// `run -d -i` and `attach` as the test user: the background reader keeps the container's stdin
/// in its private state dir, attach joins it, and ends with the container's status.
#[test]
fn rootless_attach_joins_a_detached_interactive_container() {
    let Some(rl) = rootless("attach") else { return };
    let bb = image("busybox");
    let name = format!("rl-attach-{}", std::process::id());
    let out = rl.burrow(&[
        "run",
        "-di",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = format!(
        "printf 'echo hi-from-attach\\nexit 3\\n' | {} attach {name}",
        rl.burrow.display()
    );
    let out = rl.user(&["sh", "-c", &script]);
    assert_eq!(stdout(&out), "hi-from-attach\n", "{}", stderr(&out));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let out = rl.burrow(&["logs", &name]);
    assert!(stdout(&out).contains("hi-from-attach"), "{}", stderr(&out));
    let out = rl.burrow(&["rm", "-f", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// As the test user: `exec -i --detach-keys` leaves the command running and cleans the exec up
/// when it ends; `logs -f` reads the container's log across its rotations.
#[test]
fn rootless_exec_detaches_and_logs_follow_rotations() {
    let Some(rl) = rootless("execlog") else {
        return;
    };
    let bb = image("busybox");
    let name = format!("rl-exec-{}", std::process::id());
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sleep",
        "60",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    // The keys arrive on a pipe before its end: the CLI detaches, the command runs on.
    let script = format!(
        "printf '\\001x' | {} exec -i --detach-keys ctrl-a,x {name} sh -c 'sleep 2; echo after; touch /tmp/done'",
        rl.burrow.display()
    );
    let out = rl.user(&["sh", "-c", &script]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let exists = |f: &str| code(&rl.burrow(&["exec", &name, "test", "-e", f])) == 0;
    assert!(!exists("/tmp/done"), "exec waited instead of detaching");
    assert!(
        burrow_testsupport::wait_for(Duration::from_secs(30), || exists("/tmp/done")),
        "the detached command did not finish"
    );
    let dir = rl
        .home
        .join(".local/share/nerdctl/containers/default")
        .join(&id);
    assert!(
        burrow_testsupport::wait_for(Duration::from_secs(30), || exec_fifo_dirs(&dir) == 0),
        "the detached exec was not cleaned up in {}",
        dir.display()
    );
    let out = rl.burrow(&["rm", "-f", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let logged = format!("{name}-log");
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        &logged,
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        &bb,
        "sh",
        "-c",
        &numbered_lines_script(80),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_followed_lines(&rl.burrow(&["logs", "-f", &logged]), 80);
    let out = rl.burrow(&["rm", "-f", &logged]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `top` as the test user on a host without delegated cgroups (runc cannot list a container's
/// processes there): burrow finds them by the container's PID namespace.
#[test]
fn rootless_top_lists_the_containers_processes() {
    let Some(rl) = rootless("top") else { return };
    let bb = image("busybox");
    let name = format!("rl-top-{}", std::process::id());
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "sleep 301 & exec sleep 302",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rl.burrow(&["top", &name]);
    let text = stdout(&out);
    let _ = rl.burrow(&["rm", "-f", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        text.contains("sleep 301") && text.contains("sleep 302"),
        "{text}"
    );
    assert!(
        text.lines().next().is_some_and(|h| h.contains("PID")),
        "{text}"
    );
}
