//! Rootless smoke case for `commit --change` / `--pause`, `logs --details` and `system df`, as
//! the unprivileged test user on its own containerd.

mod containers_support;

use containers_support::*;

#[test]
fn rootless_commit_change_details_and_df() {
    let Some(rl) = rootless("misc") else { return };
    let bb = image("busybox");
    ok(&rl.burrow(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "-e",
        "A=1",
        "--log-opt",
        "env=A",
        &bb,
        "sh",
        "-c",
        "echo up; sleep 300",
    ]));
    // Pausing needs a freezer cgroup: where there is none (rootless on cgroup v1), the
    // container is committed running, with a warning saying so.
    let out = ok(&rl.burrow(&["commit", "live", "smoke:0"]));
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let out = rl.burrow(&["commit", "live", "smoke:0"]);
    let warned = stderr(&out).contains("committed running");
    let v1 = !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(warned, v1, "{}", stderr(&out));
    ok(&rl.burrow(&[
        "commit",
        "--pause=false",
        "-c",
        "CMD echo smoke $HOME",
        "live",
        "smoke:1",
    ]));
    let out = ok(&rl.burrow(&["run", "--rm", "--network", "none", "smoke:1"]));
    assert_eq!(out.trim(), "smoke /root");
    assert_eq!(ok(&rl.burrow(&["logs", "--details", "live"])), "A=1 up\n");
    let df = ok(&rl.burrow(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]));
    assert!(df.contains("Containers 1 1\n"), "{df}");
    rl.burrow(&["rm", "-f", "live"]);
}
