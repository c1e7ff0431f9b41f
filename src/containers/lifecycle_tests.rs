//! `lifecycle::Client` against a real, private, rootful containerd (started here as root on its
//! own socket, root and state dirs) with the provisioned test images imported into it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout, wait_for, Cleanup};

use super::lifecycle::{Client, NewContainer, Stdio};
use super::spec::{build, Cgroups, ImageDefaults, Limits, NetNs, Options, Seccomp};

const LAYOUT: &str = "/var/lib/burrow-test/images/layout";
const NS: &str = "burrow-lifecycle-test";

struct Daemon {
    dir: PathBuf,
    sock: PathBuf,
    _cleanup: Cleanup,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Starts containerd on a private socket and imports the test images; `None` (with a printed
/// reason) where this machine cannot.
fn daemon(name: &str) -> Option<Daemon> {
    if !is_root() || !Path::new("/usr/bin/containerd").exists() || !Path::new(LAYOUT).exists() {
        eprintln!("SKIP: needs root, containerd and the provisioned images in {LAYOUT}");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("burrow-lifecycle-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("containerd.sock");
    let config = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n[grpc]\n  address = \"{s}\"\n\
         [ttrpc]\n  address = \"{s}.ttrpc\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
        d = dir.display(),
        s = sock.display()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let mut cleanup = Cleanup::new();
    // Dropped in reverse: shims and mounts go before the directory.
    cleanup.remove_dir(&dir);
    let mut umount = Command::new("sh");
    umount.arg("-c").arg(format!(
        "for s in $(ls {d}/state/io.containerd.runtime.v2.task/{NS} 2>/dev/null); do \
         ctr -a {s} -n {NS} task kill -s KILL $s; ctr -a {s} -n {NS} task delete -f $s; done; \
         for p in $(pgrep -f -- '-address {s}$'); do kill -9 $p; done; \
         grep -o ' {d}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l; true",
        d = dir.display(),
        s = sock.display()
    ));
    cleanup.run_on_drop(umount);
    let mut cmd = Command::new("containerd");
    cmd.arg("--config").arg(dir.join("config.toml"));
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cleanup.spawn(&mut cmd);
    assert!(
        wait_for(Duration::from_secs(30), || sock.exists()),
        "containerd did not create {}",
        sock.display()
    );

    let tar = dir.join("images.tar");
    let mut t = Command::new("tar");
    t.arg("-C").arg(LAYOUT).arg("-cf").arg(&tar).arg(".");
    expect_success(
        &run_with_timeout(&mut t, Duration::from_secs(60)),
        "tar the image layout",
    );
    let mut import = Command::new("ctr");
    import
        .arg("-a")
        .arg(&sock)
        .args(["-n", NS, "images", "import", "--all-platforms"])
        .arg(&tar);
    expect_success(
        &run_with_timeout(&mut import, Duration::from_secs(120)),
        "ctr images import",
    );
    Some(Daemon {
        dir,
        sock,
        _cleanup: cleanup,
    })
}

fn blob(digest: &str) -> serde_json::Value {
    let path = format!(
        "{LAYOUT}/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn sha256(data: &str) -> String {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("printf %s '{data}' | sha256sum"));
    let out = expect_success(
        &run_with_timeout(&mut cmd, Duration::from_secs(10)),
        "sha256sum",
    );
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// The busybox test image's config and chain id, read from the OCI layout.
fn busybox() -> (ImageDefaults, String) {
    let index = blob_index();
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "busybox")
        .unwrap();
    let manifest = blob(manifest["digest"].as_str().unwrap());
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    let mut chain = String::new();
    for diff in config["rootfs"]["diff_ids"].as_array().unwrap() {
        let diff = diff.as_str().unwrap();
        chain = if chain.is_empty() {
            diff.to_string()
        } else {
            sha256(&format!("{chain} {diff}"))
        };
    }
    let strings = crate::images::runnable::strings;
    let c = &config["config"];
    let image = ImageDefaults {
        env: strings(&c["Env"]),
        entrypoint: strings(&c["Entrypoint"]),
        cmd: strings(&c["Cmd"]),
        user: c["User"].as_str().unwrap_or_default().to_string(),
        working_dir: c["WorkingDir"].as_str().unwrap_or_default().to_string(),
        ..Default::default()
    };
    (image, chain)
}

fn blob_index() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(format!("{LAYOUT}/index.json")).unwrap()).unwrap()
}

fn options(id: &str, args: &[&str]) -> Options {
    Options {
        id: id.into(),
        hostname: id.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        entrypoint: None,
        env: vec!["GREETING=hello".into()],
        workdir: None,
        user: None,
        tty: false,
        privileged: false,
        read_only: false,
        cap_add: vec![],
        cap_drop: vec![],
        seccomp: Seccomp::Default,
        no_new_privileges: false,
        netns: NetNs::New,
        cgroups: Cgroups::Path(format!("/{id}")),
        limits: Limits::default(),
        mounts: vec![],
        annotations: Default::default(),
        single_id: false,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn snapshots(d: &Daemon) -> String {
    let mut cmd = Command::new("ctr");
    cmd.arg("-a")
        .arg(&d.sock)
        .args(["-n", NS, "snapshots", "ls"]);
    expect_success(
        &run_with_timeout(&mut cmd, Duration::from_secs(30)),
        "ctr snapshots ls",
    )
}

#[test]
fn run_to_exit_with_logs_then_nothing_left() {
    let Some(d) = daemon("run") else { return };
    let (image, chain) = busybox();
    let id = format!("lt-{}", std::process::id());
    let spec = build(
        &image,
        &options(
            &id,
            // The pause: with file:// stdio containerd 1.6's shim sometimes lost the stderr
            // of a process that exited at once (1 run in ~8 under load).
            &[
                "sh",
                "-c",
                "echo out $GREETING; echo err >&2; sleep 0.5; exit 3",
            ],
        ),
    )
    .unwrap();
    // One file per stream: the shim writes each from its own offset 0 (no O_APPEND), so two
    // streams in one file can overwrite each other.
    let log = d.dir.join("out.log");
    let err_log = d.dir.join("err.log");
    let read = || {
        std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(&err_log).unwrap_or_default()
    };
    let rt = runtime();
    let out = rt.block_on(async {
        let channel = containerd_client::connect(&d.sock).await.unwrap();
        let client = Client::new(crate::client::Client::new(channel, NS).unwrap());
        let c = NewContainer {
            id: id.clone(),
            image: "import:busybox".into(),
            parent_chain_id: chain.clone(),
            snapshotter: "overlayfs".into(),
            labels: [("nerdctl/name".to_string(), "lifecycle".to_string())].into(),
            shim_options: None,
        };
        let mounts = client.create(&c, &spec).await.unwrap();
        assert!(!mounts.is_empty());
        let got = client.get(&id).await.unwrap();
        assert_eq!(got.labels["nerdctl/name"], "lifecycle");
        let stdio = Stdio {
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", err_log.display()),
            ..Default::default()
        };
        client.create_task(&id, mounts, &stdio).await.unwrap();
        // Wait is registered before start so a fast exit cannot be missed.
        let waiter = {
            let client = client.clone();
            let id = id.clone();
            tokio::spawn(async move { client.wait_task(&id).await })
        };
        tokio::task::yield_now().await;
        client.start_task(&id).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 3);
        // The shim copies each stream to its file on its own schedule, and deleting the task
        // closes its copies: wait for both streams first (generously: CI machines are loaded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut out = read();
        while !(out.contains("out hello") && out.contains("err"))
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            out = read();
        }
        assert_eq!(client.delete_task(&id).await.unwrap(), Some(3));
        client.delete(&id, "overlayfs").await.unwrap();
        assert!(client.get(&id).await.unwrap_err().is_not_found());
        assert!(client.list(vec![]).await.unwrap().is_empty());
        out
    });
    assert!(
        out.contains("out hello") && out.contains("err"),
        "log: {out:?}"
    );
    assert!(!snapshots(&d).contains(&id));
}

#[test]
fn failed_create_leaves_nothing_behind() {
    let Some(d) = daemon("failed") else { return };
    let (image, _) = busybox();
    let id = format!("lt-bad-{}", std::process::id());
    let spec = build(&image, &options(&id, &["true"])).unwrap();
    runtime().block_on(async {
        let channel = containerd_client::connect(&d.sock).await.unwrap();
        let client = Client::new(crate::client::Client::new(channel, NS).unwrap());
        let c = NewContainer {
            id: id.clone(),
            image: "import:busybox".into(),
            parent_chain_id:
                "sha256:0000000000000000000000000000000000000000000000000000000000000000".into(),
            snapshotter: "overlayfs".into(),
            labels: Default::default(),
            shim_options: None,
        };
        let err = client.create(&c, &spec).await.unwrap_err();
        assert!(
            err.to_string().contains("snapshot prepare") && err.to_string().contains(&id),
            "{err}"
        );
        assert!(client.get(&id).await.unwrap_err().is_not_found());
        // A second container with the same id: the record fails, the snapshot is undone.
        let (_, chain) = busybox();
        let good = NewContainer {
            parent_chain_id: chain,
            ..c.clone()
        };
        client.create(&good, &spec).await.unwrap();
        let dup = client
            .create(
                &NewContainer {
                    id: format!("{id}-2"),
                    ..good.clone()
                },
                &spec,
            )
            .await;
        assert!(dup.is_ok());
        client
            .delete(&format!("{id}-2"), "overlayfs")
            .await
            .unwrap();
        let again = client.create(&good, &spec).await.unwrap_err();
        assert!(
            again.to_string().contains("snapshot prepare")
                || again.to_string().contains("container create"),
            "{again}"
        );
        client.delete(&id, "overlayfs").await.unwrap();
    });
    let snaps = snapshots(&d);
    assert!(!snaps.contains(&id), "{snaps}");
}
