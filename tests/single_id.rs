//! A user without subordinate ids (as LDAP/SSSD accounts on clusters often are), on the real
//! stack: `setup install` gives them a single-id launcher, and real images still pull and run:
//! files of any owner are given to the user at unpack (said once), /dev/pts needs no tty group,
//! and the image's USER or `exec -u` run as the one id there is. `setup check` proposes a
//! subordinate range nobody holds.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::{Cleanup, TestMachine};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn binaries(m: &TestMachine) -> PathBuf {
    let burrow = Path::new(env!("CARGO_BIN_EXE_burrow"));
    m.install_bin(burrow.with_file_name("burrow-rootlesskit"));
    m.install_bin(burrow)
}

fn burrow(m: &TestMachine, bin: &Path, args: &[&str]) -> Output {
    let mut cmd = m.user_command(bin);
    cmd.args(args);
    // The launcher is found beside burrow.
    cmd.env(
        "PATH",
        format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            bin.parent().unwrap().display()
        ),
    );
    burrow_testsupport::run_with_timeout(&mut cmd, Duration::from_secs(180))
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[test]
fn a_user_without_subordinate_ids_runs_real_images() {
    let Some(base) = TestMachine::get() else {
        return;
    };
    let Some(m) = base.nosubid_user() else { return };
    let bin = binaries(&m);
    let _lock = m.exclusive("nosubid-containerd");
    let mut cleanup = Cleanup::new();
    let mut uninstall = m.user_command(&bin);
    uninstall.args(["setup", "uninstall", "--purge"]);
    cleanup.run_on_drop(uninstall);

    // check: a warning, and a range to add that no other user holds.
    let out = burrow(&m, &bin, &["setup", "check"]);
    let text = stdout(&out);
    assert!(text.contains("no subordinate"), "{text}");
    let fix = text
        .lines()
        .find(|l| l.contains("usermod --add-subuids"))
        .unwrap_or_else(|| panic!("no usermod fix in: {text}"));
    let range = fix
        .split_whitespace()
        .skip_while(|w| *w != "--add-subuids")
        .nth(1)
        .unwrap();
    let (a, b) = range.split_once('-').unwrap();
    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(b - a + 1, 65536, "{fix}");
    for file in ["/etc/subuid", "/etc/subgid"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines() {
            let f: Vec<&str> = line.split(':').collect();
            if let [_, start, count] = f.as_slice() {
                let (s, c): (u64, u64) = (start.parse().unwrap(), count.parse().unwrap());
                assert!(s + c <= a || b < s, "{fix} overlaps {line} in {file}");
            }
        }
    }

    ok(
        &burrow(&m, &bin, &["setup", "install", "--no-systemd"]),
        "setup install",
    );

    // busybox, with a terminal (devpts without gid=5) and without.
    let out = burrow(&m, &bin, &["run", "--rm", &m.image_busybox, "id", "-u"]);
    assert_eq!(ok(&out, "run busybox"), "0\n");
    let said = stderr(&out).matches("no subordinate ids").count();
    assert_eq!(said, 1, "the squash is said once: {}", stderr(&out));
    let out = burrow(
        &m,
        &bin,
        &["run", "--rm", "-t", &m.image_busybox, "ls", "/dev/pts"],
    );
    ok(&out, "run -t busybox");

    // An image with files of several owners (1000, 65534): they are the user's now.
    ok(
        &burrow(&m, &bin, &["pull", &m.image_multilayer]),
        "pull multilayer",
    );
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            &m.image_multilayer,
            "stat",
            "-c",
            "%u:%g %n",
            "/data/owned/user1000",
            "/data/owned/nobody",
            "/home/app",
        ],
    );
    let owners = ok(&out, "stat in multilayer");
    assert_eq!(
        owners,
        "0:0 /data/owned/user1000\n0:0 /data/owned/nobody\n0:0 /home/app\n"
    );
    let out = burrow(&m, &bin, &["image", "inspect", &m.image_multilayer]);
    ok(&out, "image inspect");
    // Layers compressed with zstd squash alike (the last layer is new here: it is unpacked).
    let zstd = format!("{}/burrow-test/multilayer-zstd:latest", m.registry);
    ok(&burrow(&m, &bin, &["pull", &zstd]), "pull multilayer-zstd");
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            &zstd,
            "stat",
            "-c",
            "%u:%g",
            "/data/owned/user1000",
        ],
    );
    assert_eq!(ok(&out, "stat in multilayer-zstd"), "0:0\n");

    // The image's user (or -u) is the one id there is, and that is said.
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            "-u",
            "app",
            &m.image_multilayer,
            "sh",
            "-c",
            "id -u; echo $HOME",
        ],
    );
    assert_eq!(ok(&out, "run -u app"), "0\n/home/app\n");
    assert!(stderr(&out).contains("runs as uid 0"), "{}", stderr(&out));

    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "-d",
            "--name",
            "nosub",
            &m.image_multilayer,
            "sleep",
            "60",
        ],
    );
    ok(&out, "run -d");
    let out = burrow(&m, &bin, &["exec", "-u", "1000", "nosub", "id", "-u"]);
    assert_eq!(ok(&out, "exec -u 1000"), "0\n");
    let out = burrow(&m, &bin, &["exec", "-u", "app", "nosub", "id", "-u"]);
    assert_eq!(ok(&out, "exec -u app"), "0\n");
    let out = burrow(&m, &bin, &["exec", "-u", "nosuchuser", "nosub", "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuchuser"), "{}", stderr(&out));
    ok(&burrow(&m, &bin, &["rm", "-f", "nosub"]), "rm");

    // keep-id:own needs one subordinate id for runc's root: refused, saying so.
    let out = burrow(
        &m,
        &bin,
        &[
            "run",
            "--rm",
            "--userns=keep-id:own",
            &m.image_busybox,
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs one subordinate id"),
        "{}",
        stderr(&out)
    );
}
