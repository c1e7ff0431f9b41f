//! The image commands on a private rootful containerd holding the provisioned images: images
//! (table, -q, filters, templates, json), tag, image inspect, history, rmi (refused while a
//! container uses the image), save/load round trip, push then pull back, image prune.

mod images_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use burrow_testsupport::{expect_success, run_with_timeout};
use images_support::{host_arch, layout_blob, layout_image, Daemon, TestRegistry, IMAGES_DIR};

/// A daemon with every layout image loaded (names docker.io/library/<tag>:latest).
fn loaded(name: &str) -> Option<Daemon> {
    if !Path::new(IMAGES_DIR).join("layout/index.json").exists() {
        eprintln!(
            "SKIP: the provisioned test images ({IMAGES_DIR}) are missing: run tests/provision.sh"
        );
        return None;
    }
    let d = Daemon::start(name)?;
    let archive = d.dir.join("layout.tar");
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(format!("{IMAGES_DIR}/layout"))
        .arg("-cf")
        .arg(&archive)
        .arg(".");
    expect_success(&run_with_timeout(&mut tar, Duration::from_secs(60)), "tar");
    d.burrow_ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    Some(d)
}

fn config_digest(tag: &str) -> String {
    let (manifest, _) = layout_image(tag, host_arch());
    layout_blob(&manifest)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn images_tag_inspect_and_history() {
    let Some(d) = loaded("list") else { return };
    let busybox_id = config_digest("busybox");
    let table = d.burrow_ok(&["images"]);
    let head = table.lines().next().unwrap();
    assert!(
        head.starts_with("REPOSITORY") && head.contains("IMAGE ID") && head.ends_with("SIZE"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("busybox "))
        .expect("busybox row");
    assert!(
        row.contains(&busybox_id[7..19]) && row.contains("latest"),
        "{row}"
    );

    // One ID per image loaded from the test layout (one row each in the table).
    let ids = d.burrow_ok(&["images", "-q"]);
    assert_eq!(ids.lines().count(), table.lines().count() - 1, "{ids}");
    assert!(ids.lines().count() >= 5, "{ids}");
    let full = d.burrow_ok(&["images", "-q", "--no-trunc", "-f", "reference=busybox"]);
    assert_eq!(full.trim(), busybox_id);
    let names = d.burrow_ok(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "-f",
        "reference=multi*",
    ]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "multiarch:latest",
            "multilayer-zstd:latest",
            "multilayer:latest"
        ]
    );
    assert_eq!(
        d.burrow_ok(&["images", "-f", "dangling=true", "-q"]).trim(),
        ""
    );
    let json = d.burrow_ok(&["images", "--format", "json", "busybox"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Tag"], "latest");
    assert_eq!(d.burrow_ok(&["images", "-q", "-f", "label=x"]), "");
    let bad = d.burrow(&["images", "-f", "colour=red"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("unsupported filter"),
        "{bad:?}"
    );

    // Time filters. The layout's images were all made in 2023; an import is made now.
    let rootfs = d.dir.join("rootfs.tar");
    std::fs::write(d.dir.join("marker"), "x").unwrap();
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(&d.dir)
        .arg("-cf")
        .arg(&rootfs)
        .arg("marker");
    expect_success(&run_with_timeout(&mut tar, Duration::from_secs(60)), "tar");
    d.burrow_ok(&["import", rootfs.to_str().unwrap(), "later:1"]);
    let repos = |f: &str| {
        let out = d.burrow_ok(&["images", "--format", "{{.Repository}}", "-f", f]);
        let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(repos("since=busybox"), ["later"]);
    let before = repos("before=later:1");
    assert!(
        before.contains(&"busybox".to_owned()) && !before.contains(&"later".to_owned()),
        "{before:?}"
    );
    assert!(repos("before=busybox").is_empty());
    let old = repos("until=1h");
    assert!(
        old.contains(&"busybox".to_owned()) && !old.contains(&"later".to_owned()),
        "{old:?}"
    );
    assert_eq!(repos("until=2023-11-14"), Vec::<String>::new());
    // Filters of different keys must all hold; a reference narrows the time filter.
    assert_eq!(
        repos("since=busybox").len(),
        d.burrow_ok(&[
            "images",
            "-q",
            "-f",
            "since=busybox",
            "-f",
            "reference=later"
        ])
        .lines()
        .count()
    );
    let missing = d.burrow(&["images", "-f", "since=nosuch:1"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no such image: nosuch:1"), "{err}");
    let bad_time = d.burrow(&["images", "-f", "until=soon"]);
    assert!(
        String::from_utf8_lossy(&bad_time.stderr).contains("invalid filter \"until=soon\""),
        "{bad_time:?}"
    );
    d.burrow_ok(&["rmi", "later:1"]);

    d.burrow_ok(&["tag", "busybox", "example.org/team/box:v1"]);
    let tagged = d.burrow_ok(&["images", "example.org/team/box"]);
    assert!(
        tagged.contains("v1") && tagged.contains(&busybox_id[7..19]),
        "{tagged}"
    );

    let inspect = d.burrow_ok(&["image", "inspect", "example.org/team/box:v1"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], busybox_id.as_str());
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"busybox:latest") && tags.contains(&"example.org/team/box:v1"),
        "{tags:?}"
    );
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["Architecture"], host_arch());
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(img["Config"]["Env"].is_array());
    assert!(img["Size"].as_i64().unwrap() > 1_000_000);
    assert_eq!(
        d.burrow_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{.Os}}",
            &busybox_id[7..19]
        ])
        .trim(),
        format!("{busybox_id} linux")
    );
    let missing = d.burrow(&["image", "inspect", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such image: nope"));

    let hist = d.burrow_ok(&["history", "multilayer"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    assert_eq!(hist.lines().count(), 4, "three layers and a header: {hist}");
    // --platform: the host's platform named is the default's history; one whose content is
    // not here (only this host's was loaded) is an error, not the host's history.
    let named = d.burrow_ok(&["history", "--platform", "linux/amd64", "-q", "multiarch"]);
    let host = d.burrow_ok(&["history", "-q", "multiarch"]);
    if host_arch() == "amd64" {
        assert_eq!(named, host);
    }
    let other = if host_arch() == "amd64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let out = d.burrow(&["history", "--platform", other, "-q", "multiarch"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(other),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --human=false: bytes and RFC 3339 times, as Docker prints them.
    let raw = d.burrow_ok(&[
        "history",
        "--human=false",
        "--format",
        "{{.CreatedSince}}|{{.Size}}",
        "multilayer",
    ]);
    for line in raw.lines() {
        let (when, size) = line.split_once('|').unwrap();
        assert!(when == "N/A" || when.contains('T'), "{raw}");
        assert!(size.parse::<u64>().is_ok(), "{raw}");
    }
}

#[test]
fn rmi_refuses_an_image_in_use_keeps_it_for_the_container_when_forced() {
    let Some(d) = loaded("rmi") else { return };
    let id = config_digest("busybox");
    d.burrow_ok(&["tag", "busybox", "other:v1"]);
    // An ID naming two repositories needs -f.
    let out = d.burrow(&["rmi", &id[7..19]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("referenced in multiple repositories"));
    assert_eq!(
        d.burrow_ok(&["rmi", "other:v1"]).trim(),
        "Untagged: other:v1"
    );

    d.ctr(&[
        "containers",
        "create",
        "docker.io/library/busybox:latest",
        "user-of-busybox",
    ]);
    let out = d.burrow(&["rmi", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container user-of-busy") && err.contains("must force"),
        "{err}"
    );
    assert!(d
        .ctr(&["images", "ls", "-q"])
        .contains("docker.io/library/busybox:latest"));

    // -f untags it; as Docker, the image stays (<none>) for the container that uses it.
    let out = d.burrow_ok(&["rmi", "-f", "busybox"]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(!out.contains("Deleted"), "{out}");
    let records = d.ctr(&["images", "ls", "-q"]);
    assert!(!records.contains("library/busybox"), "{records}");
    assert!(records.contains("<none>@"), "{records}");
    assert!(d.ctr(&["content", "ls", "-q"]).contains(&id));
    // Once the container is gone, prune removes it, and the config blob goes with it (the
    // layer stays: other images share it).
    d.ctr(&["containers", "rm", "user-of-busybox"]);
    let out = d.burrow_ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(!d.ctr(&["content", "ls", "-q"]).contains(&id));

    let out = d.burrow(&["rmi", "no-such-image"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such image"));
}

#[test]
fn save_then_load_round_trips() {
    let Some(d) = loaded("save") else { return };
    let archive = d.dir.join("saved.tar");
    d.burrow_ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "multilayer:latest",
    ]);
    let before = d.burrow_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}} {{.ID}}",
        "-f",
        "reference=busybox",
    ]) + &d.burrow_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}} {{.ID}}",
        "-f",
        "reference=multilayer",
    ]);
    d.burrow_ok(&["rmi", "busybox", "multilayer"]);
    let out = d.burrow_ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: busybox:latest")
            && out.contains("Loaded image: multilayer:latest"),
        "{out}"
    );
    let after = d.burrow_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}} {{.ID}}",
        "-f",
        "reference=busybox",
    ]) + &d.burrow_ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Digest}} {{.ID}}",
        "-f",
        "reference=multilayer",
    ]);
    assert_eq!(before, after);
    // The archive is also a docker-archive.
    let mut t = Command::new("tar");
    t.arg("-tf").arg(&archive);
    let list = expect_success(&run_with_timeout(&mut t, Duration::from_secs(30)), "tar -t");
    assert!(
        list.contains("manifest.json") && list.contains("oci-layout"),
        "{list}"
    );
    let (_, chain) = layout_image("multilayer", host_arch());
    let view = d.view(&chain);
    images_support::check_multilayer(&view.target, &images_support::Ids::identity());
}

