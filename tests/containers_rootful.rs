//! `burrow run` and friends, rootful, against a private containerd started here as root with the
//! provisioned test images: exit codes, logs, exec, published ports through CNI portmap, named
//! networks and volumes, and that failed runs and `rm` leave nothing behind.

mod containers_support;

use std::os::unix::process::CommandExt;
use std::path::Path;

use containers_support::*;

/// Everything a container could leave behind, for before/after comparisons.
fn leftovers(d: &Rootful) -> (String, String, Vec<String>) {
    let containers = d.ctr(&["containers", "ls", "-q"]);
    let snapshots: Vec<String> = d
        .ctr(&["snapshots", "ls"])
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    let state: Vec<String> = std::fs::read_dir(d.data.join("containers/default"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    (containers, snapshots.join(","), state)
}

#[test]
fn run_rm_exit_codes_output_and_nothing_left() {
    let Some(d) = rootful("exit") else { return };
    let before = leftovers(&d);
    let bb = image("busybox");

    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        &bb,
        "echo",
        "hello",
        "world",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello world\n");

    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo oops >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("oops"), "{}", stderr(&out));

    let out = d.burrow(&["run", "--rm", "--network", "none", &bb, "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));

    let out = d.burrow(&["run", "--rm", "--network", "none", &bb, "/etc"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));

    let out = d.burrow(&["run", "--rm", &image("no-such-image"), "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));

    let out = d.burrow(&["run", "--rm", "-p", "80:80:80:80", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("invalid -p"), "{}", stderr(&out));

    // -e, -w, -u, --entrypoint and the image's /etc/passwd.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--entrypoint",
        "sh",
        &bb,
        "-c",
        "echo $GREETING $(pwd) $(id -u)",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi /tmp 65534\n");

    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=512:1000",
        "--shm-size",
        "8m",
        &bb,
        "sh",
        "-c",
        "echo $(ulimit -n) $(ulimit -Hn) $(df -k /dev/shm | tail -1 | awk '{print $2}')",
    ]);
    assert_eq!(stdout(&out), "512 1000 8192\n", "{}", stderr(&out));

    assert_eq!(
        leftovers(&d),
        before,
        "a --rm run or a failed run left something behind"
    );
}

#[test]
fn detached_web_server_with_published_port() {
    let Some(d) = rootful("web") else { return };
    let before = leftovers(&d);
    let port = free_port();
    let publish = format!("{port}:80");
    let out = d.burrow(&["run", "-d", "--name", "web", "-p", &publish, &image("demo")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id:?}");

    let body =
        http_get(&format!("127.0.0.1:{port}")).expect("the published port answers on loopback");
    assert!(
        body.contains("Hello from a rootless burrow container"),
        "{body}"
    );
    if let Some(ip) = host_ip() {
        let body = http_get(&format!("{ip}:{port}"))
            .expect("the published port answers on the host address");
        assert!(body.contains("Hello"), "{body}");
    }

    let ps = stdout(&d.burrow(&["ps"]));
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.contains(&format!("0.0.0.0:{port}->80/tcp")) && ps.contains("web") && ps.contains("Up "),
        "{ps}"
    );
    let q = stdout(&d.burrow(&["ps", "-q", "--no-trunc"]));
    assert_eq!(q.trim(), id);

    let port_out = stdout(&d.burrow(&["port", "web"]));
    assert_eq!(port_out.trim(), format!("80/tcp -> 0.0.0.0:{port}"));
    let ip = stdout(&d.burrow(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]));
    assert!(ip.trim().starts_with("10.4.0."), "{ip}");

    let hosts = d.burrow(&["exec", "web", "cat", "/etc/hosts"]);
    assert_eq!(code(&hosts), 0, "{}", stderr(&hosts));
    assert!(stdout(&hosts).contains(&format!("{}\t", ip.trim())) && stdout(&hosts).contains("web"));
    let exec_code = d.burrow(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(code(&exec_code), 7);

    // httpd logs each request to stderr: the json-file log driver keeps it.
    let logs = d.burrow(&["logs", "web"]);
    assert!(
        stderr(&logs).contains("response:200") || stdout(&logs).contains("response:200"),
        "{logs:?}"
    );

    let out = d.burrow(&["stop", "-t", "1", "web"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        http_get_once(&format!("127.0.0.1:{port}")).is_none(),
        "the port is still published after stop"
    );
    let ps = stdout(&d.burrow(&["ps", "-a"]));
    assert!(
        ps.contains("Exited (137)") || ps.contains("Exited (143)"),
        "{ps}"
    );

    let out = d.burrow(&["rm", "web"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(leftovers(&d), before);
    let ipam = std::fs::read_dir("/var/lib/cni/networks/bridge")
        .map(|rd| {
            rd.flatten().any(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .contains(&id)
            })
        })
        .unwrap_or(false);
    assert!(!ipam, "the container's IP is still allocated");
}

fn http_get_once(addr: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "2"])
        .arg(format!("http://{addr}/"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn named_network_and_volume() {
    let Some(d) = rootful("netvol") else { return };
    let bb = image("busybox");
    let out = d.burrow(&["network", "create", "--subnet", "10.4.77.0/24", "ctnet"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ls = stdout(&d.burrow(&["network", "ls"]));
    assert!(ls.contains("ctnet") && ls.contains("bridge"), "{ls}");

    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "ctnet",
        &bb,
        "sh",
        "-c",
        "ip -4 addr show eth0",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("10.4.77."), "{}", stdout(&out));

    // Containers on one named network reach each other by name.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "ctnet",
        &image("demo"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run", "--rm", "--network", "ctnet", &bb, "sh", "-c",
        // (busybox-static's wget crashes on Debian 12; nc does the request)
        "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc srv 80 && exit 0; sleep 0.5; done; exit 1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("Hello"), "{}", stdout(&out));
    let out = d.burrow(&["network", "rm", "ctnet"]);
    assert_ne!(code(&out), 0, "a network in use was removed");
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    let out = d.burrow(&["rm", "-f", "srv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // An anonymous volume lives as long as its container.
    let vols = stdout(&d.burrow(&["volume", "ls", "-q"]));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/anon",
        &bb,
        "touch",
        "/anon/x",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&d.burrow(&["volume", "ls", "-q"])),
        vols,
        "--rm kept the anonymous volume"
    );

    let out = d.burrow(&["volume", "create", "ctvol"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "ctvol:/data",
        &bb,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "ctvol:/data:ro",
        &bb,
        "cat",
        "/data/f",
    ]);
    assert_eq!(stdout(&out), "kept\n", "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "ctvol:/data:ro",
        &bb,
        "touch",
        "/data/g",
    ]);
    assert_ne!(code(&out), 0, "a read-only volume was writable");

    let out = d.burrow(&["network", "rm", "ctnet"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["volume", "rm", "ctvol"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stdout(&d.burrow(&["volume", "ls", "-q"])).contains("ctvol"));
}

#[test]
fn volume_prune_keeps_named_volumes_unless_all() {
    let Some(d) = rootful("prune") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    ok(&d.burrow(&["volume", "create", "--label", "keep=yes", "named1"]));
    ok(&d.burrow(&["volume", "create", "named2"]));
    // A container removed without -v leaves its anonymous volume behind, unused.
    ok(&d.burrow(&[
        "run",
        "--name",
        "anonowner",
        "--network",
        "none",
        "-v",
        "/anon",
        &bb,
        "true",
    ]));
    let anon: Vec<String> = stdout(&d.burrow(&["volume", "ls", "-q"]))
        .lines()
        .filter(|n| !n.starts_with("named"))
        .map(str::to_string)
        .collect();
    assert_eq!(anon.len(), 1, "{anon:?}");
    ok(&d.burrow(&["rm", "anonowner"]));

    // Without a terminal and without -f, prune refuses and removes nothing.
    let out = d.burrow(&["volume", "prune"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("-f"), "{}", stderr(&out));

    let out = d.burrow(&["volume", "prune", "-f"]);
    ok(&out);
    assert!(stdout(&out).contains(&anon[0]), "{}", stdout(&out));
    let left = stdout(&d.burrow(&["volume", "ls", "-q"]));
    assert_eq!(
        left, "named1\nnamed2\n",
        "prune without --all removed a named volume"
    );

    let out = d.burrow(&["volume", "prune", "-f", "--all", "--filter", "label!=keep"]);
    ok(&out);
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), "named1\n");
    ok(&d.burrow(&["volume", "prune", "-af"]));
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), "");
    // rm -f passes over a volume that is not there; -d takes the local driver only.
    ok(&d.burrow(&["volume", "rm", "-f", "nosuchvolume"]));
    assert_eq!(code(&d.burrow(&["volume", "rm", "nosuchvolume"])), 1);
    ok(&d.burrow(&["volume", "create", "-d", "local", "bylocal"]));
    // A tmpfs volume: mounted (read-only here, as o= asks) while a container uses it,
    // unmounted when the last one stops (or the volume is removed).
    ok(&d.burrow(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "o=size=2m,ro",
        "tmpv",
    ]));
    let out = d.burrow(&[
        "run", "--rm", "--network", "none", "-v", "tmpv:/t", &image("busybox"), "sh", "-c",
        "grep ' /t ' /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1; touch /t/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(stdout(&out), "tmpfs ro\nread-only\n", "{}", stderr(&out));
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains("/tmpv/_data ")
    };
    assert!(
        !mounted(),
        "the tmpfs is unmounted when its last user ended"
    );
    let bb = image("busybox");
    let user = |first: &[&str]| {
        let mut argv = first.to_vec();
        argv.extend([
            "--name",
            "tmpvuser",
            "--network",
            "none",
            "-v",
            "tmpv:/t",
            &bb,
            "sleep",
            "300",
        ]);
        ok(&d.burrow(&argv));
    };
    user(&["run", "-d"]);
    assert!(mounted(), "mounted while a container uses it");
    ok(&d.burrow(&["rm", "-f", "tmpvuser"]));
    assert!(!mounted(), "rm -f of its last user unmounts it");
    user(&["create"]);
    ok(&d.burrow(&["start", "tmpvuser"]));
    assert!(mounted());
    assert_ne!(
        code(&d.burrow(&["volume", "rm", "tmpv"])),
        0,
        "it is in use"
    );
    assert!(mounted(), "a volume in use stays mounted");
    ok(&d.burrow(&["rm", "-f", "tmpvuser"]));
    ok(&d.burrow(&["volume", "rm", "tmpv"]));
    assert!(!mounted(), "volume rm unmounts it");
    let out = d.burrow(&["volume", "create", "-d", "nfs", "bynfs"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("only the local driver"),
        "{}",
        stderr(&out)
    );
    ok(&d.burrow(&["volume", "rm", "-f", "bylocal", "nosuchvolume"]));

    // container prune asks first (refused without a terminal and -f), and takes Docker's
    // filters: label!= keeps the labelled one, until= keeps the young.
    for (name, label) in [("labelled", "keep=yes"), ("plain", "other=1")] {
        ok(&d.burrow(&[
            "run",
            "--name",
            name,
            "--label",
            label,
            "--network",
            "none",
            &bb,
            "true",
        ]));
    }
    let out = d.burrow(&["container", "prune"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("-f"), "{}", stderr(&out));
    let out = d.burrow(&["container", "prune", "-f", "--filter", "until=1h"]);
    ok(&out);
    let names = |d: &Rootful| stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(names(&d).contains("plain"), "{}", names(&d));
    ok(&d.burrow(&["container", "prune", "-f", "--filter", "label!=keep"]));
    assert_eq!(names(&d), "labelled\n");
    ok(&d.burrow(&["rm", "labelled"]));
    let out = d.burrow(&["network", "prune"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    ok(&d.burrow(&["network", "create", "--label", "team=a", "pruna"]));
    ok(&d.burrow(&["network", "create", "prunb"]));
    let out = d.burrow(&["network", "prune", "-f", "--filter", "label=team=a"]);
    ok(&out);
    assert_eq!(stdout(&out), "Deleted Networks:\npruna\n");
    let out = d.burrow(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(stdout(&out), "Deleted Networks:\n", "prunb is younger");
    let out = d.burrow(&["network", "prune", "-f", "--filter", "dangling=true"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("until"), "{}", stderr(&out));
    ok(&d.burrow(&["network", "rm", "prunb"]));

    // A run that fails removes the named volume it created, keeps the one that was there.
    ok(&d.burrow(&["volume", "create", "there"]));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "fresh:/a",
        "-v",
        "there:/b",
        &bb,
        "/no/such/command",
    ]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), "there\n");
}

#[test]
fn wait_after_exit_and_restart_print_as_docker() {
    let Some(d) = rootful("waitrestart") else {
        return;
    };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    // A foreground run that exited: its task is gone, wait still answers with the code.
    ok(&d.burrow(&["run", "--name", "fg", "--network", "none", &bb, "true"]));
    let out = d.burrow(&["wait", "fg"]);
    ok(&out);
    assert_eq!(stdout(&out), "0\n");
    // Stopped by SIGTERM (sh ignores it as PID 1, so the KILL after 1 s ends it): 137.
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&d.burrow(&["stop", "-t", "1", "bg"]));
    let out = d.burrow(&["wait", "bg"]);
    ok(&out);
    assert_eq!(stdout(&out), "137\n");
    // restart prints the name once.
    let out = d.burrow(&["restart", "-t", "1", "bg"]);
    ok(&out);
    assert_eq!(stdout(&out), "bg\n");
    let out = d.burrow(&["inspect", "-f", "{{.State.Status}}", "bg"]);
    assert_eq!(stdout(&out), "running\n", "{}", stderr(&out));
    ok(&d.burrow(&["rm", "-f", "bg", "fg"]));
}

#[test]
fn run_takes_an_image_id_and_makes_missing_bind_sources() {
    let Some(d) = rootful("imageid") else { return };
    let bb = image("busybox");
    let out = d.burrow(&["images", "-q", &bb]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).lines().next().unwrap_or_default().to_string();
    assert_eq!(id.len(), 12, "{id:?}");
    // The local image by its ID, never a pull from docker.io.
    let out = d.burrow(&["run", "--rm", "--network", "none", &id, "echo", "by id"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "by id\n");
    assert!(!stderr(&out).contains("pulling"), "{}", stderr(&out));
    // -v with a host path that does not exist makes it, as Docker does.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("made/by/run");
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{}:/d", src.display()),
        &bb,
        "sh",
        "-c",
        "echo hi > /d/f",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(src.join("f")).unwrap(), "hi\n");
}

#[test]
fn exec_takes_env_files_names_and_a_terminal_gets_term() {
    let Some(d) = rootful("execenv") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "ex",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("env");
    std::fs::write(&file, "# comment\nFROMFILE=yes\n\nOTHER=1\n").unwrap();
    let out = d.burrow(&[
        "exec",
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "OTHER=2",
        "ex",
        "sh",
        "-c",
        "echo $FROMFILE $OTHER",
    ]);
    ok(&out);
    assert_eq!(stdout(&out), "yes 2\n");
    // -t sets TERM as Docker does (no terminal needed for -t alone).
    let out = d.burrow(&["exec", "-t", "ex", "sh", "-c", "echo $TERM"]);
    ok(&out);
    assert_eq!(stdout(&out).trim(), "xterm");
    // -u by name, from the image's /etc/passwd.
    let out = d.burrow(&["exec", "-u", "nobody", "ex", "id", "-u"]);
    ok(&out);
    assert_eq!(stdout(&out), "65534\n");
    ok(&d.burrow(&["rm", "-f", "ex"]));
}

#[test]
fn run_flags_for_dns_groups_sysctls_namespaces_and_cidfile() {
    let Some(d) = rootful("runflags") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    let dir = tempfile::tempdir().unwrap();
    let cid = dir.path().join("cid");
    let labels = dir.path().join("labels");
    std::fs::write(&labels, "# l\nfrom.file=yes\n").unwrap();
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "flags",
        "--network",
        "none",
        "--dns-search",
        "a.test",
        "--dns-option",
        "ndots:3",
        "--domainname",
        "dom.test",
        "--group-add",
        "daemon",
        "--group-add",
        "4242",
        "--sysctl",
        "kernel.msgmax=65536",
        "--oom-score-adj",
        "500",
        "--cidfile",
        cid.to_str().unwrap(),
        "--label-file",
        labels.to_str().unwrap(),
        "--ipc",
        "shareable",
        &bb,
        "sleep",
        "300",
    ]);
    ok(&out);
    let id = stdout(&out).trim().to_string();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let sh = |script: &str| {
        let out = d.burrow(&["exec", "flags", "sh", "-c", script]);
        ok(&out);
        stdout(&out)
    };
    let resolv = sh("cat /etc/resolv.conf");
    assert!(
        resolv.contains("search a.test") && resolv.contains("options ndots:3"),
        "{resolv}"
    );
    assert_eq!(sh("cat /proc/sys/kernel/domainname"), "dom.test\n");
    let groups = sh("cat /proc/1/status | grep ^Groups");
    assert!(
        groups.contains(" 1 ") || groups.contains("\t1 "),
        "daemon is gid 1: {groups}"
    );
    assert!(groups.contains("4242"), "{groups}");
    assert_eq!(sh("cat /proc/sys/kernel/msgmax"), "65536\n");
    assert_eq!(sh("cat /proc/1/oom_score_adj"), "500\n");
    let out = d.burrow(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"from.file\"}}",
        "flags",
    ]);
    assert_eq!(stdout(&out), "yes\n", "{}", stderr(&out));
    // A second container in the first one's IPC and PID namespaces sees its processes, and
    // its (shareable) /dev/shm.
    sh("echo s > /dev/shm/x");
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pid",
        "container:flags",
        "--ipc",
        "container:flags",
        &bb,
        "sh",
        "-c",
        "ps -o comm | grep -c sleep; cat /dev/shm/x",
    ]);
    ok(&out);
    assert_eq!(stdout(&out), "1\ns\n");
    // The cid file is refused once it exists; bad modes are refused by name.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--cidfile",
        cid.to_str().unwrap(),
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("container ID file"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["run", "--rm", "--ipc", "shared", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--ipc"), "{}", stderr(&out));
    ok(&d.burrow(&["rm", "-f", "flags"]));
}

#[test]
fn stop_signal_create_rm_and_inspect_of_found_and_missing() {
    let Some(d) = rootful("stopsig") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    // sh as PID 1 ignores TERM; stop -s KILL ends it at once, whatever the timeout.
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&d.burrow(&["stop", "-s", "KILL", "--timeout", "300", "sig"]));
    let out = d.burrow(&["wait", "sig"]);
    assert_eq!(stdout(&out), "137\n", "{}", stderr(&out));
    // inspect prints what it found, then the error for what it did not (exit 1).
    let out = d.burrow(&["inspect", "-f", "{{.Name}}", "sig", "nosuch"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(stdout(&out), "sig\n");
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
    ok(&d.burrow(&["rm", "sig"]));
    // create --rm: removed once it exits after a start.
    let out = d.burrow(&[
        "create",
        "--rm",
        "--name",
        "gone",
        "--network",
        "none",
        &bb,
        "true",
    ]);
    ok(&out);
    ok(&d.burrow(&["start", "-a", "gone"]));
    let gone = burrow_testsupport::wait_for(std::time::Duration::from_secs(30), || {
        !stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .any(|l| l == "gone")
    });
    assert!(gone, "create --rm left the container");
}

#[test]
fn ps_filters_exited_ancestor_network_before_since_and_name_patterns() {
    let Some(d) = rootful("psfilter") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    let out = d.burrow(&[
        "run",
        "--name",
        "first",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&d.burrow(&["run", "--name", "third", "--network", "none", &bb, "true"]));
    let host_dir = d.dir.join("psfilter-host");
    std::fs::create_dir_all(&host_dir).unwrap();
    let bind = format!("{}:/hostdir", host_dir.display());
    ok(&d.burrow(&[
        "create",
        "--name",
        "fourth",
        "-v",
        "psfvol:/data",
        "-v",
        &bind,
        "-p",
        "8080:80",
        "--expose",
        "9000/udp",
        &bb,
    ]));
    let names = |filters: &[&str]| {
        let mut argv = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            argv.extend(["--filter", f]);
        }
        let out = d.burrow(&argv);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut v: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&["exited=3"]), ["first"]);
    assert_eq!(names(&["exited=0"]), ["third"]);
    assert_eq!(
        names(&["ancestor=".to_string().as_str()]),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&[&format!("ancestor={bb}")]),
        ["first", "fourth", "second", "third"]
    );
    assert_eq!(names(&["before=second"]), ["first"]);
    assert_eq!(names(&["since=second"]), ["fourth", "third"]);
    assert_eq!(names(&["name=^(first|third)$"]), ["first", "third"]);
    assert_eq!(names(&["network=none"]), Vec::<String>::new());
    // Without -a, an exited filter still shows stopped containers.
    let out = d.burrow(&["ps", "--filter", "exited=3", "--format", "{{.Names}}"]);
    assert_eq!(stdout(&out), "first\n", "{}", stderr(&out));
    // volume=: a volume's name, a bind's source, or where it is mounted.
    let host = host_dir.display().to_string();
    for v in ["psfvol", "/data", "/hostdir", host.as_str()] {
        assert_eq!(names(&[&format!("volume={v}")]), ["fourth"], "volume={v}");
    }
    assert_eq!(names(&["volume=nothing"]), Vec::<String>::new());
    // publish= and expose= name container ports (a range, a protocol).
    assert_eq!(names(&["publish=80"]), ["fourth"]);
    assert_eq!(names(&["publish=8080"]), Vec::<String>::new());
    assert_eq!(names(&["expose=9000/udp"]), ["fourth"]);
    assert_eq!(names(&["expose=9000"]), Vec::<String>::new());
    assert_eq!(
        names(&["expose=1-100"]),
        ["fourth"],
        "published ports are exposed"
    );
    let out = d.burrow(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "fourth"]);
    assert_eq!(stdout(&out).trim(), r#"{"80/tcp":{},"9000/udp":{}}"#);
    // Values of one key are alternatives, as in Docker.
    assert_eq!(
        names(&["status=created", "status=exited"]),
        ["first", "fourth", "third"]
    );
    let out = d.burrow(&["ps", "--filter", "publish=8080:80"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("without a host port"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["ps", "--filter", "size=x"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("ancestor="), "{}", stderr(&out));
    ok(&d.burrow(&["rm", "-f", "-v", "first", "second", "third", "fourth"]));
    ok(&d.burrow(&["volume", "rm", "psfvol"]));
}

#[test]
fn add_host_host_gateway_is_the_hosts_address_on_the_bridge() {
    let Some(d) = rootful("hostgw") else { return };
    let bb = image("busybox");
    let out = d.burrow(&["network", "create", "--subnet", "10.4.91.0/24", "gwnet"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "gwnet",
        "--add-host",
        "host.docker.internal:host-gateway",
        "--add-host",
        "other=10.9.9.9",
        &bb,
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hosts = stdout(&out);
    assert!(hosts.contains("10.4.91.1\thost.docker.internal"), "{hosts}");
    assert!(hosts.contains("10.9.9.9\tother"), "{hosts}");
    let _ = d.burrow(&["network", "rm", "gwnet"]);
}

#[test]
fn system_prune_removes_stopped_containers_unused_networks_and_anonymous_volumes() {
    let Some(d) = rootful("sysprune") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    ok(&d.burrow(&["network", "create", "--subnet", "10.4.92.0/24", "unused"]));
    ok(&d.burrow(&["volume", "create", "named"]));
    ok(&d.burrow(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "-v",
        "/anon",
        &bb,
        "true",
    ]));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    let out = d.burrow(&["system", "prune"]);
    assert_eq!(code(&out), 1, "no terminal and no -f: refused");
    // With a label filter, only the networks (and containers) carrying it go.
    ok(&d.burrow(&["network", "create", "--label", "sys=1", "labelled"]));
    let out = d.burrow(&["system", "prune", "-f", "--filter", "label=sys"]);
    ok(&out);
    assert!(
        stdout(&out).contains("Deleted Networks:\nlabelled\n"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&d.burrow(&["network", "ls"])).contains("unused"));
    let out = d.burrow(&["system", "prune", "-f", "--volumes"]);
    ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("Deleted Containers:") && text.contains("Deleted Networks:\nunused"),
        "{text}"
    );
    let names = stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names, "up\n");
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), "named\n");
    assert!(!stdout(&d.burrow(&["network", "ls"])).contains("unused"));
    let out = d.burrow(&["system", "info"]);
    ok(&out);
    ok(&d.burrow(&["rm", "-f", "up"]));
}

#[test]
fn inspect_finds_any_object_by_type_and_sizes() {
    let Some(d) = rootful("inspecttype") else {
        return;
    };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&d.burrow(&["volume", "create", "vol1"]));
    // One call, several kinds.
    let out = d.burrow(&["inspect", "-f", "{{.Name}}", "vol1", "bridge"]);
    ok(&out);
    assert_eq!(stdout(&out), "vol1\nbridge\n");
    let out = d.burrow(&["inspect", "--type", "image", "-f", "{{.Id}}", &bb]);
    ok(&out);
    assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    // --type narrows: a container name is no volume.
    let out = d.burrow(&["inspect", "--type", "volume", "box"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let out = d.burrow(&["inspect", "-s", "-f", "{{.SizeRootFs}}", "box"]);
    ok(&out);
    assert!(
        stdout(&out).trim().parse::<u64>().unwrap() > 0,
        "{}",
        stdout(&out)
    );
    ok(&d.burrow(&["rm", "-f", "box"]));
}

#[test]
fn update_changes_the_restart_policy_and_memory_limit() {
    let Some(d) = rootful("update") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "upd",
        "--network",
        "none",
        &bb,
        "sleep",
        "300",
    ]));
    ok(&d.burrow(&[
        "update",
        "--restart",
        "on-failure:2",
        "--memory",
        "64m",
        "upd",
    ]));
    let out = d.burrow(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "upd",
    ]);
    assert_eq!(stdout(&out), "on-failure 2\n", "{}", stderr(&out));
    // The running container's cgroup got the new limit (rootful cgroupfs, v1 or v2).
    let pid = stdout(&d.burrow(&["inspect", "-f", "{{.State.Pid}}", "upd"]));
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    let mem_path = cgroup
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.splitn(3, ':').collect();
            (f.len() == 3 && (f[1].split(',').any(|c| c == "memory") || f[1].is_empty()))
                .then(|| f[2].to_string())
        })
        .unwrap_or_default();
    let limit = ["memory/", ""]
        .iter()
        .flat_map(|p| {
            [
                format!("/sys/fs/cgroup/{p}{mem_path}/memory.limit_in_bytes"),
                format!("/sys/fs/cgroup/{p}{mem_path}/memory.max"),
            ]
        })
        .find_map(|f| std::fs::read_to_string(f).ok());
    assert_eq!(
        limit.as_deref().map(str::trim),
        Some("67108864"),
        "{cgroup}"
    );
    let out = d.burrow(&["update", "--restart", "sometimes", "upd"]);
    assert_eq!(code(&out), 1);
    ok(&d.burrow(&["rm", "-f", "upd"]));
}

