//! `--userns` on the real stack: rootless keep-id (the user's own uid, gid and name inside,
//! image files still root's inside, bind-mounted host files the user's both ways, the remapped
//! snapshot made once and reused, gone with the image), `--userns=host` as before, and the
//! refusals (bad values; keep-id rootful) with exit 125.

mod containers_support;

use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout};
use containers_support::*;

/// The remapped snapshots the rootless containerd holds (committed ones, not in-progress).
fn remapped_snapshots(rl: &Rootless) -> Vec<String> {
    rl.ctr(&["snapshots", "ls"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|key| key.contains("-burrow-userns-") && !key.contains("-prepare-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn rootless_keep_id_keeps_the_users_ids_and_the_images_owners() {
    let Some(rl) = rootless("userns") else { return };
    let bb = image("busybox");
    let (uid, gid, user) = (rl.machine.uid, rl.machine.gid, rl.machine.user.clone());

    // A host dir of the user, bound in: the user's files are the user's inside and out.
    let shared = rl.home.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("f"), "x").unwrap();
    let mut chown = Command::new("chown");
    chown.arg("-R").arg(format!("{uid}:{gid}")).arg(&shared);
    expect_success(
        &run_with_timeout(&mut chown, Duration::from_secs(10)),
        "chown",
    );
    let vol = format!("{}:/shared", shared.display());
    let script = "id; stat -c %u:%g /bin/busybox /; stat -c %u /shared/f; echo home=$HOME; \
                  echo y > /shared/g";
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id",
        "-v",
        &vol,
        &bb,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("remapped"), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("uid={uid}({user}) gid={gid}(")),
        "the user's ids and name inside: {text}"
    );
    assert!(
        text.contains("\n0:0\n0:0\n"),
        "/bin/busybox and / are still root's inside: {text}"
    );
    assert!(text.contains(&format!("\n{uid}\n")), "host file: {text}");
    assert!(
        text.contains(&format!("home={}\n", rl.home.display())),
        "HOME is the user's: {text}"
    );
    let meta = std::fs::metadata(shared.join("g")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
    // A new named volume is the user's inside too: writable by the container's user.
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id",
        "-v",
        "kvol:/kv",
        &bb,
        "sh",
        "-c",
        "touch /kv/x && stat -c %u /kv/x",
    ]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, format!("{uid}\n")),
        "{}",
        stderr(&out)
    );
    let made = remapped_snapshots(&rl);
    assert_eq!(made.len(), 1, "one remapped snapshot: {made:?}");

    // A second container of the image (on the default network, created then started, and an
    // explicit -u winning) starts from the same remapped snapshot.
    let out = rl.burrow(&["create", "--name", "k", "--userns=keep-id", &bb, "id", "-u"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("remapped"), "{}", stderr(&out));
    let out = rl.burrow(&["start", "-a", "k"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{uid}\n"));
    let out = rl.burrow(&["inspect", "-f", "{{.HostConfig.UsernsMode}}", "k"]);
    assert_eq!(stdout(&out), "keep-id\n", "{}", stderr(&out));
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-u",
        "0",
        &bb,
        "id",
        "-u",
    ]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "0\n".into()),
        "{}",
        stderr(&out)
    );
    assert_eq!(remapped_snapshots(&rl), made, "reused, not made again");

    // keep-id:own: the user's ids own what the launcher's root owns (the image's files are the
    // user's, as enroot shows them), no remapped snapshot is made, and root is one spare id.
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=keep-id:own",
        "-v",
        &vol,
        &bb,
        "sh",
        "-c",
        "id -un; id -u; stat -c %u /bin/busybox; tr -s ' ' < /proc/self/uid_map; echo z > /shared/own",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{user}\n{uid}\n{uid}\n 0 1 1\n {uid} 0 1\n")
    );
    assert!(!stderr(&out).contains("remapped"), "{}", stderr(&out));
    let meta = std::fs::metadata(shared.join("own")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), uid);
    assert_eq!(remapped_snapshots(&rl), made, "no snapshot for own");

    // --userns=host is the default made explicit: root inside is the user.
    let out = rl.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=host",
        &bb,
        "id",
        "-u",
    ]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "0\n".into()),
        "{}",
        stderr(&out)
    );

    // Bad values are refused before anything is made.
    for bad in [
        "--userns=auto",
        "--userns=keep-id:size=3",
        "--userns=keep-id:mine",
        "--userns=ns:/proc/1/ns/user",
    ] {
        let out = rl.burrow(&["run", "--rm", "--name", "bad", bad, &bb, "true"]);
        assert_eq!(code(&out), 125, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--userns"), "{bad}: {}", stderr(&out));
    }

    // commit and export would carry the shifted owners: refused, no file left.
    let out = rl.burrow(&["commit", "k", "kimg"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("keep-id"), "{}", stderr(&out));
    let tar = rl.home.join("k.tar");
    let out = rl.burrow(&["export", "-o", tar.to_str().unwrap(), "k"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(!tar.exists());

    // The image goes, and its remapped snapshot with it.
    let out = rl.burrow(&["rm", "k"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = rl.burrow(&["rmi", &bb]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        remapped_snapshots(&rl).is_empty(),
        "{:?}",
        rl.ctr(&["snapshots", "ls"])
    );
}

#[test]
fn rootful_keep_id_is_refused_and_host_runs() {
    let Some(rf) = rootful("userns") else { return };
    let bb = image("busybox");
    let out = rf.burrow(&["run", "--rm", "--userns=keep-id", &bb, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("rootless"), "{}", stderr(&out));
    assert!(rf.ctr(&["c", "ls", "-q"]).trim().is_empty());
    let out = rf.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns=host",
        &bb,
        "id",
        "-u",
    ]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "0\n".into()),
        "{}",
        stderr(&out)
    );
}
