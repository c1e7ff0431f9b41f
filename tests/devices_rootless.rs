//! `--device` and CDI devices rootless, as the unprivileged test user: the device nodes are
//! bind mounts of the host's, and CDI specs come from the user's ~/.config/cdi.

mod containers_support;

use containers_support::*;

#[test]
fn rootless_host_device_and_cdi_device_from_the_users_config() {
    let Some(rl) = rootless("dev") else { return };
    let cdi = rl.home.join(".config/cdi");
    std::fs::create_dir_all(&cdi).unwrap();
    let data = rl.home.join("fake-data");
    std::fs::write(&data, "vendor data\n").unwrap();
    let spec = format!(
        "cdiVersion: \"0.6.0\"\nkind: example.com/dev\ndevices:\n  - name: one\n    containerEdits:\n\
         \x20     env: [FAKE=one]\n      deviceNodes:\n        - path: /dev/fake0\n          hostPath: /dev/null\n\
         \x20     mounts:\n        - hostPath: {}\n          containerPath: /fake/data\n          options: [ro, bind]\n",
        data.display()
    );
    std::fs::write(cdi.join("fake.yaml"), spec).unwrap();
    // Made as root: the user's own, as its ~/.config would be.
    let (uid, gid) = (Some(rl.machine.uid), Some(rl.machine.gid));
    for p in [
        rl.home.join(".config"),
        cdi.clone(),
        cdi.join("fake.yaml"),
        data,
    ] {
        std::os::unix::fs::chown(&p, uid, gid).unwrap();
    }
    let out = rl.burrow(&[
        "run", "--rm", "--network", "none",
        "--device", "/dev/zero:/dev/myzero",
        "--device", "example.com/dev=one",
        &image("busybox"),
        "sh", "-c", "head -c 2 /dev/myzero | od -An -tx1; echo $FAKE; cat /fake/data; echo x > /dev/fake0 && echo wrote",
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("00 00")
            && text.contains("one")
            && text.contains("vendor data")
            && text.contains("wrote"),
        "{text}"
    );

    // No device cgroup rootless: a rule is refused, saying why, and nothing is left.
    let before = rl.ctr(&["c", "ls", "-q"]);
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 1:3 r",
        &image("busybox"),
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("rootless"), "{}", stderr(&out));
    assert_eq!(rl.ctr(&["c", "ls", "-q"]), before);
}
