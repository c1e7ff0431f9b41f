//! Bind propagation rootless: runc mounts in the launcher's mount namespace, so that namespace
//! decides what a shared or slave bind sees. Here (RootlessKit, a user namespace of its own)
//! the launcher's mounts are private copies: a mount made on the host after the start does not
//! reach the container; a bind made shared inside the launcher's namespace (`burrow setup
//! nsenter`) carries the mounts made there into an rshared container, not an rprivate one.

mod containers_support;

use std::process::Command;

use containers_support::*;

#[test]
fn propagation_follows_the_launchers_mount_namespace() {
    let Some(rl) = rootless("propagation") else {
        return;
    };
    let bb = image("busybox");
    let d = rl.dir.join("sharedsrc");
    std::fs::create_dir_all(&d).unwrap();
    let ds = d.display().to_string();
    let chown = Command::new("chown")
        .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
        .arg(&d)
        .status()
        .unwrap();
    assert!(chown.success());
    let rshared = format!("{ds}:/m:rshared");
    // The launcher's copy of the source is private: refused with the way to fix it.
    let out = rl.burrow(&["run", "--rm", "-v", &rshared, &bb, "true"]);
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(
        err.contains("not a shared mount in the launcher's mount namespace")
            && err.contains("burrow setup nsenter -- sh -c"),
        "{err}"
    );
    // Made shared there, as the message says.
    let nsenter = |script: &str| {
        let out = rl.burrow(&["setup", "nsenter", "--", "sh", "-c", script]);
        assert_eq!(code(&out), 0, "{script}: {}", stderr(&out));
    };
    nsenter(&format!(
        "mount --bind {ds} {ds} && mount --make-shared {ds}"
    ));
    let private = format!("{ds}:/m");
    for (name, vol) in [("rsh", &rshared), ("rpr", &private)] {
        let out = rl.burrow(&["run", "-d", "--name", name, "-v", vol, &bb, "sleep", "60"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    nsenter(&format!(
        "mkdir -p {ds}/sub && mount -t tmpfs tmpfs {ds}/sub && echo later > {ds}/sub/f"
    ));
    let out = rl.burrow(&["exec", "rsh", "cat", "/m/sub/f"]);
    assert_eq!(stdout(&out), "later\n", "rshared: {}", stderr(&out));
    let out = rl.burrow(&["exec", "rpr", "ls", "/m/sub"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, ""),
        "rprivate: {}",
        stderr(&out)
    );
    let out = rl.burrow(&["inspect", "--format", "{{json .Mounts}}", "rsh"]);
    assert!(
        stdout(&out).contains(r#""Propagation":"rshared""#),
        "{}",
        stdout(&out)
    );
    let _ = rl.burrow(&["rm", "-f", "rsh", "rpr"]);
    nsenter(&format!("umount {ds}/sub; umount {ds}"));
}

#[test]
fn security_options_reach_the_container() {
    let Some(rl) = rootless("securityopt") else {
        return;
    };
    let bb = image("busybox");
    let run = |opts: &[&str], script: &str| {
        let mut argv = vec!["run", "--rm"];
        for o in opts {
            argv.extend(["--security-opt", o]);
        }
        argv.extend([bb.as_str(), "sh", "-c", script]);
        let out = rl.burrow(&argv);
        assert_eq!(code(&out), 0, "{opts:?}: {}", stderr(&out));
        stdout(&out)
    };
    let status = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -s '\\t ' ' '; grep -c ' /proc/keys ' /proc/mounts || true";
    // By default: the seccomp filter on, /proc/keys masked.
    assert_eq!(run(&[], status), "NoNewPrivs: 0\nSeccomp: 2\n1\n");
    assert_eq!(
        run(
            &[
                "seccomp=unconfined",
                "no-new-privileges",
                "systempaths=unconfined"
            ],
            status
        ),
        "NoNewPrivs: 1\nSeccomp: 0\n0\n"
    );
    // Taken as Docker takes them on a host without AppArmor profiles or SELinux.
    assert_eq!(
        run(&["apparmor=unconfined", "label=disable"], "echo ran"),
        "ran\n"
    );
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--security-opt",
        "apparmor=docker-default",
        &bb,
        "true",
    ]);
    if !std::path::Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        assert_eq!(code(&out), 125);
        assert!(
            stderr(&out).contains("AppArmor is not enabled"),
            "{}",
            stderr(&out)
        );
    }
    let out = rl.burrow(&["run", "--rm", "--security-opt", "selinux=x", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("systempaths=unconfined"),
        "{}",
        stderr(&out)
    );
}

/// `--runtime`: containerd's runc shim runs the program named for the container, its execs and
/// its later starts (here a wrapper of runc that logs each call); runc stays the default; crun
/// runs, or, on a host whose cgroup layout it refuses (this one's v1 with a v2 tree holding a
/// controller), fails with its reason and leaves nothing; a name that is no program is refused
/// before anything is made.
#[test]
fn runtime_runs_the_named_program_for_the_container_its_execs_and_restarts() {
    let Some(rl) = rootless("runtime") else {
        return;
    };
    let bb = image("busybox");
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("runc is installed");
    let calls = rl.dir.join("calls.log");
    std::fs::write(&calls, "").unwrap();
    let wrapper = rl.dir.join("logging-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a; do case $a in create|start|exec|kill|delete) echo \"$a\" >> {log}; break;; esac; done\nexec {runc} \"$@\"\n",
            log = calls.display()
        ),
    )
    .unwrap();
    for (p, mode) in [(&wrapper, 0o755), (&calls, 0o666)] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }
    let logged = || std::fs::read_to_string(&calls).unwrap();
    let wrapper = wrapper.display().to_string();

    let out = rl.burrow(&["run", "-d", "--name", "rc", &bb, "sleep", "60"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(logged(), "", "runc by default");
    let out = rl.burrow(&[
        "run",
        "-d",
        "--name",
        "w",
        "--runtime",
        &wrapper,
        &bb,
        "sleep",
        "60",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(logged(), "create\nstart\n");
    let shown = ok(&rl.burrow(&["inspect", "-f", "{{.HostConfig.Runtime}}", "w", "rc"]));
    assert_eq!(shown, format!("{wrapper}\nrunc\n"));
    let out = rl.burrow(&["exec", "w", "echo", "from exec"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "from exec\n"),
        "{}",
        stderr(&out)
    );
    assert!(logged().ends_with("start\nexec\n"), "{}", logged());
    // Stopped and started again: the record's runtime options keep the program.
    std::fs::write(&calls, "").unwrap();
    for argv in [&["stop", "-t", "0", "w"][..], &["start", "w"]] {
        let out = rl.burrow(argv);
        assert_eq!(code(&out), 0, "{argv:?}: {}", stderr(&out));
    }
    let again = logged();
    assert!(
        again.contains("kill\n") && again.ends_with("create\nstart\n"),
        "{again}"
    );
    // A command that does not exist: Docker's 127, as with runc itself.
    let out = rl.burrow(&["run", "--rm", "--runtime", &wrapper, &bb, "nosuchcmd"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));

    let before = ok(&rl.burrow(&["ps", "-aq"]));
    if std::path::Path::new("/usr/bin/crun").exists() {
        let hybrid = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| !c.trim().is_empty());
        let out = rl.burrow(&["run", "--rm", "--runtime", "crun", &bb, "echo", "crun ran"]);
        if hybrid {
            assert_eq!(code(&out), 125);
            let err = stderr(&out);
            assert!(
                err.contains("hybrid mode") && err.contains("leave --runtime out"),
                "{err}"
            );
        } else {
            assert_eq!(
                (code(&out), stdout(&out).as_str()),
                (0, "crun ran\n"),
                "{}",
                stderr(&out)
            );
        }
    }
    let out = rl.burrow(&["run", "--rm", "--runtime", "nosuchrt", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no program \"nosuchrt\" in PATH"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(&rl.burrow(&["ps", "-aq"])), before, "nothing was made");
}
