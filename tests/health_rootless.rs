//! Healthchecks, rootless, for the test user through its own containerd under RootlessKit: a
//! --health-cmd goes healthy (the monitor's exec works in the user namespace), the
//! health_status event is published to and seen from the rootless containerd, and no monitor is
//! left once the container is removed.

mod containers_support;

use std::time::Duration;

use burrow_testsupport::wait_for;
use containers_support::*;

#[test]
fn rootless_health_cmd_goes_healthy_with_its_event() {
    let Some(rl) = rootless("health") else {
        return;
    };
    let bb = image("busybox");
    // A private copy of this build: the shared installed binary may be replaced meanwhile by
    // another worktree's tests.
    let exe = rl.dir.join("burrow");
    std::fs::copy(burrow_exe(), &exe).expect("copy burrow");
    let exe_s = exe.display().to_string();
    let burrow = |args: &[&str]| {
        let mut argv = vec![exe_s.as_str()];
        argv.extend_from_slice(args);
        rl.user(&argv)
    };
    // `events --since` shows nothing earlier (containerd keeps no history): stream while it
    // turns healthy, until a fixed time.
    let until = (std::time::SystemTime::now() + Duration::from_secs(25))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let events = std::thread::spawn({
        let burrow = exe.clone();
        let (rt, home) = (rl.runtime_dir.clone(), rl.home.clone());
        let machine = rl.machine.clone();
        move || {
            let mut cmd = machine.user_command(burrow.to_str().unwrap());
            cmd.args([
                "events",
                "--filter",
                "event=health_status",
                "--until",
                &until,
            ])
            .env("XDG_RUNTIME_DIR", rt)
            .env("HOME", &home)
            .current_dir(&home);
            burrow_testsupport::run_with_timeout(&mut cmd, Duration::from_secs(60))
        }
    });
    // Time to subscribe before the first probe.
    std::thread::sleep(Duration::from_secs(3));
    let out = burrow(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--network",
        "none",
        "--health-cmd",
        "echo fine",
        "--health-interval",
        "1s",
        &bb,
        "sleep",
        "300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let id = stdout(&out).trim().to_owned();
    let status = || {
        let out = burrow(&["inspect", "--format", "{{.State.Health.Status}}", "hc"]);
        stdout(&out).trim().to_owned()
    };
    assert!(
        wait_for(Duration::from_secs(15), || status() == "healthy"),
        "not healthy: {}",
        status()
    );
    let out = burrow(&[
        "ps",
        "--filter",
        "health=healthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    let text = stdout(&out);
    assert!(
        text.starts_with("hc Up ") && text.trim_end().ends_with("(healthy)"),
        "{text}"
    );
    let out = events.join().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains(&format!("container health_status: healthy {id}")),
        "{text}{}",
        stderr(&out)
    );
    let out = burrow(&["rm", "-f", "hc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let monitors = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("__health-monitor {id}")])
            .output()
            .unwrap();
        stdout(&out).lines().count()
    };
    assert!(
        wait_for(Duration::from_secs(10), || monitors() == 0),
        "a monitor is left"
    );
}
