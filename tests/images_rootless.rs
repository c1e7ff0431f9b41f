//! Images through a rootless containerd (the test user's, under RootlessKit): `burrow load` of
//! the demo archive as install.sh does it, and a pull whose unpacked tree has the image's owners
//! as the user namespace maps them.

mod images_support;

use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout};
use images_support::{
    check_multilayer, host_arch, layout_image, view_on, Rootless, TestRegistry, IMAGES_DIR,
};

#[test]
fn rootless_load_and_pull_unpack_with_mapped_owners() {
    if !std::path::Path::new(IMAGES_DIR)
        .join("layout/index.json")
        .exists()
    {
        eprintln!("SKIP: the provisioned test images are missing: run tests/provision.sh");
        return;
    }
    let Some(rl) = Rootless::start("load") else {
        return;
    };
    let archive = rl.dir.join("demo.tar");
    let mut build = Command::new("python3");
    build
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/images/build.py"
        ))
        .arg("--demo-archive")
        .arg(&archive);
    expect_success(
        &run_with_timeout(&mut build, Duration::from_secs(60)),
        "build.py",
    );
    std::fs::set_permissions(
        &archive,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();

    let out = rl.burrow_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.trim(), "Loaded image: burrow-demo/web:latest");
    let info = rl.burrow_ok(&["info", "--format", "json"]);
    assert!(
        info.contains("\"rootless\""),
        "burrow must have used the rootless containerd: {info}"
    );
    let images = rl.burrow_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "burrow-demo/web:latest");

    let Some(reg) = TestRegistry::start(&rl.dir.join("registry"), None) else {
        return;
    };
    reg.push("multilayer", "burrow-test/multilayer");
    let image = format!("{}/burrow-test/multilayer", reg.host);
    let out = rl.burrow_ok(&["pull", &image]);
    assert!(out.contains("Pull complete"), "{out}");
    let (_, chain) = layout_image("multilayer", host_arch());
    let view = view_on(&rl.sock, "default", &rl.dir, &chain);
    let map = rl.ids();
    check_multilayer(&view.target, &map);
    if let Some(theirs) = images_support::umoci_rootfs(&rl.dir, "multilayer") {
        images_support::assert_same_tree_mapped(&view.target, &theirs, &map);
    }
    drop(view);

    rl.burrow_ok(&["rmi", &image]);
    assert!(!rl.burrow_ok(&["images"]).contains("multilayer"));
}
