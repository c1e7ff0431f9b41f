//! `burrow events`, rootful, against a private containerd started here as root: a container's
//! create, start, die and destroy, in order, through --filter and a --format template, and
//! --until ending the stream.

mod containers_support;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containers_support::*;

#[test]
fn a_containers_life_is_streamed_in_order() {
    let Some(d) = rootful("events") else { return };
    let bb = image("busybox");
    let until = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(40);
    let until = until.as_secs().to_string();
    let events = d
        .command(&[
            "events",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
            "--filter",
            "type=container",
            "--until",
            &until,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("burrow events starts");
    // And Docker's text lines, for that one container only.
    let plain = d
        .command(&["events", "--filter", "container=evt-one", "--until", &until])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("burrow events starts");
    // Time to subscribe: containerd keeps no history (generous: machines are loaded in CI).
    std::thread::sleep(Duration::from_secs(5));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--name",
        "evt-one",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // What burrow does to a container itself: kill (with its signal), stop, restart.
    let trap = "trap 'exit 0' TERM; sleep 300 & wait";
    let two = [
        "run",
        "-d",
        "--name",
        "evt-two",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        trap,
    ];
    assert_eq!(code(&d.burrow(&two)), 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(code(&d.burrow(&["restart", "-t", "5", "evt-two"])), 0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(code(&d.burrow(&["kill", "evt-two"])), 0);
    assert_eq!(code(&d.burrow(&["wait", "evt-two"])), 0);
    assert_eq!(code(&d.burrow(&["rm", "evt-two"])), 0);
    let out = events
        .wait_with_output()
        .expect("burrow events ends at --until");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with(" evt-one"))
        .map(|l| l.trim_end_matches(" evt-one"))
        .collect();
    assert_eq!(
        lines,
        [
            "container create",
            "container start",
            "container die",
            "container destroy"
        ],
        "{text}"
    );
    let mut two: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with(" evt-two"))
        .map(|l| {
            l.trim_start_matches("container ")
                .trim_end_matches(" evt-two")
        })
        .collect();
    // containerd's exit event and burrow's stop are published from two processes: either
    // may come first.
    if let Some(i) = two.windows(2).position(|w| w == ["stop", "die"]) {
        two.swap(i, i + 1);
    }
    assert_eq!(
        two,
        ["create", "start", "kill", "die", "stop", "start", "restart", "kill", "die", "destroy"],
        "{text}"
    );
    let out = plain
        .wait_with_output()
        .expect("burrow events ends at --until");
    let text = stdout(&out);
    let die: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" container die "))
        .collect();
    assert_eq!(die.len(), 1, "{text}");
    assert!(
        die[0].contains("exitCode=3") && die[0].contains("name=evt-one") && die[0].ends_with(')'),
        "{text}"
    );
    // RFC 3339 with nanoseconds, in UTC.
    assert_eq!(die[0].split(' ').next().unwrap().len(), 30, "{text}");
    assert!(text.lines().all(|l| l.contains("name=evt-one")), "{text}");
}

#[test]
fn bad_filters_are_refused() {
    let Some(d) = rootful("events-bad") else {
        return;
    };
    let out = d.burrow(&["events", "--filter", "color=red"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid filter 'color=red'"),
        "{}",
        stderr(&out)
    );
    // An --until already past ends at once.
    let out = d.burrow(&["events", "--until", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}
