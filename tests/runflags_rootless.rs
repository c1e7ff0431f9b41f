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
