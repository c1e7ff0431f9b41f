//! Healthchecks, rootful, against a private containerd started here as root: --health-cmd
//! going starting -> healthy and a failing one unhealthy after its retries (ps, ps --filter
//! health=, inspect's State.Health and Config.Healthcheck, the health_status events), a probe
//! timing out, the image's HEALTHCHECK used, merged with flags and disabled by
//! --no-healthcheck, Docker's flag rules, and no monitor left once the container is removed.

mod containers_support;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burrow_testsupport::wait_for;
use containers_support::*;
use serde_json::Value;

fn inspect(d: &Rootful, name: &str) -> Value {
    let out = d.burrow(&["inspect", name]);
    assert_eq!(code(&out), 0, "inspect {name}: {}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("inspect gives JSON");
    v[0].clone()
}

/// Waits (up to 30 s) for the container's health status to be `want`; its State.Health.
fn wait_health(d: &Rootful, name: &str, want: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_for(Duration::from_secs(30), || {
        last = inspect(d, name)["State"]["Health"].clone();
        last["Status"] == want
    });
    assert!(ok, "{name} did not become {want}: {last}");
    last
}

fn ps_names(d: &Rootful, filter: &str) -> Vec<String> {
    let out = d.burrow(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(code(&out), 0, "ps --filter {filter}: {}", stderr(&out));
    let mut v: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn ps_status(d: &Rootful, name: &str) -> String {
    let out = d.burrow(&[
        "ps",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ]);
    stdout(&out).trim().to_owned()
}

fn run_d(d: &Rootful, args: &[&str]) {
    let mut argv = vec!["run", "-d", "--network", "none"];
    argv.extend_from_slice(args);
    let out = d.burrow(&argv);
    assert_eq!(code(&out), 0, "run {args:?}: {}", stderr(&out));
}

/// The health monitors of container `id` still running.
fn monitors_of(id: &str) -> usize {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("__health-monitor {id}")])
        .output()
        .expect("pgrep");
    stdout(&out).lines().count()
}

#[test]
fn health_cmd_goes_healthy_or_unhealthy_and_shows_everywhere() {
    let Some(d) = rootful("health-cmd") else {
        return;
    };
    let bb = image("busybox");
    let until = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(120);
    let events = d
        .command(&[
            "events",
            "--filter",
            "event=health_status",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
            "--until",
            &until.as_secs().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("burrow events starts");
    std::thread::sleep(Duration::from_secs(3));
    let every_second = ["--health-interval", "1s"];
    let good = [
        &every_second[..],
        &["--name", "good", "--health-cmd", "echo ok"],
    ]
    .concat();
    run_d(&d, &[&good[..], &[bb.as_str(), "sleep", "300"]].concat());
    let bad = [
        &every_second[..],
        &[
            "--name",
            "bad",
            "--health-retries",
            "2",
            "--health-cmd",
            "echo nope; exit 1",
        ],
    ]
    .concat();
    run_d(&d, &[&bad[..], &[bb.as_str(), "sleep", "300"]].concat());
    let slow = [
        "--name",
        "slow",
        "--health-cmd",
        "true",
        "--health-interval",
        "1m",
    ];
    run_d(&d, &[&slow[..], &[bb.as_str(), "sleep", "300"]].concat());
    run_d(&d, &["--name", "plain", &bb, "sleep", "300"]);
    let timeout = [
        &every_second[..],
        &[
            "--name",
            "stuck",
            "--health-timeout",
            "500ms",
            "--health-retries",
            "1",
        ],
        &["--health-cmd", "sleep 10"],
    ]
    .concat();
    run_d(&d, &[&timeout[..], &[bb.as_str(), "sleep", "300"]].concat());

    // Failures within the start period do not count; probes come every start interval.
    let grace = [
        "--name",
        "grace",
        "--health-cmd",
        "exit 1",
        "--health-start-period",
        "1m",
    ];
    let grace = [
        &grace[..],
        &["--health-start-interval", "1s", bb.as_str(), "sleep", "300"],
    ];
    run_d(&d, &grace.concat());

    assert_eq!(
        ps_status(&d, "slow").split_once(" (").map(|p| p.1),
        Some("health: starting)")
    );
    let h = wait_health(&d, "good", "healthy");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let log = h["Log"].as_array().expect("a log");
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    assert_eq!(log[0]["ExitCode"], 0, "{h}");
    assert_eq!(log[0]["Output"], "ok\n", "{h}");
    assert!(
        log[0]["Start"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{h}"
    );
    assert!(
        ps_status(&d, "good").ends_with(" (healthy)"),
        "{}",
        ps_status(&d, "good")
    );
    let cfg = inspect(&d, "good")["Config"]["Healthcheck"].clone();
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "echo ok"]),
        "{cfg}"
    );
    assert_eq!(cfg["Interval"], 1_000_000_000i64, "{cfg}");

    let h = wait_health(&d, "bad", "unhealthy");
    assert!(h["FailingStreak"].as_u64().is_some_and(|n| n >= 2), "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert_eq!(h["Log"][0]["Output"], "nope\n", "{h}");
    assert!(ps_status(&d, "bad").ends_with(" (unhealthy)"));

    let h = wait_health(&d, "stuck", "unhealthy");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"], "Health check exceeded timeout (500ms)",
        "{h}"
    );

    let mut g = Value::Null;
    let graced = wait_for(Duration::from_secs(20), || {
        g = inspect(&d, "grace")["State"]["Health"].clone();
        g["Log"].as_array().is_some_and(|l| l.len() >= 2)
    });
    assert!(graced, "{g}");
    let streak = (g["Status"].as_str(), g["FailingStreak"].as_u64());
    assert_eq!(streak, (Some("starting"), Some(0)), "{g}");

    assert_eq!(ps_names(&d, "health=healthy"), ["good"]);
    assert_eq!(ps_names(&d, "health=unhealthy"), ["bad", "stuck"]);
    assert_eq!(ps_names(&d, "health=starting"), ["grace", "slow"]);
    assert_eq!(ps_names(&d, "health=none"), ["plain"]);
    assert!(inspect(&d, "plain")["State"].get("Health").is_none());
    assert!(inspect(&d, "plain")["Config"]["Healthcheck"].is_null());

    let ids: Vec<String> = ["good", "bad", "slow", "stuck", "grace"]
        .iter()
        .map(|n| inspect(&d, n)["Id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| monitors_of(id) == 1),
        "one monitor each"
    );
    let all = ["good", "bad", "slow", "stuck", "grace", "plain"];
    let out = d.burrow(&[&["rm", "-f"][..], &all[..]].concat());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        wait_for(Duration::from_secs(10), || ids
            .iter()
            .all(|id| monitors_of(id) == 0)),
        "health monitors left after rm"
    );

    // Every change was published before the assertions above saw it: stop streaming.
    std::thread::sleep(Duration::from_secs(1));
    let mut events = events;
    let _ = events.kill();
    let out = events.wait_with_output().expect("events ends");
    let text = stdout(&out);
    assert!(
        text.lines().any(|l| l == "health_status: healthy good"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "health_status: unhealthy bad"),
        "{text}"
    );
}

#[test]
fn the_images_healthcheck_is_used_merged_and_disabled() {
    let Some(d) = rootful("health-image") else {
        return;
    };
    let img = image("health");
    run_d(&d, &["--name", "img", &img]);
    let h = wait_health(&d, "img", "healthy");
    assert_eq!(h["Log"][0]["Output"], "image-check\n", "{h}");
    let cfg = inspect(&d, "img")["Config"]["Healthcheck"].clone();
    assert_eq!(cfg["Retries"], 2, "{cfg}");
    // The probe now fails: unhealthy after the image's 2 retries.
    let out = d.burrow(&["exec", "img", "touch", "/tmp/sick"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let h = wait_health(&d, "img", "unhealthy");
    assert_eq!(h["FailingStreak"], 2, "{h}");
    // A restart starts the health over under a new monitor (the rootfs keeps /tmp/sick: gone
    // first).
    let out = d.burrow(&["exec", "img", "rm", "/tmp/sick"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["restart", "-t", "0", "img"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let h = wait_health(&d, "img", "healthy");
    assert_eq!(h["FailingStreak"], 0, "{h}");

    // Flags override field by field; the image's test stays.
    run_d(&d, &["--name", "merged", "--health-retries", "5", &img]);
    let cfg = inspect(&d, "merged")["Config"]["Healthcheck"].clone();
    assert_eq!(cfg["Retries"], 5, "{cfg}");
    assert_eq!(cfg["Interval"], 1_000_000_000i64, "{cfg}");
    assert_eq!(cfg["Test"][0], "CMD-SHELL", "{cfg}");

    run_d(&d, &["--name", "off", "--no-healthcheck", &img]);
    let off = inspect(&d, "off");
    assert_eq!(
        off["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    assert!(off["State"].get("Health").is_none(), "{}", off["State"]);
    assert_eq!(ps_names(&d, "health=none"), ["off"]);
    assert!(
        !ps_status(&d, "off").contains('('),
        "{}",
        ps_status(&d, "off")
    );

    // Docker's flag rules, each a clear error and nothing created.
    for (args, says) in [
        (
            &["--no-healthcheck", "--health-cmd", "true"][..],
            "--no-healthcheck conflicts with --health-* options",
        ),
        (&["--health-interval", "1x"], "--health-interval"),
        (
            &["--health-timeout", "-1s"],
            "--health-timeout cannot be negative",
        ),
        (
            &["--health-interval", "1ns"],
            "Interval in Healthcheck cannot be less than 1ms",
        ),
    ] {
        let mut argv = vec!["run", "-d", "--name", "refused"];
        argv.extend_from_slice(args);
        argv.push(&img);
        let out = d.burrow(&argv);
        assert_eq!(code(&out), 125, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    assert!(ps_names(&d, "name=refused").is_empty());

    // An attached run is probed too (its health stays after it exits).
    let bb = image("busybox");
    let fg = [
        "run",
        "--network",
        "none",
        "--name",
        "fg",
        "--health-cmd",
        "true",
    ];
    let fg = [
        &fg[..],
        &["--health-interval", "1s", bb.as_str(), "sleep", "3"],
    ]
    .concat();
    let out = d.burrow(&fg);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let fg = inspect(&d, "fg")["State"]["Health"].clone();
    assert_eq!(fg["Status"], "healthy", "{fg}");

    // A restart policy's restart gets a monitor of its own: probes after the new start.
    let again = [
        "--name",
        "again",
        "--restart",
        "on-failure:1",
        "--health-cmd",
        "true",
    ];
    let script = [bb.as_str(), "sh", "-c", "sleep 3; exit 1"];
    run_d(
        &d,
        &[&again[..], &["--health-interval", "1s"], &script[..]].concat(),
    );
    let mut last = Value::Null;
    let probed_after_restart = wait_for(Duration::from_secs(30), || {
        last = inspect(&d, "again");
        let started = last["State"]["StartedAt"].as_str().unwrap_or_default();
        let log = last["State"]["Health"]["Log"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        last["RestartCount"] == 1
            && log
                .last()
                .and_then(|r| r["Start"].as_str())
                .is_some_and(|t| t > started)
    });
    assert!(probed_after_restart, "{last}");
}