/// The file `name` of the container's cgroup in `controller` (v1), or of its one cgroup (v2).
fn cgroup_file(pid: &str, controller: &str, v1: &str, v2: &str) -> Option<String> {
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).ok()?;
    let path = cgroup.lines().find_map(|l| {
        let f: Vec<&str> = l.splitn(3, ':').collect();
        (f.len() == 3 && (f[1].split(',').any(|c| c == controller) || f[1].is_empty()))
            .then(|| (f[1].is_empty(), f[2].to_string()))
    })?;
    let file = match path.0 {
        true => format!("/sys/fs/cgroup{}/{v2}", path.1),
        false => format!("/sys/fs/cgroup/{controller}{}/{v1}", path.1),
    };
    std::fs::read_to_string(file)
        .ok()
        .map(|t| t.trim().to_string())
}

#[test]
fn cpu_and_memory_tuning_flags_reach_the_cgroup_and_update_merges() {
    let Some(d) = rootful("tuning") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| {
        assert_eq!(code(out), 0, "{}", stderr(out));
        stdout(out)
    };
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "tuned",
        "--network",
        "none",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--memory",
        "64m",
        "--memory-reservation",
        "32m",
        "--memory-swappiness",
        "10",
        "--blkio-weight",
        "300",
        &bb,
        "sleep",
        "300",
    ]);
    ok(&out);
    let blkio_weight = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists();
    if !blkio_weight && !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // Docker's behaviour where the kernel has no I/O weight: dropped, with a warning.
        assert!(
            stderr(&out).contains("--blkio-weight and --blkio-weight-device discarded"),
            "{}",
            stderr(&out)
        );
    }
    let pid = ok(&d.burrow(&["inspect", "-f", "{{.State.Pid}}", "tuned"]));
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let read = |c: &str, v1: &str, v2: &str| cgroup_file(&pid, c, v1, v2);
    if v2 {
        assert_eq!(read("cpu", "", "cpu.max").as_deref(), Some("50000 100000"));
        assert_eq!(read("cpuset", "", "cpuset.cpus").as_deref(), Some("0"));
        assert_eq!(
            read("memory", "", "memory.low").as_deref(),
            Some("33554432")
        );
    } else {
        assert_eq!(read("cpu", "cpu.shares", "").as_deref(), Some("512"));
        assert_eq!(
            read("cpu", "cpu.cfs_quota_us", "").as_deref(),
            Some("50000")
        );
        assert_eq!(read("cpuset", "cpuset.cpus", "").as_deref(), Some("0"));
        assert_eq!(
            read("memory", "memory.soft_limit_in_bytes", "").as_deref(),
            Some("33554432")
        );
        assert_eq!(
            read("memory", "memory.swappiness", "").as_deref(),
            Some("10")
        );
    }
    assert_eq!(
        ok(&d.burrow(&[
            "inspect",
            "-f",
            "{{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.CpuQuota}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwappiness}}",
            "tuned",
        ])),
        "512 0 50000 33554432 10\n"
    );
    // An update of the shares alone keeps the quota; inspect shows the new shares.
    ok(&d.burrow(&["update", "--cpu-shares", "256", "tuned"]));
    if !v2 {
        assert_eq!(read("cpu", "cpu.shares", "").as_deref(), Some("256"));
        assert_eq!(
            read("cpu", "cpu.cfs_quota_us", "").as_deref(),
            Some("50000")
        );
    }
    assert_eq!(
        ok(&d.burrow(&["inspect", "-f", "{{.HostConfig.CpuShares}}", "tuned"])),
        "256\n"
    );
    // Refused as Docker refuses them, before anything is made.
    for (args, says) in [
        (
            vec!["--cpus", "1", "--cpu-quota", "50000"],
            "cannot both be set",
        ),
        (vec!["--memory-swap", "1g"], "needs --memory"),
        (
            vec!["--memory", "64m", "--memory-reservation", "128m"],
            "above --memory",
        ),
        (vec!["--cpuset-cpus", "4095"], "this host has only"),
        (vec!["--memory-swappiness", "200"], "0 to 100"),
    ] {
        let mut argv = vec!["run", "--rm", "--name", "refused"];
        argv.extend(args.iter().copied());
        argv.extend([bb.as_str(), "true"]);
        let out = d.burrow(&argv);
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    let out = d.burrow(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!stdout(&out).contains("refused"), "{}", stdout(&out));
    // Per-device rates on a block device of this host (v1: blkio.throttle.*).
    let disk = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| std::path::Path::new(&format!("/dev/{n}")).exists());
    if let (Some(disk), false) = (disk, v2) {
        let numbers = std::fs::read_to_string(format!("/sys/block/{disk}/dev")).unwrap();
        ok(&d.burrow(&[
            "run",
            "-d",
            "--name",
            "throttled",
            "--network",
            "none",
            "--device-read-bps",
            &format!("/dev/{disk}:1mb"),
            "--device-write-iops",
            &format!("/dev/{disk}:100"),
            &bb,
            "sleep",
            "300",
        ]));
        let tpid = ok(&d.burrow(&["inspect", "-f", "{{.State.Pid}}", "throttled"]));
        assert_eq!(
            cgroup_file(&tpid, "blkio", "blkio.throttle.read_bps_device", "").as_deref(),
            Some(format!("{} 1048576", numbers.trim()).as_str())
        );
        assert_eq!(
            cgroup_file(&tpid, "blkio", "blkio.throttle.write_iops_device", "").as_deref(),
            Some(format!("{} 100", numbers.trim()).as_str())
        );
        ok(&d.burrow(&["rm", "-f", "throttled"]));
    }
    let out = d.burrow(&[
        "run",
        "--rm",
        "--device-read-bps",
        "/dev/null:1mb",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a block device"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["update", "--memory-swap", "16m", "tuned"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("below --memory"), "{}", stderr(&out));
    ok(&d.burrow(&["rm", "-f", "tuned"]));
}

#[test]
fn uts_host_gives_the_hosts_name() {
    let Some(d) = rootful("uts") else { return };
    let bb = image("busybox");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let out = d.burrow(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "--network",
        "none",
        &bb,
        "hostname",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), host);
    let out = d.burrow(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "-h",
        "other",
        "--network",
        "none",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--uts=host"), "{}", stderr(&out));
    let out = d.burrow(&["run", "--rm", "--uts", "shared", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--uts"), "{}", stderr(&out));
    // --runtime: runc by either name; a name that is no program is refused by name.
    for r in ["runc", "io.containerd.runc.v2"] {
        let out = d.burrow(&[
            "run",
            "--rm",
            "--runtime",
            r,
            "--network",
            "none",
            &bb,
            "true",
        ]);
        assert_eq!(code(&out), 0, "{r}: {}", stderr(&out));
    }
    let out = d.burrow(&["run", "--rm", "--runtime", "kata", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("\"kata\""), "{}", stderr(&out));
}

#[test]
fn cgroup_parent_places_the_containers_cgroup() {
    let Some(d) = rootful("cgparent") else { return };
    let bb = image("busybox");
    let parent = format!("burrow-test-parent-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "parented",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        &bb,
        "sleep",
        "300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let pid = stdout(&d.burrow(&["inspect", "-f", "{{.State.Pid}}", "parented"]));
    let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    assert!(
        cgroup
            .lines()
            .any(|l| l.ends_with(&format!(":/{parent}/{id}"))),
        "{cgroup}"
    );
    assert_eq!(
        stdout(&d.burrow(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", "parented"])),
        format!("{parent}\n")
    );
    assert_eq!(code(&d.burrow(&["rm", "-f", "parented"])), 0);
    // The parent is left, as Docker leaves it: removed here.
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(&parent));
    }
    let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{parent}"));
    let out = d.burrow(&["run", "--rm", "--cgroup-parent", "../escape", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--cgroup-parent"), "{}", stderr(&out));
}

#[test]
fn an_internal_network_connects_its_containers_only() {
    let Some(d) = rootful("internal") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| {
        assert_eq!(code(out), 0, "{}", stderr(out));
        stdout(out)
    };
    ok(&d.burrow(&["network", "create", "--internal", "inside"]));
    assert_eq!(
        ok(&d.burrow(&["network", "inspect", "-f", "{{.Internal}}", "inside"])).trim(),
        "true"
    );
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "inside",
        &bb,
        "httpd",
        "-f",
        "-p",
        "80",
    ]));
    // The peer answers by name; there is no default route, so nothing outside is reached.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "inside",
        &bb,
        "sh",
        "-c",
        // (busybox-static's wget crashes on Debian 12; nc does the request)
        "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 srv 80 | head -1; ip route | grep -c default; \
         nc -w 3 192.0.2.1 80 </dev/null 2>&1; echo out=$?",
    ]);
    let text = ok(&out);
    assert!(
        text.starts_with("HTTP/1."),
        "the peer did not answer: {text}"
    );
    assert!(text.lines().any(|l| l == "0"), "a default route: {text}");
    assert!(!text.contains("out=0"), "reached outside: {text}");
    ok(&d.burrow(&["rm", "-f", "srv"]));
    let listed = ok(&d.burrow(&[
        "network",
        "ls",
        "--no-trunc",
        "--filter",
        "name=inside",
        "--format",
        "{{.ID}} {{.Internal}}",
    ]));
    let (id, internal) = listed.trim().split_once(' ').unwrap();
    assert_eq!((id.len(), internal), (64, "true"), "{listed}");
    ok(&d.burrow(&["network", "rm", "inside"]));
    ok(&d.burrow(&["network", "rm", "-f", "inside"]));
    assert_eq!(code(&d.burrow(&["network", "rm", "inside"])), 1);
    // Bridge driver options: the MTU reaches the container's interface; others are refused.
    ok(&d.burrow(&[
        "network",
        "create",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.bridge.name=br-burrowtest",
        "small",
    ]));
    let mtu = ok(&d.burrow(&[
        "run",
        "--rm",
        "--network",
        "small",
        &bb,
        "cat",
        "/sys/class/net/eth0/mtu",
    ]));
    assert_eq!(mtu.trim(), "1400");
    ok(&d.burrow(&["network", "rm", "small"]));
    let out = d.burrow(&["network", "create", "-o", "com.example.x=1", "odd"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("com.example.x"), "{}", stderr(&out));
}

#[test]
fn legacy_links_give_the_alias_ports_and_environment() {
    let Some(d) = rootful("links") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| {
        assert_eq!(code(out), 0, "{}", stderr(out));
        stdout(out)
    };
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "db",
        "--expose",
        "5432",
        "-e",
        "POSTGRES_DB=app",
        &bb,
        "httpd",
        "-f",
        "-p",
        "5432",
    ]));
    let ip = ok(&d.burrow(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]));
    let ip = ip.trim();
    let out = ok(&d.burrow(&[
        "run",
        "--rm",
        "--link",
        "db:mydb",
        &bb,
        "sh",
        "-c",
        "echo $MYDB_PORT_5432_TCP $MYDB_ENV_POSTGRES_DB $MYDB_NAME; grep -w mydb /etc/hosts; \
         printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 mydb 5432 | head -1",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(&format!("tcp://{ip}:5432 app /")) && lines[0].ends_with("/mydb"),
        "{out}"
    );
    assert!(lines[1].starts_with(ip) && lines[1].contains("db"), "{out}");
    assert!(lines[2].starts_with("HTTP/1."), "{out}");
    // The alias follows the linked container to the address its next start gives it (another
    // container takes the next free one meanwhile), as Docker's does.
    ok(&d.burrow(&[
        "run", "-d", "--name", "linker", "--link", "db:mydb", &bb, "sleep", "60",
    ]));
    ok(&d.burrow(&["stop", "-t", "1", "db"]));
    ok(&d.burrow(&["run", "-d", "--name", "filler", &bb, "sleep", "60"]));
    ok(&d.burrow(&["start", "db"]));
    let moved = ok(&d.burrow(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "db"]));
    let moved = moved.trim();
    assert_ne!(
        moved, ip,
        "db kept its address: the check below would prove nothing"
    );
    let out = ok(&d.burrow(&[
        "exec",
        "linker",
        "sh",
        "-c",
        "grep -w mydb /etc/hosts; printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 mydb 5432 | head -1",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].starts_with(&format!("{moved}\t")),
        "{moved}: {out}"
    );
    assert!(lines[1].starts_with("HTTP/1."), "{out}");
    ok(&d.burrow(&["rm", "-f", "linker", "filler"]));
    // Refused before anything is made: a stopped container, no shared network.
    ok(&d.burrow(&["stop", "-t", "1", "db"]));
    let out = d.burrow(&[
        "run", "--rm", "--name", "linker", "--link", "db", &bb, "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--link",
        "db",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--link"), "{}", stderr(&out));
    assert!(!stdout(&d.burrow(&["ps", "-a"])).contains("linker"));
    ok(&d.burrow(&["rm", "db"]));
}

#[test]
fn restart_always_brings_back_a_killed_container() {
    let Some(d) = rootful("restart") else { return };
    let bb = image("busybox");
    let out = d.burrow(&["run", "--rm", "--restart", "always", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--rm"), "{}", stderr(&out));
    let out = d.burrow(&["run", "--restart", "on-failure:3", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("-d"), "{}", stderr(&out));

    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        &bb,
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let pid = stdout(&d.burrow(&["inspect", "-f", "{{.State.Pid}}", "phoenix"]))
        .trim()
        .to_string();
    assert_ne!(pid, "0");
    let started_at = |d: &Rootful| {
        stdout(&d.burrow(&["inspect", "-f", "{{.State.StartedAt}}", "phoenix"]))
            .trim()
            .to_string()
    };
    let first_start = started_at(&d);
    assert!(first_start.starts_with("20"), "{first_start}");
    let mut kill = std::process::Command::new("kill");
    kill.args(["-KILL", &pid]);
    burrow_testsupport::expect_success(
        &burrow_testsupport::run_with_timeout(&mut kill, std::time::Duration::from_secs(10)),
        "kill the container's process",
    );
    let back = burrow_testsupport::wait_for(std::time::Duration::from_secs(90), || {
        let s = stdout(&d.burrow(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Pid}}",
            "phoenix",
        ]));
        s.starts_with("running ") && s.trim() != format!("running {pid}")
    });
    assert!(back, "the killed container was not restarted");
    // burrow's monitor restarted it (Docker's 100 ms back-off) and counted the restart.
    let count = stdout(&d.burrow(&["inspect", "-f", "{{.RestartCount}}", "phoenix"]));
    assert_eq!(count.trim(), "1", "RestartCount");
    // A restart counts as a new start: RFC 3339 times
    // in UTC with nine fraction digits compare as text.
    let second_start = started_at(&d);
    assert!(
        second_start > first_start,
        "{first_start} then {second_start}"
    );
    // After an explicit stop it stays stopped.
    let out = d.burrow(&["stop", "-t", "1", "phoenix"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let st = stdout(&d.burrow(&["inspect", "-f", "{{.State.Status}}", "phoenix"]));
    assert_eq!(st.trim(), "exited");
    let out = d.burrow(&["rm", "phoenix"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn restart_on_failure_retries_failures_only_and_counts() {
    let Some(d) = rootful("onfail") else { return };
    let bb = image("busybox");
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/data", dir.path().display());
    let runs = |name: &str| {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let script = |name: &str, code: u8| format!("echo run >> /data/{name}; exit {code}");
    // Fails every time: run once, then restarted twice, then left exited.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "onfail-bad",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "-v",
        &vol,
        &bb,
        "sh",
        "-c",
        &script("bad", 3),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Succeeds: never restarted.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "onfail-good",
        "--network",
        "none",
        "--restart",
        "on-failure",
        "-v",
        &vol,
        &bb,
        "sh",
        "-c",
        &script("good", 0),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let done = burrow_testsupport::wait_for(std::time::Duration::from_secs(60), || {
        let st = stdout(&d.burrow(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.RestartCount}}",
            "onfail-bad",
        ]));
        runs("bad") == 3 && st.trim() == "exited 2"
    });
    assert!(
        done,
        "runs {} state {:?}",
        runs("bad"),
        stdout(&d.burrow(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.RestartCount}}",
            "onfail-bad"
        ]))
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(runs("bad"), 3, "restarted beyond its limit");
    assert_eq!(runs("good"), 1, "a successful exit was restarted");
    let policy = stdout(&d.burrow(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        "onfail-bad",
    ]));
    assert_eq!(policy.trim(), "on-failure:2");
    for n in ["onfail-bad", "onfail-good"] {
        let _ = d.burrow(&["rm", "-f", n]);
    }
}

#[test]
fn run_pulls_an_absent_image() {
    let Some(d) = rootful("pull") else { return };
    // A private registry with the busybox test image pushed to it.
    let port = free_port();
    let reg_dir = d.dir.join("registry");
    std::fs::create_dir_all(&reg_dir).unwrap();
    let config = format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        reg_dir.display()
    );
    std::fs::write(reg_dir.join("config.yml"), config).unwrap();
    let mut cleanup = burrow_testsupport::Cleanup::new();
    let mut serve = std::process::Command::new("docker-registry");
    serve
        .arg("serve")
        .arg(reg_dir.join("config.yml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cleanup.spawn(&mut serve);
    assert!(
        http_get(&format!("127.0.0.1:{port}/v2")).is_some(),
        "the private registry did not start"
    );
    let reference = format!("127.0.0.1:{port}/burrow-test/busybox:latest");
    let mut push = std::process::Command::new("skopeo");
    push.args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{LAYOUT}:busybox"))
        .arg(format!("docker://{reference}"));
    burrow_testsupport::expect_success(
        &burrow_testsupport::run_with_timeout(&mut push, std::time::Duration::from_secs(120)),
        "skopeo copy to the private registry",
    );

    let out = d.burrow(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &reference,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "echo",
        "pulled",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "pulled\n",
        "stdout must carry only the container's output"
    );
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&reference));

    // run cached the image's user database; removing the image removes that entry.
    let cache = d.dir.join("data/usercache");
    let cached = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&cache)
            .map(|r| {
                r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let before = cached();
    assert_eq!(before.len(), 1, "one cache entry after one run: {before:?}");
    let out = d.burrow(&["image", "inspect", &reference]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let inspect: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = inspect[0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(before[0], format!("{}.json", id.replace(':', "-")));
    // The fixture loaded the same image under its Docker Hub name too: the entry stays while
    // one name is left, and goes with the image (-f: the ID names both).
    d.burrow(&["rmi", &reference]);
    assert_eq!(cached(), before, "another name still has the image");
    let out = d.burrow(&["rmi", "-f", &id]);
    assert!(
        stdout(&out).contains(&format!("Deleted: {id}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        cached(),
        Vec::<String>::new(),
        "the entry went with the image"
    );
}

#[test]
fn stdin_and_a_real_pty() {
    let Some(d) = rootful("tty") else { return };
    let bb = image("busybox");
    let base = d.shell_prefix();
    // -i: piped stdin reaches the container and its end is the container's EOF.
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c").arg(format!(
        "printf 'one\\ntwo\\n' | {base} run -i --rm --network none {bb} wc -l"
    ));
    let out = burrow_testsupport::run_with_timeout(&mut sh, std::time::Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "2");

    // -it under a terminal (script(1) gives us one): the container's stdio is a pty that follows our window size.
    // script's stdin stays open (a pipe held here) so the terminal is not hung up early.
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec"])
        .arg(format!(
            "stty rows 33 cols 91; (sleep 1; stty rows 40 cols 100 < /dev/tty) & {base} run -it --rm --network none {bb} \
             sh -c 'tty; for i in $(seq 100); do [ \"$(stty size)\" = \"40 100\" ] && echo resized && exit 4; sleep 0.2; done; exit 1'"
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = script.spawn().unwrap();
    let pid = child.id();
    let held_stdin = child.stdin.take();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        burrow_testsupport::kill_group(pid);
    });
    let out = child.wait_with_output().unwrap();
    drop((watchdog, held_stdin));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text:?} {}", stderr(&out));
    assert!(
        text.contains("resized"),
        "the terminal's new size did not reach the container: {text:?}"
    );
    assert_eq!(code(&out), 4, "{text:?}");
}

/// Runs `cmd` under a terminal (script(1)) with a 60 s watchdog; `feed` gets its stdin and the
/// text seen so far on its stdout, to type once the right output has come.
fn under_terminal(
    cmd: &str,
    feed: impl FnOnce(&mut std::process::ChildStdin),
) -> std::process::Output {
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = script.spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        burrow_testsupport::kill_group(pid);
    });
    feed(&mut stdin);
    let out = child.wait_with_output().unwrap();
    drop((watchdog, stdin));
    out
}

#[test]
fn attach_joins_a_running_container() {
    let Some(d) = rootful("attach") else { return };
    let bb = image("busybox");
    let name = format!("attach-{}", std::process::id());
    let base = d.shell_prefix();
    let rm = |n: &str| {
        let _ = d.burrow(&["rm", "-f", n]);
    };
    // run -d -i keeps stdin open for a later attach; attach's input reaches the shell, its
    // output comes back, and attach ends with the container's status.
    let out = d.burrow(&[
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
    let mut cmd = d.command(&["attach", &name]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, b"echo hi-from-attach\nexit 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(input);
    assert_eq!(stdout(&out), "hi-from-attach\n", "{}", stderr(&out));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stdout(&d.burrow(&["logs", &name])).contains("hi-from-attach"));
    // A stopped container cannot be attached to.
    let out = d.burrow(&["attach", &name]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    rm(&name);

    // With a terminal: the detach keys leave it running; a second attach ends it.
    let out = d.burrow(&[
        "run",
        "-dit",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let running =
        || stdout(&d.burrow(&["inspect", "-f", "{{.State.Running}}", &name])).trim() == "true";
    assert!(burrow_testsupport::wait_for(
        std::time::Duration::from_secs(30),
        running
    ));
    let out = under_terminal(&format!("{base} attach {name}"), |stdin| {
        std::io::Write::write_all(stdin, b"echo typed-$((6*7))\r").unwrap();
        let logged = || stdout(&d.burrow(&["logs", &name])).contains("typed-42");
        assert!(
            burrow_testsupport::wait_for(std::time::Duration::from_secs(20), logged),
            "the typed command never ran"
        );
        std::io::Write::write_all(stdin, b"\x10\x11").unwrap();
    });
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("typed-42"), "{}", stdout(&out));
    assert!(running(), "the container stopped when attach detached");
    let out = under_terminal(&format!("{base} attach {name}"), |stdin| {
        std::io::Write::write_all(stdin, b"exit 5\r").unwrap();
    });
    assert_eq!(code(&out), 5, "{} {}", stdout(&out), stderr(&out));
    // `start` brings it back the same way: attach joins its stdin again.
    let out = d.burrow(&["start", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(burrow_testsupport::wait_for(
        std::time::Duration::from_secs(30),
        running
    ));
    // inspect shows the new start, and (as Docker) when the previous run finished; RFC 3339
    // times in UTC with nine fraction digits compare as text.
    let times = stdout(&d.burrow(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}} {{.State.FinishedAt}}",
        &name,
    ]));
    let (started, finished) = times.trim().split_once(' ').unwrap();
    assert!(finished.starts_with("20") && started > finished, "{times}");
    let out = under_terminal(&format!("{base} attach {name}"), |stdin| {
        std::io::Write::write_all(stdin, b"exit 6\r").unwrap();
    });
    assert_eq!(code(&out), 6, "{} {}", stdout(&out), stderr(&out));
    rm(&name);

    // Without stdin (plain run -d): attach follows the output until the container exits.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "sleep 2; echo late-line; exit 4",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["attach", &name]);
    assert_eq!(stdout(&out), "late-line\n", "{}", stderr(&out));
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    rm(&name);
}

#[test]
fn detach_keys_leave_the_container_running_and_logged() {
    let Some(d) = rootful("detach") else { return };
    let bb = image("busybox");
    let name = format!("detach-{}", std::process::id());
    let base = d.shell_prefix();
    // Under a terminal (script(1)), the test types ctrl-p ctrl-q once the container has
    // started; the CLI must return while the container runs on.
    let started = std::time::Instant::now();
    let running = || {
        let out = d.burrow(&["inspect", "-f", "{{.State.Running}}", &name]);
        stdout(&out).trim() == "true"
    };
    let out = under_terminal(
        &format!(
            "{base} run -it --name {name} --network none {bb} sh -c 'echo started; sleep 4; echo after-detach'"
        ),
        |stdin| {
            assert!(
                burrow_testsupport::wait_for(std::time::Duration::from_secs(30), running),
                "the container never ran"
            );
            std::io::Write::write_all(stdin, b"\x10\x11").unwrap();
        },
    );
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4) || running(),
        "the CLI waited for the container instead of detaching"
    );
    assert!(running(), "the container stopped when the CLI detached");
    // Its output after the detach still reaches the log.
    let logged = || stdout(&d.burrow(&["logs", &name])).contains("after-detach");
    assert!(
        burrow_testsupport::wait_for(std::time::Duration::from_secs(30), logged),
        "{:?}",
        d.burrow(&["logs", &name])
    );
    let out = d.burrow(&["wait", &name]);
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    // `start -ai` detaches the same way, here with keys of our choosing.
    let out = under_terminal(
        &format!("{base} start -ai --detach-keys ctrl-a,x {name}"),
        |stdin| {
            assert!(
                burrow_testsupport::wait_for(std::time::Duration::from_secs(30), running),
                "start -ai never ran the container"
            );
            std::io::Write::write_all(stdin, b"\x01x").unwrap();
        },
    );
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    assert!(running(), "the container stopped when start -ai detached");
    let out = d.burrow(&["wait", &name]);
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    // A terminal that goes away (SIGHUP/SIGTERM to the CLI) detaches too, and --rm still
    // removes the container when it exits.
    let name2 = format!("{name}-hup");
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec"])
        .arg(format!(
            "{base} run -it --rm --name {name2} --network none {bb} sh -c 'sleep 3; echo done-late'"
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = script.spawn().unwrap();
    let held = child.stdin.take();
    let running2 = || {
        let out = d.burrow(&["inspect", "-f", "{{.State.Running}}", &name2]);
        stdout(&out).trim() == "true"
    };
    assert!(
        burrow_testsupport::wait_for(std::time::Duration::from_secs(30), running2),
        "the second container never ran"
    );
    let cli = std::process::Command::new("pgrep")
        .args(["-f", &format!("run -it --rm --name {name2} ")])
        .output()
        .unwrap();
    let pids: Vec<i32> = stdout(&cli)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "no CLI process found");
    for p in &pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*p),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let _ = child.wait_with_output();
    drop(held);
    let gone = || {
        !stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .any(|l| l == name2)
    };
    assert!(
        burrow_testsupport::wait_for(std::time::Duration::from_secs(30), gone),
        "--rm was not applied after the CLI was told to go"
    );
    let out = d.burrow(&["run", "--rm", "--detach-keys", "ctrl-9", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--detach-keys"), "{}", stderr(&out));
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn init_runs_as_pid_1_and_long_mounts_work() {
    let Some(d) = rootful("initmount") else {
        return;
    };
    let bb = image("busybox");
    // --init: the host's init is PID 1 and runs the command; exit codes pass through it.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap_or("")
            .starts_with("/sbin/docker-init -- sh -c"),
        "{text}"
    );
    assert_ne!(
        lines.next(),
        Some("1"),
        "the command is not PID 1 under --init"
    );

    // --mount: a read-only bind, a named volume and a sized tmpfs.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "from-host").unwrap();
    let bind = format!(
        "type=bind,source={},target=/in,readonly",
        dir.path().display()
    );
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &bind,
        "--mount",
        "type=volume,source=longvol,target=/vol",
        "--mount",
        "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
        &bb,
        "sh",
        "-c",
        "cat /in/f; echo; touch /in/g 2>/dev/null && echo writable; echo v > /vol/v && cat /vol/v; \
         stat -c %a /scratch; df -k /scratch | tail -1",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("from-host\n"), "{text}");
    assert!(
        !text.contains("writable"),
        "the read-only bind was writable: {text}"
    );
    assert!(text.contains("\nv\n"), "{text}");
    assert!(text.contains("\n1770\n"), "{text}");
    assert!(text.contains(" 1024 "), "tmpfs size: {text}");
    let _ = d.burrow(&["volume", "rm", "longvol"]);

    // A bad --mount is refused before anything is created.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/dir,target=/x",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn cp_both_ways_running_and_stopped_and_inside_the_root() {
    let Some(d) = rootful("cp") else { return };
    let bb = image("busybox");
    let name = format!("cp-{}", std::process::id());
    let out = d.burrow(&[
        "run", "-d", "--name", &name, "--network", "none", &bb, "sh", "-c",
        "echo inside > /made && mkdir -p /tree/sub && echo deep > /tree/sub/f && ln -sfn / /escape; sleep 300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let host = tempfile::tempdir().unwrap();
    let h = |p: &str| host.path().join(p);

    // Out: a file to a new name, a directory into an existing one, a directory's contents.
    let src = format!("{name}:/made");
    let out = d.burrow(&["cp", &src, h("made.txt").to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(h("made.txt")).unwrap(), "inside\n");
    // Silent in a script; on a terminal (script(1)) the copy's size, as Docker says it,
    // unless -q.
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let on_tty = |q: &str| {
        let line = format!(
            "{} cp {q} {src} {}",
            d.shell_prefix(),
            h("again.txt").display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let said = on_tty("");
    assert!(
        said.contains("Successfully copied ") && said.contains("again.txt"),
        "{said}"
    );
    assert!(!on_tty("-q").contains("Successfully"));
    let out = d.burrow(&[
        "cp",
        &format!("{name}:/tree"),
        host.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(h("tree/sub/f")).unwrap(), "deep\n");
    std::fs::create_dir(h("contents")).unwrap();
    let out = d.burrow(&[
        "cp",
        &format!("{name}:/tree/."),
        h("contents").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(h("contents/sub/f").exists());
    // Out as a tar stream.
    let out = d.burrow(&["cp", &format!("{name}:/tree"), "-"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "tree/sub/f"), "{names:?}");

    // In: a file and a directory; the container sees them.
    std::fs::write(h("in.txt"), "from-host").unwrap();
    std::fs::create_dir_all(h("indir/a")).unwrap();
    std::fs::write(h("indir/a/b"), "bee").unwrap();
    let out = d.burrow(&[
        "cp",
        h("in.txt").to_str().unwrap(),
        &format!("{name}:/tmp/in.txt"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["cp", h("indir").to_str().unwrap(), &format!("{name}:/tmp")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["exec", &name, "sh", "-c", "cat /tmp/in.txt /tmp/indir/a/b"]);
    assert_eq!(stdout(&out), "from-hostbee", "{}", stderr(&out));

    // Absolute symlinks resolve inside the container, never on the host.
    let marker = format!("burrow-cp-escape-{}", std::process::id());
    let out = d.burrow(&[
        "cp",
        h("in.txt").to_str().unwrap(),
        &format!("{name}:/escape/tmp/{marker}"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "cp wrote through to the host"
    );
    let out = d.burrow(&["exec", &name, "cat", &format!("/tmp/{marker}")]);
    assert_eq!(stdout(&out), "from-host");

    // Errors: a missing source, a directory onto a file.
    let out = d.burrow(&[
        "cp",
        &format!("{name}:/no/such"),
        host.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("could not find /no/such"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&[
        "cp",
        &format!("{name}:/tree"),
        h("made.txt").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("directory to a file"),
        "{}",
        stderr(&out)
    );

    // A stopped container: its writable layer is still there to copy from and to.
    let out = d.burrow(&["stop", "-t", "1", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "cp",
        &format!("{name}:/tmp/in.txt"),
        h("back.txt").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(h("back.txt")).unwrap(), "from-host");
    let out = d.burrow(&[
        "cp",
        h("made.txt").to_str().unwrap(),
        &format!("{name}:/late.txt"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["start", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["exec", &name, "cat", "/late.txt"]);
    assert_eq!(stdout(&out), "inside\n", "{}", stderr(&out));
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn stats_reads_the_containers_cgroups() {
    let Some(d) = rootful("stats") else { return };
    let bb = image("busybox");
    let name = format!("busy-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["stats", "--no-stream", "--format", "json", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let row: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let cpu: f64 = row["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 20.0, "a busy loop at {cpu}% CPU: {row}");
    assert!(row["MemUsage"].as_str().unwrap().contains(" / "), "{row}");
    assert_ne!(row["PIDs"], "0", "{row}");
    assert_eq!(row["Name"], name.as_str());
    let out = d.burrow(&["stats", "--no-stream", &name]);
    assert!(stdout(&out).starts_with("CONTAINER ID"), "{}", stdout(&out));
    let out = d.burrow(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        &name,
    ]);
    assert!(
        stdout(&out).starts_with(&format!("{name} ")),
        "{}",
        stdout(&out)
    );
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn exec_detach_keys_leave_the_command_running() {
    let Some(d) = rootful("execdetach") else {
        return;
    };
    let bb = image("busybox");
    let name = format!("execdetach-{}", std::process::id());
    let base = d.shell_prefix();
    let out = d.burrow(&[
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
    let exists = |f: &str| code(&d.burrow(&["exec", &name, "test", "-e", f])) == 0;
    // The command writes after the detach too: its output must still be read, or it would
    // die of SIGPIPE before making its last file.
    let out = under_terminal(
        &format!(
            "{base} exec -it {name} sh -c 'touch /tmp/started; sleep 2; echo after-detach; touch /tmp/done'"
        ),
        |stdin| {
            assert!(
                burrow_testsupport::wait_for(std::time::Duration::from_secs(30), || exists(
                    "/tmp/started"
                )),
                "the exec never started"
            );
            std::io::Write::write_all(stdin, b"\x10\x11").unwrap();
        },
    );
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    assert!(
        !exists("/tmp/done"),
        "the CLI waited for the command instead of detaching: {}",
        stdout(&out)
    );
    assert!(
        burrow_testsupport::wait_for(std::time::Duration::from_secs(30), || exists("/tmp/done")),
        "the command did not run on after the detach"
    );
    // Exec output stays out of the container's log, and the exec's FIFOs go once it ended.
    let logs = stdout(&d.burrow(&["logs", &name]));
    assert!(!logs.contains("after-detach"), "{logs}");
    let id = stdout(&d.burrow(&["inspect", "-f", "{{.Id}}", &name]))
        .trim()
        .to_string();
    let dir = d.data.join("containers/default").join(&id);
    assert!(
        burrow_testsupport::wait_for(std::time::Duration::from_secs(30), || exec_fifo_dirs(&dir)
            == 0),
        "the detached exec was not cleaned up in {}",
        dir.display()
    );
    let out = d.burrow(&["exec", "-i", "--detach-keys", "ctrl-9", &name, "true"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("ctrl-9"), "{}", stderr(&out));
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn log_opts_rotate_the_json_file() {
    let Some(d) = rootful("logopt") else { return };
    let bb = image("busybox");
    let name = format!("rot-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        &bb,
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["wait", &name]);
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    let id = d.burrow(&["inspect", "-f", "{{.Id}}", &name]);
    let id = stdout(&id).trim().to_string();
    let dir = d.data.join("containers/default").join(&id);
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .collect();
    let listing: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(logs.len(), 2, "{id:?} in {}: {listing:?}", dir.display());
    for e in &logs {
        assert!(
            e.metadata().unwrap().len() <= 2048,
            "{:?} too big",
            e.file_name()
        );
    }
    let out = d.burrow(&["logs", &name]);
    let text = stdout(&out);
    assert!(text.ends_with("line-199\n"), "{text}");
    assert!(
        !text.contains("line-0\n"),
        "the oldest lines should be rotated away"
    );
    let out = d.burrow(&["run", "--rm", "--log-opt", "max-size=huge", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("max-size"), "{}", stderr(&out));
    let _ = d.burrow(&["rm", "-f", &name]);

    // compress=true: the rotated files are gzip (`.1.gz`, `.2.gz`), and `logs` reads them.
    let zname = format!("rotz-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &zname,
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "--log-opt",
        "compress=true",
        &bb,
        "sh",
        "-c",
        "i=0; while [ $i -lt 120 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&d.burrow(&["wait", &zname])).trim(), "0");
    let id = stdout(&d.burrow(&["inspect", "-f", "{{.Id}}", &zname]))
        .trim()
        .to_string();
    let dir = d.data.join("containers/default").join(&id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-json.log"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{id}-json.log"),
            format!("{id}-json.log.1.gz"),
            format!("{id}-json.log.2.gz")
        ]
    );
    let text = stdout(&d.burrow(&["logs", &zname]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"line-119"), "{text}");
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    let want: Vec<String> = (first..120).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        lines, want,
        "every kept line, in order, from the gzip files too"
    );
    assert!(first > 0, "the oldest lines are rotated away");
    let out = d.burrow(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &zname]);
    assert!(
        stdout(&out).contains("\"compress\":\"true\""),
        "{}",
        stdout(&out)
    );
    let _ = d.burrow(&["rm", "-f", &zname]);
}

#[test]
fn logs_follow_reads_across_rotations_and_takes_docker_times() {
    let Some(d) = rootful("logfollow") else {
        return;
    };
    let bb = image("busybox");
    let name = format!("follow-{}", std::process::id());
    // ~70-byte records, 1 KiB files, 3 kept: the log rotates every ~14 lines while followed.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        &bb,
        "sh",
        "-c",
        &numbered_lines_script(120),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first = assert_followed_lines(&d.burrow(&["logs", "-f", &name]), 120);
    assert!(first < 30, "logs -f started late: from line-{first}");
    // --since and --until in Docker's forms: durations, dates, Unix times, RFC 3339.
    let count = |args: &[&str]| {
        let mut a = vec!["logs"];
        a.extend_from_slice(args);
        a.push(&name);
        let out = d.burrow(&a);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        stdout(&out).lines().count()
    };
    let kept = count(&[]);
    assert!(
        kept > 0 && kept < 120,
        "rotation keeps part of the log: {kept}"
    );
    assert_eq!(count(&["--since", "1h"]), kept);
    assert_eq!(count(&["--since", "2000-01-01"]), kept);
    assert_eq!(count(&["--until", "1h"]), 0);
    assert_eq!(count(&["--until", "946684800"]), 0);
    assert_eq!(count(&["--since", "2999-01-01T00:00:00+01:00"]), 0);
    assert_eq!(count(&["--tail", "5", "--since", "10m"]), 5);
    let out = d.burrow(&["logs", "--since", "yesterday", &name]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("--since") && stderr(&out).contains("duration"),
        "{}",
        stderr(&out)
    );
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn attached_runs_are_logged_too() {
    let Some(d) = rootful("attlog") else { return };
    let bb = image("busybox");
    let name = format!("attlog-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; printf no-newline",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "to-out\nno-newline");
    // As with Docker, `logs` shows what an attached run printed, each stream on its own.
    let logs = d.burrow(&["logs", &name]);
    assert_eq!(code(&logs), 0, "{}", stderr(&logs));
    assert_eq!(stdout(&logs), "to-out\nno-newline");
    assert_eq!(stderr(&logs), "to-err\n");
    // `start -a` appends the second run's output.
    let out = d.burrow(&["start", "-a", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let logs = d.burrow(&["logs", &name]);
    assert_eq!(
        stdout(&logs).matches("to-out").count(),
        2,
        "{}",
        stdout(&logs)
    );
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn signals_to_an_attached_cli_reach_the_container_and_rm_still_cleans_up() {
    let Some(d) = rootful("sigproxy") else { return };
    let before = leftovers(&d);
    let bb = image("busybox");
    let name = format!("sigproxy-{}", std::process::id());
    // `run --rm --name NAME busybox sh -c SCRIPT`, its output piped, after "ready" is out.
    let start = |script: &str| {
        let mut cmd = std::process::Command::new(burrow_exe());
        cmd.env("NETCONFPATH", &d.netconf)
            .arg("--address")
            .arg(&d.sock)
            .arg("--data-root")
            .arg(&d.data)
            .args([
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                &bb,
                "sh",
                "-c",
                script,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        assert_eq!(&first, b"ready\n");
        (child, out)
    };
    let names = || stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]));

    // Killed outright, the CLI cannot clean up: the container keeps running (as under
    // Docker) and is removed, with all it owns, once it ends.
    let (mut child, _out) = start("echo ready; while :; do sleep 0.1; done");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        names().lines().any(|l| l == name),
        "the container ends with its process, not with the CLI: {}",
        names()
    );
    let out = d.burrow(&["kill", &name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let gone = burrow_testsupport::wait_for(std::time::Duration::from_secs(30), || {
        leftovers(&d) == before
    });
    assert!(gone, "--rm after a killed CLI left {:?}", leftovers(&d));

    let (mut child, mut out) =
        start("trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest, "got-term\n");
    assert_eq!(
        status.code(),
        Some(3),
        "the CLI exits with the container's status"
    );
    let ps = stdout(&d.burrow(&["ps", "-a", "--format", "{{.Names}}"]));
    assert!(
        !ps.lines().any(|l| l == name),
        "--rm did not remove it: {ps}"
    );
}

#[test]
fn a_new_named_volume_gets_the_images_content() {
    let Some(d) = rootful("volfill") else { return };
    let ml = image("multilayer");
    let vol = format!("fill{}", std::process::id());
    let mount = format!("{vol}:/data");
    let show = "stat -c '%u:%g %a %n' /data/owned/user1000 /data/owned/nobody /data/sticky; \
                cat /data/target.txt; readlink /data/links/absolute; ls /data/deleted.txt 2>&1 | grep -c 'No such'";
    // Each run: a new container on the same volume.
    let run_sh = |script: &str| {
        d.burrow(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &mount,
            &ml,
            "sh",
            "-c",
            script,
        ])
    };
    let out = run_sh(show);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "1000:1000 644 /data/owned/user1000\n65534:65534 644 /data/owned/nobody\n0:0 1777 /data/sticky\ntarget\n/data/target.txt\n1\n",
        "the image's /data, owners, modes, links and whiteouts as the image has them"
    );
    // Only an empty volume is filled: what a container changed stays.
    let out = run_sh("rm /data/target.txt; echo mine > /data/new.txt");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_sh("cat /data/new.txt; ls /data/target.txt 2>&1 | grep -c 'No such'");
    assert_eq!(stdout(&out), "mine\n1\n", "{}", stderr(&out));
    let _ = d.burrow(&["volume", "rm", &vol]);
}

#[test]
fn ip_picks_the_containers_address() {
    let Some(d) = rootful("ip") else { return };
    let bb = image("busybox");
    let net = format!("ipnet{}", std::process::id() % 10000);
    let out = d.burrow(&["network", "create", "--subnet", "10.77.5.0/24", &net]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        "10.77.5.50",
        &bb,
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("10.77.5.50/24"), "{}", stdout(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        "10.99.0.5",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("not in the subnet"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ip",
        "10.77.5.51",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    // `network rm` deletes the bridge (and so its address on the host), as Docker does: this
    // test runs with the same subnet every time.
    let inspect: serde_json::Value =
        serde_json::from_str(&stdout(&d.burrow(&["network", "inspect", &net]))).unwrap();
    let bridge = format!("br-{}", &inspect[0]["Id"].as_str().unwrap()[..12]);
    let out = d.burrow(&["network", "rm", &net]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !std::path::Path::new("/sys/class/net")
            .join(&bridge)
            .exists(),
        "{bridge} outlived network rm"
    );
}

#[test]
fn ps_size_shows_the_writable_layer() {
    let Some(d) = rootful("pssize") else { return };
    let bb = image("busybox");
    let name = format!("sz-{}", std::process::id());
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1000 count=300 2>/dev/null; sleep 300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_millis(700));
    let out = d.burrow(&[
        "ps",
        "-s",
        "--format",
        "json",
        "--filter",
        &format!("name={name}"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let row: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let size = row["Size"].as_str().unwrap();
    let own: f64 = size.split("kB").next().unwrap().parse().unwrap_or(0.0);
    assert!(own >= 300.0, "{size}");
    assert!(
        size.contains("(virtual ") && size.ends_with("MB)"),
        "{size}"
    );
    let out = d.burrow(&["ps", "-s", "--filter", &format!("name={name}")]);
    assert!(
        stdout(&out).lines().next().unwrap().ends_with("SIZE"),
        "{}",
        stdout(&out)
    );
    let _ = d.burrow(&["rm", "-f", &name]);
}

#[test]
fn attach_after_the_detach_keys_joins_stdin_again() {
    let Some(d) = rootful("reattach") else { return };
    let bb = image("busybox");
    let name = format!("reattach-{}", std::process::id());
    let base = d.shell_prefix();
    let running =
        || stdout(&d.burrow(&["inspect", "-f", "{{.State.Running}}", &name])).trim() == "true";
    // An attached `run -it` detached with the keys: its background reader serves the attach
    // socket, so a later attach sends input again (not only follows the output).
    let out = under_terminal(
        &format!("{base} run -it --name {name} --network none {bb} sh"),
        |stdin| {
            assert!(
                burrow_testsupport::wait_for(std::time::Duration::from_secs(30), running),
                "the container never ran"
            );
            std::io::Write::write_all(stdin, b"\x10\x11").unwrap();
        },
    );
    assert_eq!(code(&out), 0, "{} {}", stdout(&out), stderr(&out));
    assert!(running(), "the container stopped when the CLI detached");
    let out = under_terminal(&format!("{base} attach {name}"), |stdin| {
        std::io::Write::write_all(stdin, b"exit 7\r").unwrap();
    });
    assert_eq!(code(&out), 7, "{} {}", stdout(&out), stderr(&out));
    let _ = d.burrow(&["rm", "-f", &name]);
}

/// Docker's command-line forms: the `container` nouns, `run -h` (hostname), `logs -n`,
/// `ps -n`/`-l`, Go's booleans (`--rm=true`, `-d=false`; a bare `--rm` does not take the next
/// word), and usage errors exiting 125 with the command's own usage.
#[test]
fn dockers_command_line_forms_and_usage_errors() {
    let Some(d) = rootful("cliforms") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));

    let out = d.burrow(&["ps", "--nonsense"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("'--nonsense'"), "{}", stderr(&out));
    let out = d.burrow(&["stop"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("Usage: burrow stop [OPTIONS] <CONTAINERS>..."),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["container", "--help"]);
    ok(&out);
    for name in ["ls", "run", "rm", "logs", "exec", "prune"] {
        assert!(
            stdout(&out).contains(&format!("\n  {name} ")),
            "{}",
            stdout(&out)
        );
    }

    let out = d.burrow(&[
        "container",
        "run",
        "--rm=true",
        "-d=false",
        "-h",
        "box",
        "--network",
        "none",
        &bb,
        "hostname",
    ]);
    ok(&out);
    assert_eq!(stdout(&out), "box\n");
    // `false` after a bare --rm is the image, as in Go.
    let out = d.burrow(&["run", "--pull", "never", "--rm", "false"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no such image: false"),
        "{}",
        stderr(&out)
    );

    ok(&d.burrow(&["container", "create", "--name", "first", &bb, "true"]));
    ok(&d.burrow(&["create", "--name", "second", &bb, "true"]));
    let names = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--format", "{{.Names}}"]);
        let out = d.burrow(&all);
        assert_eq!(code(&out), 0, "{all:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(names(&["ps"]), "", "neither runs");
    assert_eq!(names(&["container", "ls", "-n", "1"]), "second\n");
    assert_eq!(names(&["ps", "-l"]), "second\n");
    assert_eq!(
        names(&["container", "list", "--last", "2"]),
        "second\nfirst\n"
    );

    ok(&d.burrow(&[
        "run",
        "--name",
        "lines",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo one; echo two; echo three",
    ]));
    let out = d.burrow(&["logs", "-n", "1", "lines"]);
    ok(&out);
    assert_eq!(stdout(&out), "three\n");
    let out = d.burrow(&["container", "logs", "-n", "2", "lines"]);
    assert_eq!(stdout(&out), "two\nthree\n", "{}", stderr(&out));

    ok(&d.burrow(&["container", "remove", "first", "lines"]));
    ok(&d.burrow(&["container", "rm", "second"]));
    assert_eq!(names(&["container", "ps", "-a"]), "");
}

#[test]
fn mount_volume_subpath_and_nonrecursive_binds() {
    let Some(d) = rootful("subpath") else { return };
    let bb = image("busybox");
    let ok = |out: &std::process::Output| assert_eq!(code(out), 0, "{}", stderr(out));
    // A volume with a directory in it; a container mounts only that directory.
    ok(&d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "subvol:/v",
        &bb,
        "sh",
        "-c",
        "mkdir -p /v/app/conf && echo inner > /v/app/conf/f && echo top > /v/top",
    ]));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,source=subvol,target=/c,volume-subpath=app/conf",
        &bb,
        "sh",
        "-c",
        "cat /c/f; ls /c",
    ]);
    assert_eq!(stdout(&out), "inner\nf\n", "{}", stderr(&out));
    // A container that mounts only a subpath still uses the volume.
    ok(&d.burrow(&[
        "create",
        "--name",
        "subuser",
        "--network",
        "none",
        "--mount",
        "type=volume,source=subvol,target=/c,volume-subpath=app/conf",
        &bb,
        "true",
    ]));
    let out = d.burrow(&["volume", "rm", "subvol"]);
    assert_ne!(
        code(&out),
        0,
        "a volume a container mounts a subpath of is in use"
    );
    assert!(stderr(&out).contains("subuser"), "{}", stderr(&out));
    ok(&d.burrow(&["rm", "subuser"]));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,source=subvol,target=/c,volume-subpath=missing",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no such directory"),
        "{}",
        stderr(&out)
    );
    // bind-nonrecursive: what is mounted under the source is not carried along.
    let src = d.dir.join("nonrec");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/under"), "under\n").unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(src.join("sub"))
        .status()
        .unwrap();
    assert!(mounted.success());
    std::fs::write(src.join("sub/over"), "over\n").unwrap();
    let spec = |extra: &str| format!("type=bind,source={},target=/b{extra}", src.display());
    let ls = |m: &str| {
        let out = d.burrow(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--mount",
            m,
            &bb,
            "ls",
            "/b/sub",
        ]);
        stdout(&out)
    };
    let recursive = ls(&spec(""));
    let flat = ls(&spec(",bind-nonrecursive"));
    let _ = std::process::Command::new("umount")
        .arg(src.join("sub"))
        .status();
    assert_eq!(recursive, "over\n", "rbind carries the tmpfs along");
    assert_eq!(
        flat, "under\n",
        "bind-nonrecursive shows the directory under it"
    );
    ok(&d.burrow(&["volume", "rm", "subvol"]));
    // volume-opt: a new volume made with the local driver's options (here a tmpfs).
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,source=optvol,target=/t,volume-opt=type=tmpfs,volume-opt=o=size=3m",
        &bb,
        "sh",
        "-c",
        "df -k /t | tail -1 | tr -s ' ' | cut -d' ' -f2",
    ]);
    assert_eq!(stdout(&out), "3072\n", "{}", stderr(&out));
    let opts = stdout(&d.burrow(&["volume", "inspect", "-f", "{{json .Options}}", "optvol"]));
    assert!(opts.contains(r#""type":"tmpfs""#), "{opts}");
    ok(&d.burrow(&["volume", "rm", "optvol"]));
}
