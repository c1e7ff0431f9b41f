//! The Docker commands and run flags of the [cli] round, end to end as the unprivileged test
//! user: run flags (-h, -w, -e, --label, --add-host host-gateway, --cidfile), ps filters,
//! inspect --type with a template, update, diff, commit, export, import, events and system
//! prune, through a rootless containerd.

mod containers_support;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containers_support::*;

/// Runs `burrow args` as the test user and returns its stdout, failing on a non-zero exit.
fn ok(rl: &Rootless, args: &[&str]) -> String {
    let out = rl.burrow(args);
    assert_eq!(code(&out), 0, "burrow {args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn rootless_cli_round_end_to_end() {
    let Some(rl) = rootless("cli") else { return };
    let bb = image("busybox");
    let name = format!("rl-cli-{}", std::process::id());

    // events streams this container's events (ended below; --until bounds it if the test fails).
    let until = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(180);
    let until = until.as_secs().to_string();
    let filter = format!("container={name}");
    let mut events = rl
        .machine
        .user_command(&rl.burrow)
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .args([
            "events",
            "--filter",
            &filter,
            "--format",
            "{{.Action}}",
            "--until",
            &until,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("burrow events starts");
    // containerd keeps no history: give the subscription time (loaded CI machines).
    std::thread::sleep(Duration::from_secs(5));

    let cidfile = rl.home.join("cid");
    ok(
        &rl,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "-h",
            "smokehost",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "--label",
            "tier=web",
            "--add-host",
            "gw:host-gateway",
            "--cidfile",
            cidfile.to_str().unwrap(),
            &bb,
            "sleep",
            "300",
        ],
    );

    // ps filters and inspect --type with a template.
    let names = ok(
        &rl,
        &["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"],
    );
    assert_eq!(names.trim(), name);
    let regex = format!("name=^{name}$");
    let names = ok(
        &rl,
        &[
            "ps",
            "-a",
            "--filter",
            &regex,
            "--filter",
            &format!("ancestor={bb}"),
            "-q",
        ],
    );
    assert_eq!(names.lines().count(), 1, "{names}");
    let shown = ok(
        &rl,
        &[
            "inspect",
            "--type",
            "container",
            "-f",
            "{{.Config.Hostname}} {{.Config.WorkingDir}} {{index .Config.Labels \"tier\"}} {{.Id}}",
            &name,
        ],
    );
    let id = std::fs::read_to_string(&cidfile).expect("--cidfile written");
    assert_eq!(shown.trim(), format!("smokehost /tmp web {id}"));
    let out = rl.burrow(&["inspect", "--type", "image", &name]);
    assert_eq!(
        code(&out),
        1,
        "a container is not an image: {}",
        stdout(&out)
    );

    // The flags reached the container.
    let seen = ok(
        &rl,
        &[
            "exec",
            &name,
            "sh",
            "-c",
            "hostname; pwd; echo A=$A; grep -cw gw /etc/hosts",
        ],
    );
    assert_eq!(seen, "smokehost\n/tmp\nA=1\n1\n");

    // update changes the restart policy of a running container.
    ok(&rl, &["update", "--restart", "on-failure:2", &name]);
    let policy = ok(
        &rl,
        &[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
            &name,
        ],
    );
    assert_eq!(policy.trim(), "on-failure:2");

    // diff, commit and export/import carry a file the container wrote.
    ok(&rl, &["exec", &name, "sh", "-c", "echo made > /tmp/made"]);
    let changes = ok(&rl, &["diff", &name]);
    assert!(changes.lines().any(|l| l == "A /tmp/made"), "{changes}");
    ok(&rl, &["commit", "-m", "smoke", &name, "smoke/committed:1"]);
    let made = ok(
        &rl,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "smoke/committed:1",
            "cat",
            "/tmp/made",
        ],
    );
    assert_eq!(made, "made\n");
    let tar = rl.home.join("export.tar");
    ok(&rl, &["export", "-o", tar.to_str().unwrap(), &name]);
    ok(&rl, &["import", tar.to_str().unwrap(), "smoke/imported:1"]);
    let made = ok(
        &rl,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "smoke/imported:1",
            "cat",
            "/tmp/made",
        ],
    );
    assert_eq!(made, "made\n");

    ok(&rl, &["rm", "-f", &name]);
    // Lines are written as they come: time for the last to arrive, then end the stream.
    std::thread::sleep(Duration::from_secs(2));
    let _ = events.kill();
    let out = events.wait_with_output().expect("burrow events output");
    let actions = stdout(&out);
    let seen: Vec<&str> = actions
        .lines()
        .filter(|a| ["create", "start", "destroy"].contains(a))
        .collect();
    assert_eq!(seen, ["create", "start", "destroy"], "{actions}");

    // system prune removes the stopped containers and leaves the images in use alone.
    ok(&rl, &["rmi", "smoke/committed:1", "smoke/imported:1"]);
    let stopped = ok(&rl, &["create", "--network", "none", &bb, "true"]);
    let out = ok(&rl, &["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains(stopped.trim()), "{out}");
    // Without -a, tagged images stay.
    let left = ok(&rl, &["image", "inspect", "-f", "{{.Id}}", &bb]);
    assert!(left.starts_with("sha256:"), "{left}");
}
