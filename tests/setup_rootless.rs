//! `burrow setup` as the unprivileged test user on the real stack: check, install under the real
//! `systemd --user` (containerd inside burrow-rootlesskit), restart after SIGKILL with images
//! kept, idempotence, uninstall leaving nothing behind, the supervised (no-systemd) service, an
//! unset XDG_RUNTIME_DIR, the "nothing reachable" error, root using a system containerd, and a
//! stale `child_pid` (its pid reused) that must never get the user's other processes killed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout, wait_for, Cleanup, TestMachine};

const MINUTE: Duration = Duration::from_secs(60);

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// burrow and burrow-rootlesskit copied side by side where the test user can run them.
fn binaries(m: &TestMachine) -> (PathBuf, PathBuf) {
    let burrow = Path::new(env!("CARGO_BIN_EXE_burrow"));
    let launcher = burrow.with_file_name("burrow-rootlesskit");
    assert!(
        launcher.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        launcher.display()
    );
    let l = m.install_bin(&launcher);
    // `--bypass` finds burrow-bypass beside burrow (not only when another test put it there).
    m.install_bin(burrow.with_file_name("burrow-bypass"));
    (m.install_bin(burrow), l)
}

/// Runs `burrow ARGS` as the test user.
fn burrow(m: &TestMachine, bin: &Path, args: &[&str]) -> Output {
    let mut argv = vec![bin.to_str().unwrap()];
    argv.extend_from_slice(args);
    m.run_user(&argv, Duration::from_secs(180))
}

fn status_json(m: &TestMachine, bin: &Path) -> serde_json::Value {
    let out = burrow(m, bin, &["setup", "status", "--format", "json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("setup status json: {e}: {}{}", stdout(&out), stderr(&out)))
}

fn runtime_dir(m: &TestMachine) -> PathBuf {
    PathBuf::from(&m.xdg_runtime_dir)
}

fn child_pid(m: &TestMachine) -> Option<i32> {
    std::fs::read_to_string(runtime_dir(m).join("containerd-rootless/child_pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn userns(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/user")).ok()
}

/// Processes in a user namespace.
fn processes_in(ns: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| userns(*p).as_deref() == Some(ns))
        .collect()
}

/// Uninstalls (best effort) when a test ends, however it ends.
fn uninstall_on_drop(m: &TestMachine, bin: &Path, c: &mut Cleanup) {
    let mut cmd = m.user_command(bin);
    cmd.args(["setup", "uninstall"]);
    c.run_on_drop(cmd);
}

/// Kills containerd (the launcher's child) and waits until a new one answers.
fn kill_containerd_and_wait_for_restart(m: &TestMachine, bin: &Path) {
    let old = child_pid(m).expect("child_pid before the kill");
    let comm = std::fs::read_to_string(format!("/proc/{old}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "containerd",
        "the launcher's child is containerd"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = wait_for(Duration::from_secs(90), || {
        child_pid(m).is_some_and(|p| p != old) && status_json(m, bin)["containerd"].is_string()
    });
    assert!(
        restarted,
        "containerd was not restarted after SIGKILL: {}\nlog:\n{}",
        status_json(m, bin),
        stdout(&burrow(m, bin, &["setup", "logs", "--tail", "30"]))
    );
}

#[test]
fn check_passes_and_explains_in_json() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let out = burrow(&m, &bin, &["setup", "check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    assert!(out.status.success(), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["uid"], m.uid);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "user namespaces",
        "newuidmap",
        "subordinate ids",
        "/dev/net/tun",
        "XDG_RUNTIME_DIR",
        "systemd --user",
        "cgroups",
        "snapshotter",
        "containerd",
        "OCI runtime",
        "data filesystem",
    ] {
        assert!(names.contains(&want), "no {want} check in {names:?}");
    }
    // This machine: overlayfs works in a user namespace, cgroup v1 gives no delegation.
    assert_eq!(v["choices"]["snapshotter"], "overlayfs", "{v:#}");
    let v1 = !Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v1 {
        assert_eq!(v["choices"]["cgroup_manager"], "none");
    }

    // Text output names each failing or limited item with its fix; here cgroup v1 is a warning.
    let out = burrow(&m, &bin, &["setup", "check"]);
    let text = stdout(&out);
    assert!(
        text.contains("ready: `burrow setup install` can proceed"),
        "{text}"
    );
    if v1 {
        assert!(text.contains("[warn] cgroups: cgroup v1"), "{text}");
    }
}

#[test]
fn check_without_xdg_runtime_dir_proposes_one() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let mut cmd = m.user_command(&bin);
    cmd.env_remove("XDG_RUNTIME_DIR").args(["setup", "check"]);
    let out = run_with_timeout(&mut cmd, MINUTE);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "XDG_RUNTIME_DIR: not set; using {}",
            m.xdg_runtime_dir
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("export XDG_RUNTIME_DIR={}", m.xdg_runtime_dir)),
        "{text}"
    );
}