#[test]
fn push_then_pull_back_gives_the_same_digest() {
    let Some(d) = loaded("push") else { return };
    let Some(r) = TestRegistry::start(&d.dir.join("registry"), None) else {
        return;
    };
    let (digest, _) = layout_image("multilayer", host_arch());
    let first = format!("{}/team/multilayer:v1", r.host);
    d.burrow_ok(&["tag", "multilayer", &first]);
    let out = d.burrow_ok(&["push", &first]);
    assert!(out.contains("Pushed"), "{out}");
    assert!(out.contains(&format!("v1: digest: {digest}")), "{out}");
    // A second repository on the same registry gets the blobs by cross-repository mount.
    let second = format!("{}/other/multilayer:v2", r.host);
    d.burrow_ok(&["tag", "multilayer", &second]);
    let out = d.burrow_ok(&["push", &second]);
    assert!(out.contains("Mounted from team/multilayer"), "{out}");
    assert!(!out.contains("Pushed"), "{out}");
    // -a: every tag of the repository here; a tag with it is refused.
    let third = format!("{}/team/multilayer:v3", r.host);
    d.burrow_ok(&["tag", "multilayer", &third]);
    let out = d.burrow_ok(&["push", "-a", &format!("{}/team/multilayer", r.host)]);
    assert!(
        out.contains("v1: digest:") && out.contains("v3: digest:"),
        "{out}"
    );
    let out = d.burrow(&["push", "-a", &first]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all-tags"));
    d.burrow_ok(&["rmi", &third]);

    d.burrow_ok(&["rmi", "-f", &first, &second, "multilayer", "multiarch"]);
    let out = d.burrow_ok(&["pull", &second]);
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
}

#[test]
fn prune_removes_only_unused_images() {
    let Some(d) = loaded("prune") else { return };
    // The container uses busybox by ID (as burrow records it): its other name stays too.
    let id = d.burrow_ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]);
    d.burrow_ok(&["tag", "busybox", "busybox:other-name"]);
    let label = format!("burrow/image-id={}", id.trim());
    d.ctr(&[
        "containers",
        "create",
        "--label",
        &label,
        "docker.io/library/busybox:latest",
        "keeper",
    ]);
    let out = d.burrow(&["image", "prune", "-a"]);
    assert_eq!(out.status.code(), Some(1), "no -f and no terminal: refused");
    // Filters: no image carries this label, none was created before 1971; an unknown filter
    // is refused naming those it takes.
    for f in ["label=org.example.none", "until=31536000"] {
        let out = d.burrow_ok(&["image", "prune", "-a", "-f", "--filter", f]);
        assert!(!out.contains("multilayer"), "{f}: {out}");
    }
    let out = d.burrow(&["image", "prune", "-a", "-f", "--filter", "colour=red"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("until"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.burrow_ok(&["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("Deleted Images:") && out.contains("Untagged: multilayer:latest"),
        "{out}"
    );
    assert_eq!(
        d.ctr(&["images", "ls", "-q"]).trim(),
        "docker.io/library/busybox:latest\ndocker.io/library/busybox:other-name"
    );
}
