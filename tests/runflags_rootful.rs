//! `run`/`create` flags against a private rootful containerd: --volumes-from, --platform (a
//! local index and a pull from a test registry), -a/--attach, bind propagation (a mount made on
//! the host after the start seen through rshared, not through rprivate) and volume nocopy.

mod containers_support;
mod images_support;

use std::process::Command;

use containers_support::*;

/// Runs a host command, panicking on failure.
fn sh(script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
}

/// No container is left (a failed run leaves nothing behind).
fn assert_no_containers(d: &Rootful) {
    let out = d.burrow(&["ps", "-aq"]);
    assert_eq!(stdout(&out).trim(), "", "containers left behind");
}

fn inspect(d: &Rootful, name: &str) -> serde_json::Value {
    let out = d.burrow(&["inspect", name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    v[0].clone()
}

#[test]
fn bind_propagation_rshared_sees_later_host_mounts_and_rprivate_does_not() {
    let Some(d) = rootful("propagation") else {
        return;
    };
    let bb = image("busybox");
    let shared = d.dir.join("shared");
    let private = d.dir.join("private");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let (s, p) = (shared.display(), private.display());
    sh(&format!(
        "mount --bind {s} {s} && mount --make-shared {s} && mount --bind {p} {p} && mount --make-private {p}"
    ));
    let m_shared = format!("{s}:/m:ro,rshared");
    let m_private = format!("{s}:/m");
    for (name, vol) in [("rsh", m_shared.as_str()), ("rpr", m_private.as_str())] {
        let out = d.burrow(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "-v",
            vol,
            &bb,
            "sleep",
            "60",
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let sub = shared.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let sub_s = sub.display();
    sh(&format!(
        "mount -t tmpfs tmpfs {sub_s} && echo later > {sub_s}/f"
    ));
    let out = d.burrow(&["exec", "rsh", "cat", "/m/sub/f"]);
    assert_eq!(stdout(&out), "later\n", "rshared: {}", stderr(&out));
    let out = d.burrow(&["exec", "rpr", "ls", "/m/sub"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "rprivate must not see the later mount");
    let mounts = &inspect(&d, "rsh")["Mounts"][0];
    assert_eq!(mounts["Propagation"], "rshared", "{mounts}");
    assert_eq!(mounts["Mode"], "ro,rshared", "{mounts}");
    assert_eq!(mounts["RW"], false, "{mounts}");
    let mounts = &inspect(&d, "rpr")["Mounts"][0];
    assert_eq!(mounts["Propagation"], "rprivate", "{mounts}");
    assert_eq!(
        (mounts["Type"].as_str(), mounts["RW"].as_bool()),
        (Some("bind"), Some(true))
    );
    d.burrow(&["rm", "-f", "rsh", "rpr"]);

    // A shared or slave propagation needs a shared (or slave) source, as Docker checks.
    for (flag, vol, says) in [
        ("-v", format!("{p}:/m:rshared"), "not a shared mount"),
        (
            "--mount",
            format!("type=bind,src={p},dst=/m,bind-propagation=rslave"),
            "not a shared or slave mount",
        ),
    ] {
        let out = d.burrow(&["run", "--rm", "--network", "none", flag, &vol, &bb, "true"]);
        assert_eq!(code(&out), 125, "{vol}");
        assert!(
            stderr(&out).contains(says) && stderr(&out).contains(&p.to_string()),
            "{}",
            stderr(&out)
        );
    }
    // The --mount form sets it too.
    let mount = format!("type=bind,src={s},dst=/m,bind-propagation=rslave");
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &mount,
        &bb,
        "cat",
        "/m/sub/f",
    ]);
    assert_eq!(stdout(&out), "later\n", "{}", stderr(&out));
    assert_no_containers(&d);
    sh(&format!("umount {sub_s}; umount {s}; umount {p}"));
}

#[test]
fn nocopy_leaves_a_new_volume_empty() {
    let Some(d) = rootful("nocopy") else { return };
    let ml = image("multilayer");
    let ls = |mount_flag: &str, spec: &str| {
        let out = d.burrow(&[
            "run",
            "--rm",
            "--network",
            "none",
            mount_flag,
            spec,
            &ml,
            "ls",
            "-A",
            "/data",
        ]);
        assert_eq!(code(&out), 0, "{spec}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(ls("-v", "copied:/data").contains("target.txt"));
    assert_eq!(ls("-v", "kept:/data:nocopy"), "");
    assert_eq!(
        ls("--mount", "type=volume,src=kept2,dst=/data,volume-nocopy"),
        ""
    );
    assert!(ls(
        "--mount",
        "type=volume,src=copied2,dst=/data,volume-nocopy=false"
    )
    .contains("target.txt"));
    for (flag, spec, says) in [
        (
            "--mount",
            "type=volume,src=x,dst=/data,volume-opt=type=nfs",
            "volume options type=nfs",
        ),
        (
            "--mount",
            "type=volume,src=x,dst=/data,volume-driver=nfs",
            "only the local volume driver",
        ),
        ("-v", "/tmp:/data:nocopy", "volumes only"),
        ("-v", "x:/data:rshared", "bind mounts only"),
    ] {
        let out = d.burrow(&["run", "--rm", flag, spec, &ml, "true"]);
        assert_eq!(code(&out), 125, "{spec}");
        assert!(stderr(&out).contains(says), "{spec}: {}", stderr(&out));
    }
    let vols = stdout(&d.burrow(&["volume", "ls", "-q"]));
    assert!(!vols.lines().any(|l| l == "x"), "{vols}");
    assert_no_containers(&d);
}

#[test]
fn volumes_from_takes_the_other_containers_volumes_and_binds() {
    let Some(d) = rootful("volfrom") else { return };
    let bb = image("busybox");
    let host = d.dir.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("h.txt"), "from host\n").unwrap();
    let bind = format!("{}:/h:ro", host.display());
    let out = d.burrow(&[
        "create",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "shared:/data",
        "-v",
        &bind,
        "-v",
        "/anon",
        "--tmpfs",
        "/t",
        &bb,
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = "echo hi > /data/f && cat /h/h.txt && ls -d /anon && \
                  (touch /h/x 2>/dev/null && echo h-writable || echo h-ro) && \
                  (grep -c ' /t ' /proc/mounts || true)";
    let out = d.burrow(&[
        "run",
        "--name",
        "user",
        "--network",
        "none",
        "--volumes-from",
        "src",
        &bb,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        stdout(&out),
        "from host\n/anon\nh-ro\n0\n",
        "{}",
        stderr(&out)
    );
    let v = inspect(&d, "user");
    assert_eq!(v["HostConfig"]["VolumesFrom"], serde_json::json!(["src"]));
    let mounts = v["Mounts"].as_array().unwrap();
    let data = mounts.iter().find(|m| m["Destination"] == "/data").unwrap();
    assert_eq!(
        (data["Type"].as_str(), data["Name"].as_str()),
        (Some("volume"), Some("shared"))
    );
    assert_eq!(mounts.len(), 3, "{mounts:?}");
    // :ro makes every mount read-only; the data written above is there.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        &bb,
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null && echo writable || echo ro",
    ]);
    assert_eq!(stdout(&out), "hi\nro\n", "{}", stderr(&out));
    // Removing the second container with -v leaves the first one's volumes.
    let before = stdout(&d.burrow(&["volume", "ls", "-q"]));
    assert_eq!(code(&d.burrow(&["rm", "-v", "user"])), 0);
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), before);
    assert!(before.lines().any(|l| l == "shared"), "{before}");
    // The first one's anonymous volume stays while another container mounts it, as Docker.
    let out = d.burrow(&["create", "--name", "holder", "--volumes-from", "src", &bb]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&d.burrow(&["rm", "-v", "src"])), 0);
    assert_eq!(stdout(&d.burrow(&["volume", "ls", "-q"])), before);
    assert_eq!(code(&d.burrow(&["rm", "-v", "holder"])), 0);
    // An unknown container is a clear error, and nothing is left.
    let out = d.burrow(&["run", "--rm", "--volumes-from", "nosuch", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("--volumes-from nosuch"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["run", "--rm", "--volumes-from", "src:rx", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("CONTAINER[:ro|rw]"),
        "{}",
        stderr(&out)
    );
    assert_no_containers(&d);
}

#[test]
fn attach_picks_the_streams_on_the_terminal() {
    let Some(d) = rootful("attach") else { return };
    let bb = image("busybox");
    let script = "echo out; echo err >&2";
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&bb, "sh", "-c", script]);
        d.burrow(&args)
    };
    let out = run(&[]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "err\n")
    );
    let out = run(&["-a", "stdout"]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "")
    );
    let out = run(&["-a", "STDERR"]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("", "err\n")
    );
    let out = run(&["-a", "stdout", "-a", "stderr"]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "err\n")
    );
    // -i attaches stdin whatever -a says, as Docker.
    let mut cmd = d.command(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-i",
        "-a",
        "stdout",
        &bb,
        "cat",
    ]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(b"typed\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "typed\n", "{}", stderr(&out));
    // Only stdin (without -i): Docker prints the id and waits for the exit status.
    let out = d.burrow(&[
        "run",
        "--name",
        "ain",
        "--network",
        "none",
        "-a",
        "stdin",
        &bb,
        "sh",
        "-c",
        "echo hidden; exit 3",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let logs = d.burrow(&["logs", "ain"]);
    assert_eq!(stdout(&logs), "hidden\n", "the log still has the output");
    d.burrow(&["rm", "ain"]);
    let out = d.burrow(&["run", "-d", "-a", "stdout", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("conflicting options"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["run", "-a", "tty", &bb, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("STDIN, STDOUT and STDERR"),
        "{}",
        stderr(&out)
    );
    assert_no_containers(&d);
}

#[test]
fn platform_picks_the_image_and_a_foreign_binary_fails_clearly() {
    let Some(d) = rootful("platform") else { return };
    let ma = image("multiarch");
    let (host, other) = match images_support::host_arch() {
        "amd64" => ("linux/amd64", "linux/arm64"),
        _ => ("linux/arm64", "linux/amd64"),
    };
    let out = d.burrow(&[
        "create",
        "--name",
        "here",
        "--network",
        "none",
        "--platform",
        host,
        &ma,
        "true",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = inspect(&d, "here");
    assert!(
        v["Image"].as_str().unwrap().starts_with("sha256:"),
        "{}",
        v["Image"]
    );
    assert_eq!(v["Platform"], "linux");
    d.burrow(&["rm", "here"]);
    // Only this host's content was imported: Docker's error, nothing left.
    let out = d.burrow(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--platform",
        other,
        &ma,
        "true",
    ]);
    assert_eq!(code(&out), 125);
    let want = format!("does not match the specified platform: wanted {other}, actual: {host}");
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
    let out = d.burrow(&["run", "--rm", "--platform", "linux/s390x", &ma, "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no manifest for linux/s390x"),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["run", "--rm", "--platform", "a/b/c/d", &ma, "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--platform"), "{}", stderr(&out));

    // From a registry: the other platform is pulled and recorded; its binaries (here a
    // bound ELF header for that architecture: the test image's are this host's) do not run.
    let Some(r) = images_support::TestRegistry::start(&d.dir.join("registry"), None) else {
        return;
    };
    r.push("multiarch", "burrow-test/multiarch");
    let remote = format!("{}/burrow-test/multiarch", r.host);
    let elf = d.dir.join("foreign-elf");
    let machine: u16 = if other.ends_with("arm64") { 183 } else { 62 };
    let mut header = vec![
        0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
    ];
    header.extend_from_slice(&machine.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header.resize(64, 0);
    std::fs::write(&elf, header).unwrap();
    std::fs::set_permissions(&elf, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bind = format!("{}:/foreign:ro", elf.display());
    let out = d.burrow(&[
        "create",
        "--name",
        "foreign",
        "--network",
        "none",
        "--platform",
        other,
        "-v",
        &bind,
        &remote,
        "/foreign",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let warned = format!("platform ({other}) does not match this host's ({host})");
    assert!(stderr(&out).contains(&warned), "{}", stderr(&out));
    let v = inspect(&d, "foreign");
    let platform = d.burrow(&[
        "ps",
        "-a",
        "-f",
        "name=foreign",
        "--format",
        "{{.Platform}}",
    ]);
    assert_eq!(String::from_utf8_lossy(&platform.stdout).trim(), other);
    // burrow's and nerdctl's bookkeeping labels are not the container's labels.
    assert!(
        v["Config"]["Labels"].as_object().is_none_or(|l| l
            .keys()
            .all(|k| !k.starts_with("nerdctl/") && !k.starts_with("burrow/"))),
        "{v}"
    );
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"), "{v}");
    // runc reports the failed exec from inside the container, as with Docker.
    let out = d.burrow(&["start", "-a", "foreign"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("/foreign: exec format error"),
        "{}",
        stderr(&out)
    );
    d.burrow(&["rm", "-f", "foreign"]);
}