#[test]
fn nothing_reachable_names_every_socket_and_the_fix() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let empty = tempfile::tempdir().unwrap();
    let mut chown = Command::new("chown");
    chown.arg(format!("{}:{}", m.uid, m.gid)).arg(empty.path());
    expect_success(&run_with_timeout(&mut chown, MINUTE), "chown");
    let mut cmd = m.user_command(&bin);
    cmd.env("XDG_RUNTIME_DIR", empty.path()).args(["ps"]);
    let out = run_with_timeout(&mut cmd, MINUTE);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("no containerd is reachable"), "{err}");
    assert!(
        err.contains(&format!(
            "{}/containerd/containerd.sock",
            empty.path().display()
        )),
        "{err}"
    );
    assert!(err.contains("/run/containerd/containerd.sock"), "{err}");
    assert!(err.contains("burrow setup install"), "{err}");
}

#[test]
fn install_under_systemd_survives_a_killed_containerd_and_uninstalls_cleanly() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    uninstall_on_drop(&m, &bin, &mut c);
    // A host where rootful CNI ran has a /run/cni of root's; the launcher's copy of /run must
    // not show it to the user's plugins (the tuning plugin keeps --mac-address's state there).
    std::fs::create_dir_all("/run/cni").unwrap();

    let out = burrow(&m, &bin, &["setup", "install"]);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("(systemd user service"),
        "{}",
        stdout(&out)
    );
    let unit = Path::new(&m.home).join(".config/systemd/user/containerd.service");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        unit_text.contains("burrow-rootlesskit --state-dir=%t/containerd-rootless"),
        "{unit_text}"
    );

    // The CLI finds it rootless, with the launcher's drivers.
    let out = burrow(&m, &bin, &["info", "--format", "json"]);
    assert!(out.status.success(), "info: {}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["Mode"], "rootless", "{info:#}");
    let child = child_pid(&m).expect("child_pid");
    let ns = userns(child).unwrap();
    assert_ne!(
        Some(ns.clone()),
        userns(std::process::id() as i32),
        "containerd runs in its own user namespace"
    );
    let uid_map = std::fs::read_to_string(format!("/proc/{child}/uid_map")).unwrap();
    assert!(
        uid_map
            .split_whitespace()
            .take(3)
            .eq(["0", &m.uid.to_string(), "1"]),
        "{uid_map}"
    );

    // State private to the user.
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&runtime_dir(&m).join("containerd")), 0o700);
    assert_eq!(
        mode(&Path::new(&m.home).join(".local/share/containerd")),
        0o700
    );

    // nsenter runs commands in containerd's namespaces: root there, the launcher's tap0.
    let out = burrow(
        &m,
        &bin,
        &[
            "setup",
            "nsenter",
            "--",
            "cat",
            "/proc/self/uid_map",
            "/proc/net/dev",
        ],
    );
    assert!(out.status.success(), "nsenter: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.split_whitespace()
            .take(3)
            .eq(["0", &m.uid.to_string(), "1"]),
        "{text}"
    );
    assert!(text.contains("tap0:"), "{text}");
    let out = burrow(&m, &bin, &["setup", "nsenter", "--", "no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    // logs: containerd's own lines are in the service log.
    let out = burrow(&m, &bin, &["setup", "logs", "--tail", "200"]);
    assert!(
        stdout(&out).contains("containerd successfully booted"),
        "{}",
        stdout(&out)
    );

    // An image pulled now survives containerd's SIGKILL and systemd's restart.
    let image = &m.image_busybox;
    let out = burrow(&m, &bin, &["pull", "-q", image]);
    assert!(out.status.success(), "pull: {}", stderr(&out));
    kill_containerd_and_wait_for_restart(&m, &bin);
    let out = burrow(
        &m,
        &bin,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    assert!(
        stdout(&out).contains(image.as_str()),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // A container on the default network with a MAC of its own (CNI's tuning plugin).
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            "--mac-address",
            "02:42:ac:11:00:99",
            image,
            "cat",
            "/sys/class/net/eth0/address",
        ],
    );
    assert_eq!(stdout(&out), "02:42:ac:11:00:99\n", "{}", stderr(&out));

    // Running install again changes nothing and returns at once.
    let out = burrow(&m, &bin, &["setup", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));

    // Uninstall: no unit, no process, no socket; images stay.
    let child = child_pid(&m).unwrap();
    let ns = userns(child).unwrap();
    let out = burrow(&m, &bin, &["setup", "uninstall"]);
    assert!(
        out.status.success(),
        "uninstall: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!unit.exists(), "the unit is still there");
    assert!(
        processes_in(&ns).is_empty(),
        "left running: {:?}",
        processes_in(&ns)
    );
    assert!(!runtime_dir(&m).join("containerd/containerd.sock").exists());
    assert!(!runtime_dir(&m)
        .join("containerd-rootless/api.sock")
        .exists());
    let active = m.run_user(
        &["systemctl", "--user", "is-active", "containerd.service"],
        MINUTE,
    );
    assert_ne!(stdout(&active).trim(), "active");
    assert!(
        Path::new(&m.home).join(".local/share/containerd").exists(),
        "images were deleted without --purge"
    );
    let out = burrow(&m, &bin, &["setup", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("installed:  none"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn supervised_service_without_systemd_restarts_and_stops() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    uninstall_on_drop(&m, &bin, &mut c);

    let out = burrow(&m, &bin, &["setup", "install", "--no-systemd", "--bypass"]);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("(supervised service"), "{text}");
    assert!(text.contains("setup supervise --background"), "{text}");
    assert!(!Path::new(&m.home)
        .join(".config/systemd/user/containerd.service")
        .exists());
    let st = status_json(&m, &bin);
    assert_eq!(st["installed"], "supervised", "{st:#}");
    let supervisor = st["service_pid"].as_i64().expect("supervisor pid") as i32;

    kill_containerd_and_wait_for_restart(&m, &bin);
    assert_eq!(
        status_json(&m, &bin)["service_pid"],
        supervisor,
        "the supervisor itself was replaced"
    );

    // The supervisor also keeps the socket-bypass service running.
    let bypass_pid = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "burrow-bypass")
                    && std::fs::read_to_string(format!("/proc/{p}/status")).is_ok_and(|s| {
                        s.lines().any(|l| {
                            l.starts_with("Uid:")
                                && l.split_whitespace().nth(1) == Some(&m.uid.to_string())
                        })
                    })
            })
    };
    let old = bypass_pid().expect("burrow-bypass runs under the supervisor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let back = wait_for(Duration::from_secs(30), || {
        bypass_pid().is_some_and(|p| p != old)
            && std::os::unix::net::UnixStream::connect(runtime_dir(&m).join("burrow/bypass.sock"))
                .is_ok()
    });
    assert!(back, "the supervisor did not restart burrow-bypass");

    // Starting it again while it runs is a no-op.
    let out = burrow(&m, &bin, &["setup", "supervise", "--background"]);
    assert!(
        stdout(&out).contains("already runs"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    let ns = userns(child_pid(&m).unwrap()).unwrap();
    let out = burrow(&m, &bin, &["setup", "uninstall"]);
    assert!(
        out.status.success(),
        "uninstall: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        processes_in(&ns).is_empty(),
        "left running: {:?}",
        processes_in(&ns)
    );
    let gone = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{supervisor}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    });
    assert!(gone, "the supervisor {supervisor} still runs");
    assert!(!runtime_dir(&m).join("containerd/containerd.sock").exists());
}

