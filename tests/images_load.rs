//! `burrow load` against a private rootful containerd: OCI archives (the demo image as
//! install.sh loads it, the whole provisioned layout with its multi-platform index) and
//! docker-archives (made by skopeo), checked through `ctr` and a mounted snapshot of the
//! unpacked layers; broken archives fail with a message and leave no image behind.

mod images_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout};
use images_support::{check_multilayer, host_arch, layout_image, Daemon, IMAGES_DIR};

fn have_layout() -> bool {
    if Path::new(IMAGES_DIR).join("layout/index.json").exists() {
        return true;
    }
    eprintln!(
        "SKIP: the provisioned test images ({IMAGES_DIR}) are missing: run tests/provision.sh"
    );
    false
}

fn run(cmd: &mut Command, what: &str) -> String {
    expect_success(&run_with_timeout(cmd, Duration::from_secs(120)), what)
}

#[test]
fn oci_archive_of_the_demo_image_loads_and_unpacks() {
    let Some(d) = Daemon::start("demo") else {
        return;
    };
    let archive = d.dir.join("demo.tar");
    run(
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/images/build.py"
            ))
            .arg("--demo-archive")
            .arg(&archive),
        "build.py --demo-archive",
    );
    let out = d.burrow_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: burrow-demo/web:latest");
    let images = d.ctr(&["images", "ls", "-q"]);
    assert_eq!(images.trim(), "docker.io/burrow-demo/web:latest");
    // Every layer is unpacked, the lease is gone and the content is held by the record.
    let snaps = d.ctr(&["snapshots", "ls"]);
    assert_eq!(
        snaps.lines().filter(|l| l.contains("Committed")).count(),
        2,
        "{snaps}"
    );
    assert_eq!(d.ctr(&["leases", "ls", "-q"]).trim(), "");
    let content = d.ctr(&["content", "ls"]);
    assert!(
        content.contains("containerd.io/gc.ref.snapshot.overlayfs="),
        "{content}"
    );
    assert!(
        content.contains("containerd.io/gc.ref.content.config="),
        "{content}"
    );
    // The unpacked root has the web page.
    let top = snaps
        .lines()
        .find(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.starts_with("sha256:"))
        })
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let view = d.view(&top);
    assert!(view.target.join("www/index.html").exists());
    assert!(view.target.join("bin/busybox").exists());
    drop(view);
    // Loading again changes nothing and still succeeds (from stdin, gzipped).
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(format!(
        "gzip -c {} | {} --address {} -n {} load",
        archive.display(),
        env!("CARGO_BIN_EXE_burrow"),
        d.sock.display(),
        d.namespace
    ));
    assert_eq!(
        run(&mut sh, "gzip | burrow load").trim(),
        "Loaded image: burrow-demo/web:latest"
    );
    // And zstd-compressed, from a file.
    let zst = archive.with_extension("tar.zst");
    let mut zstd = Command::new("zstd");
    zstd.args(["-q", "-f", "-o"]).arg(&zst).arg(&archive);
    run(&mut zstd, "zstd");
    assert_eq!(
        d.burrow_ok(&["load", "-i", zst.to_str().unwrap()]).trim(),
        "Loaded image: burrow-demo/web:latest"
    );
}

#[test]
fn docker_archive_unpacks_whiteouts_links_owners_and_modes() {
    if !have_layout() {
        return;
    }
    let Some(d) = Daemon::start("docker") else {
        return;
    };
    let archive = d.dir.join("multilayer.tar");
    run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("oci:{IMAGES_DIR}/layout:multilayer"))
            .arg(format!(
                "docker-archive:{}:burrow-test/multilayer:v1",
                archive.display()
            )),
        "skopeo copy to a docker-archive",
    );
    let out = d.burrow_ok(&["load", "--input", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: burrow-test/multilayer:v1");
    assert_eq!(
        d.ctr(&["images", "ls", "-q"]).trim(),
        "docker.io/burrow-test/multilayer:v1"
    );
    let (_, chain) = layout_image("multilayer", host_arch());
    let view = d.view(&chain);
    check_multilayer(&view.target, &images_support::Ids::identity());
}

#[test]
fn oci_layout_archive_with_an_index_unpacks_the_host_platform() {
    if !have_layout() {
        return;
    }
    let Some(d) = Daemon::start("layout") else {
        return;
    };
    let archive = d.dir.join("layout.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(format!("{IMAGES_DIR}/layout"))
            .arg("-cf")
            .arg(&archive)
            .arg("."),
        "tar the layout",
    );
    let out = d.burrow_ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    assert_eq!(out, "");
    let images = d.ctr(&["images", "ls", "-q"]);
    for name in ["busybox", "multilayer", "multiarch", "tools", "demo"] {
        assert!(
            images.contains(&format!("docker.io/library/{name}:latest")),
            "{images}"
        );
    }
    let (_, chain) = layout_image("multiarch", host_arch());
    let view = d.view(&chain);
    check_multilayer(&view.target, &images_support::Ids::identity());
}

#[test]
fn broken_archives_fail_clearly_and_name_nothing() {
    if !have_layout() {
        return;
    }
    let Some(d) = Daemon::start("broken") else {
        return;
    };
    let junk = d.dir.join("junk.tar");
    std::fs::write(&junk, vec![0u8; 4096]).unwrap();
    let out = d.burrow(&["load", "-i", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not an image archive"), "{err}");

    // An OCI archive missing one layer blob.
    let (manifest, _) = layout_image("busybox", host_arch());
    let m = images_support::layout_blob(&manifest);
    let layer = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let archive = d.dir.join("partial.tar");
    run(
        Command::new("tar")
            .arg("-C")
            .arg(format!("{IMAGES_DIR}/layout"))
            .arg(format!("--exclude=blobs/sha256/{layer}"))
            .arg("-cf")
            .arg(&archive)
            .arg("."),
        "tar the layout without a layer",
    );
    let out = d.burrow(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no entry") && err.contains(layer), "{err}");
    assert!(!d.ctr(&["images", "ls", "-q"]).contains("busybox"));
    assert_eq!(d.ctr(&["leases", "ls", "-q"]).trim(), "");
}

#[test]
fn unnamed_images_load_as_dangling_and_prune_removes_them() {
    if !have_layout() {
        return;
    }
    let Some(d) = Daemon::start("unnamed") else {
        return;
    };
    let archive = d.dir.join("unnamed.tar");
    run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("oci:{IMAGES_DIR}/layout:busybox"))
            .arg(format!("docker-archive:{}", archive.display())),
        "skopeo copy to an unnamed docker-archive",
    );
    let out = d.burrow_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.starts_with("Loaded image ID: sha256:"), "{out}");
    let id = out
        .trim()
        .trim_start_matches("Loaded image ID: ")
        .to_owned();
    let dangling = d.burrow_ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]);
    assert_eq!(dangling.trim(), id);
    let table = d.burrow_ok(&["images"]);
    assert!(table.lines().any(|l| l.starts_with("<none>")), "{table}");
    let out = d.burrow_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(d.burrow_ok(&["images", "-q"]).trim(), "");
}
