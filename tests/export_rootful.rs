//! `burrow export`, `diff`, `import` and `commit`, rootful, against a private containerd started
//! here as root with the provisioned test images.

mod containers_support;

use containers_support::*;

/// The entry names of a tar file.
fn tar_names(path: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(|l| l.to_string()).collect()
}

#[test]
fn export_holds_a_written_file_stopped_and_running() {
    let Some(d) = rootful("export") else { return };
    let bb = image("busybox");
    let out = d.burrow(&[
        "run",
        "--name",
        "ex",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo hi > /made.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tar = d.dir.join("ex.tar");
    let out = d.burrow(&["export", "-o", tar.to_str().unwrap(), "ex"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names = tar_names(&tar);
    assert!(names.iter().any(|n| n == "made.txt"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");

    // Running: the same, and nothing of /proc's contents.
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo up > /live.txt; sleep 300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(std::time::Duration::from_secs(1));
    let out = d.burrow(&["container", "export", "live"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tar = d.dir.join("live.tar");
    std::fs::write(&tar, &out.stdout).unwrap();
    let names = tar_names(&tar);
    assert!(names.iter().any(|n| n == "live.txt"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("proc/1")), "{names:?}");
    d.burrow(&["rm", "-f", "live", "ex"]);
}

#[test]
fn diff_shows_added_changed_and_deleted() {
    let Some(d) = rootful("diff") else { return };
    let bb = image("busybox");
    let out = d.burrow(&[
        "run",
        "--name",
        "df",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo x >> /etc/passwd; rm /etc/group; echo n > /new.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["diff", "df"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lines = stdout(&out);
    for want in ["C /etc", "C /etc/passwd", "D /etc/group", "A /new.txt"] {
        assert!(
            lines.lines().any(|l| l == want),
            "{want} missing in:\n{lines}"
        );
    }
    let out = d.burrow(&["container", "diff", "nosuch"]);
    assert_ne!(code(&out), 0);
    d.burrow(&["rm", "-f", "df"]);
}

#[test]
fn import_a_tarball_and_run_from_it() {
    let Some(d) = rootful("import") else { return };
    let bb = image("busybox");
    let out = d.burrow(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo imported > /hello.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let tar = d.dir.join("src.tar");
    let out = d.burrow(&["export", "-o", tar.to_str().unwrap(), "src"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["import", tar.to_str().unwrap(), "imported:v1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "imported:v1",
        "cat",
        "/hello.txt",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "imported\n");

    // From a URL, as `docker import https://...` (a local web server here).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&d.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/src.tar");
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let out = d.burrow(&["import", &url, "imported:url"]);
    let missing = d.burrow(&["import", &format!("http://127.0.0.1:{port}/none.tar")]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "the web server did not start");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "imported:url",
        "cat",
        "/hello.txt",
    ]);
    assert_eq!(stdout(&out), "imported\n", "{}", stderr(&out));
    assert_ne!(code(&missing), 0);
    assert!(
        stderr(&missing).contains("none.tar"),
        "{}",
        stderr(&missing)
    );

    // -c takes config instructions only (misc_rootful.rs tests what they do).
    let out = d.burrow(&["image", "import", "-c", "RUN x", tar.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("run is not a valid change command"),
        "{}",
        stderr(&out)
    );
    d.burrow(&["rm", "-f", "src"]);
}

#[test]
fn commit_a_changed_container_and_run_the_image() {
    let Some(d) = rootful("commit") else { return };
    let bb = image("busybox");
    let out = d.burrow(&[
        "run",
        "--name",
        "cm",
        "--network",
        "none",
        &bb,
        "sh",
        "-c",
        "echo committed > /etc/note; rm /etc/group",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&["commit", "-m", "a note", "cm", "noted:v1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    let out = d.burrow(&[
        "run",
        "--rm",
        "--network",
        "none",
        "noted:v1",
        "sh",
        "-c",
        "cat /etc/note; test -e /etc/group || echo gone",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "committed\ngone\n");
    d.burrow(&["rm", "-f", "cm"]);
}