#[test]
fn root_uses_a_system_containerd() {
    let Some(m) = TestMachine::get() else { return };
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: root_uses_a_system_containerd needs root");
        return;
    }
    let _ = m;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("containerd.sock");
    let mut c = Cleanup::new();
    let mut cmd = Command::new("containerd");
    cmd.arg("--address")
        .arg(&sock)
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--config")
        .arg("/dev/null")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    use std::os::unix::process::CommandExt;
    c.spawn(&mut cmd);
    assert!(
        wait_for(MINUTE, || std::os::unix::net::UnixStream::connect(&sock)
            .is_ok()),
        "the private containerd did not start"
    );
    let mut info = Command::new(env!("CARGO_BIN_EXE_burrow"));
    info.arg("--address")
        .arg(&sock)
        .args(["info", "--format", "json"]);
    let out = run_with_timeout(&mut info, MINUTE);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Mode"], "rootful", "{v:#}");
    assert_eq!(v["Socket"], sock.to_str().unwrap(), "{v:#}");
    assert!(v["Launcher"].is_null(), "{v:#}");
}

#[test]
fn a_foreign_rootless_containerd_is_kept_unless_forced() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    uninstall_on_drop(&m, &bin, &mut c);
    let unit = Path::new(&m.home).join(".config/systemd/user/containerd.service");
    let backup = unit.with_file_name("containerd.service.burrow-backup");
    let _ = std::fs::remove_file(&backup);
    // What nerdctl's containerd-rootless-setuptool.sh would have left (not started here).
    let foreign = "[Unit]\nDescription=containerd (Rootless)\n\n[Service]\nExecStart=/usr/local/bin/containerd-rootless.sh\n\n[Install]\nWantedBy=default.target\n";
    let mut sh = m.user_command("sh");
    sh.arg("-c")
        .arg("mkdir -p \"$(dirname \"$1\")\" && printf '%s' \"$2\" > \"$1\"")
        .arg("sh")
        .arg(&unit)
        .arg(foreign);
    expect_success(&run_with_timeout(&mut sh, MINUTE), "write the foreign unit");

    let out = burrow(&m, &bin, &["setup", "install"]);
    assert!(
        !out.status.success(),
        "install replaced a foreign setup: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("burrow did not set up") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        foreign,
        "the foreign unit was changed"
    );
    let st = status_json(&m, &bin);
    assert_eq!(st["installed"], "foreign (not set up by burrow)", "{st:#}");
    let out = burrow(&m, &bin, &["setup", "uninstall"]);
    assert!(!out.status.success(), "uninstall removed a foreign unit");
    assert!(unit.exists());

    let out = burrow(&m, &bin, &["setup", "install", "--force"]);
    assert!(
        out.status.success(),
        "install --force: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), foreign);
    assert!(stdout(&out).contains(".burrow-backup"), "{}", stdout(&out));
    let out = burrow(&m, &bin, &["setup", "uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::fs::remove_file(&backup);
}

#[test]
fn data_root_holds_the_images_and_purge_deletes_them() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    uninstall_on_drop(&m, &bin, &mut c);
    let scratch = tempfile::Builder::new()
        .prefix("burrow-scratch-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut chown = Command::new("chown");
    chown
        .arg(format!("{}:{}", m.uid, m.gid))
        .arg(scratch.path());
    expect_success(&run_with_timeout(&mut chown, MINUTE), "chown");
    let root = scratch.path().to_str().unwrap();
    // The user's own burrow.toml: install adds its lines to it and uninstall takes only those.
    let toml = Path::new(&m.home).join(".config/burrow/burrow.toml");
    let before = std::fs::read_to_string(&toml).ok();
    struct Restore(PathBuf, Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            match &self.1 {
                Some(t) => std::fs::write(&self.0, t).unwrap_or_default(),
                None => std::fs::remove_file(&self.0).unwrap_or_default(),
            }
        }
    }
    let _restore = Restore(toml.clone(), before);
    let mine = "# my own settings\nenv = [\"BURROW_SETUPTEST_*\"]\n";
    std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
    std::fs::write(&toml, mine).unwrap();
    for p in [toml.parent().unwrap(), &toml] {
        std::os::unix::fs::chown(p, Some(m.uid), Some(m.gid)).unwrap();
    }

    let out = burrow(&m, &bin, &["--data-root", root, "setup", "install"]);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // Remembered: later commands and a later install use it without the flag.
    let out = burrow(&m, &bin, &["setup", "install"]);
    assert!(
        stdout(&out).contains("unchanged"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = burrow(&m, &bin, &["pull", "-q", &m.image_busybox]);
    assert!(out.status.success(), "pull: {}", stderr(&out));
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &m.image_busybox,
            "echo",
            "ok",
        ],
    );
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains(&format!("data_root = \"{root}/nerdctl\"")) && text.ends_with(mine),
        "{text}"
    );
    let snapshots = scratch
        .path()
        .join("containerd/io.containerd.snapshotter.v1.overlayfs");
    assert!(snapshots.exists(), "no snapshots under the data root");
    assert!(scratch.path().join("nerdctl").exists());

    let out = burrow(&m, &bin, &["setup", "uninstall", "--purge"]);
    assert!(
        out.status.success(),
        "uninstall --purge: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        !scratch.path().join("containerd").exists(),
        "--purge kept the images"
    );
    assert!(!scratch.path().join("nerdctl").exists());
    assert_eq!(
        std::fs::read_to_string(&toml).unwrap(),
        mine,
        "uninstall did not leave the user's own lines as they were"
    );
}

