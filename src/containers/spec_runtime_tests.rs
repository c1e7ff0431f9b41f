//! Runs specs from `spec::build` with the real runc: rootful as root, and rootless as the test
//! user inside a RootlessKit user namespace (cgroup v1 here: no cgroupsPath, or runc fails).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, Cleanup, TestMachine};

use super::spec::{build, Cgroups, ImageDefaults, Limits, NetNs, Options, Seccomp};

/// A bundle directory removed on drop.
struct Bundle {
    dir: PathBuf,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skip(reason: &str) {
    eprintln!("SKIP: {reason}");
}

/// A busybox rootfs with passwd/group and the spec written as config.json.
fn bundle(name: &str, opts: &Options, owner: Option<(u32, u32)>) -> Bundle {
    let dir = std::env::temp_dir().join(format!("burrow-spec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "srv"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for app in ["sh", "id", "cat", "grep", "echo", "unshare", "mount"] {
        symlink("busybox", rootfs.join("bin").join(app)).unwrap();
    }
    let passwd = "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33:web:/srv:/bin/sh\n";
    let group = "root:x:0:\nweb:x:33:\nextra:x:77:web\n";
    std::fs::write(rootfs.join("etc/passwd"), passwd).unwrap();
    std::fs::write(rootfs.join("etc/group"), group).unwrap();
    let image = ImageDefaults {
        user: "web".into(),
        working_dir: "/srv".into(),
        passwd: passwd.into(),
        group: group.into(),
        ..Default::default()
    };
    let spec = build(&image, opts).expect("spec builds");
    spec.save(dir.join("config.json")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some((uid, gid)) = owner {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    Bundle { dir }
}

const SCRIPT: &str = "id -u; id -g; id -G; pwd; grep Seccomp: /proc/self/status; \
    if unshare -n true 2>/dev/null; then echo unshare-allowed; else echo unshare-denied; fi; \
    if mount -t tmpfs t /tmp 2>/dev/null; then echo mount-allowed; else echo mount-denied; fi; \
    exit 7";

fn options(id: &str, cgroups: Cgroups) -> Options {
    Options {
        id: id.into(),
        hostname: id.into(),
        args: vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()],
        entrypoint: None,
        env: vec![],
        workdir: None,
        user: None,
        tty: false,
        privileged: false,
        read_only: false,
        cap_add: vec![],
        cap_drop: vec![],
        seccomp: Seccomp::Default,
        no_new_privileges: false,
        netns: NetNs::New,
        cgroups,
        limits: Limits::default(),
        mounts: vec![],
        annotations: Default::default(),
        single_id: false,
    }
}

fn check_output(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines[0..4],
        ["33", "33", "33 77", "/srv"],
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        lines[4].starts_with("Seccomp:") && lines[4].ends_with('2'),
        "{stdout}"
    );
    assert!(
        lines.contains(&"unshare-denied") && lines.contains(&"mount-denied"),
        "{stdout}"
    );
}

fn have_runtime() -> bool {
    Path::new("/usr/sbin/runc").exists() && Path::new("/bin/busybox").exists()
}

#[test]
fn runc_runs_the_spec_rootful_with_a_pids_limit() {
    if !nix_is_root() || !have_runtime() {
        return skip("needs root, runc and /bin/busybox");
    }
    let id = format!("burrow-spec-{}", std::process::id());
    let mut opts = options(&id, Cgroups::Path(format!("/burrow-spec-test/{id}")));
    opts.limits = Limits {
        pids: Some(64),
        ..Default::default()
    };
    let b = bundle("rootful", &opts, None);
    let state = b.dir.join("state");
    let mut cleanup = Cleanup::new();
    let mut del = Command::new("runc");
    del.arg("--root").arg(&state).args(["delete", "-f", &id]);
    // Commands run in reverse order: delete the container, then its parent cgroups.
    let mut rmdir = Command::new("sh");
    rmdir.args([
        "-c",
        "rmdir /sys/fs/cgroup/*/burrow-spec-test 2>/dev/null; true",
    ]);
    cleanup.run_on_drop(rmdir);
    cleanup.run_on_drop(del);
    let mut cmd = Command::new("runc");
    cmd.arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(&id);
    check_output(&run_with_timeout(&mut cmd, Duration::from_secs(60)));
}

#[test]
fn runc_runs_the_spec_rootless_without_cgroups() {
    let Some(machine) = TestMachine::get() else {
        return;
    };
    if !have_runtime() || !Path::new("/usr/bin/rootlesskit").exists() {
        return skip("needs runc, rootlesskit and /bin/busybox");
    }
    let id = format!("burrow-spec-rl-{}", std::process::id());
    let reason =
        super::spec::cgroup_unavailable_reason(true).unwrap_or_else(|| "not delegated".into());
    let opts = options(&id, Cgroups::Unavailable { reason });
    let owner = if machine.is_self {
        None
    } else {
        Some((machine.uid, machine.gid))
    };
    let b = bundle("rootless", &opts, owner);
    let state = format!(
        "{}/burrow-spec-test-{}",
        machine.xdg_runtime_dir,
        std::process::id()
    );
    let mut cleanup = Cleanup::new();
    cleanup.remove_dir(&state);
    let mut cmd = machine.user_command("rootlesskit");
    cmd.args(["--net=host", "--state-dir"])
        .arg(format!("{state}/rk"))
        .args(["runc", "--root"])
        .arg(format!("{state}/runc"))
        .args(["run", "--bundle"])
        .arg(&b.dir)
        .arg(&id);
    check_output(&run_with_timeout(&mut cmd, Duration::from_secs(60)));
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