#[test]
fn a_stale_child_pid_never_gets_the_users_other_processes_killed() {
    let Some(m) = TestMachine::get() else { return };
    let (bin, _) = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    uninstall_on_drop(&m, &bin, &mut c);
    // A launcher killed with SIGKILL leaves its child_pid behind; once pids wrap, that number
    // is some other process, here one of the user's outside any launcher.
    let mut sleeper = m.user_command("sleep");
    sleeper.arg("300");
    let pid = c.spawn(&mut sleeper).id();
    let state = runtime_dir(&m).join("containerd-rootless");
    let mut sh = m.user_command("sh");
    sh.arg("-c")
        .arg("mkdir -p \"$1\" && chmod 700 \"$1\" && echo \"$2\" > \"$1/child_pid\"")
        .arg("sh")
        .arg(&state)
        .arg(pid.to_string());
    expect_success(
        &run_with_timeout(&mut sh, MINUTE),
        "write a stale child_pid",
    );

    let st = status_json(&m, &bin);
    assert!(st["child_pid"].is_null(), "a stale pid is shown: {st:#}");
    let out = burrow(&m, &bin, &["setup", "uninstall"]);
    assert!(out.status.success(), "uninstall: {}", stderr(&out));
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"));
    assert!(alive, "uninstall killed the user's unrelated process {pid}");
    let _ = std::fs::remove_file(state.join("child_pid"));
}
