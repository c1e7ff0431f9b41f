//! `burrow pull`, `login` and `logout` against real registries (`docker-registry serve`, plain
//! and htpasswd-protected, started here with the provisioned images pushed by skopeo) into a
//! private rootful containerd: unpacked trees, platform choice, auth, a transfer cut midway then
//! resumed without refetching, a corrupted blob refused, unknown tags and a stopped registry.

mod images_support;

use std::path::Path;

use images_support::{
    check_multilayer, host_arch, layout_blob, layout_image, Daemon, Proxy, ProxyMode, TestRegistry,
    IMAGES_DIR,
};

fn ready(name: &str, auth: Option<(&str, &str)>) -> Option<(Daemon, TestRegistry)> {
    if !Path::new(IMAGES_DIR).join("layout/index.json").exists() {
        eprintln!(
            "SKIP: the provisioned test images ({IMAGES_DIR}) are missing: run tests/provision.sh"
        );
        return None;
    }
    let d = Daemon::start(name)?;
    let r = TestRegistry::start(&d.dir.join("registry"), auth)?;
    Some((d, r))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pull_unpacks_the_multilayer_image_and_a_second_pull_fetches_nothing() {
    let Some((d, r)) = ready("pull", None) else {
        return;
    };
    r.push("multilayer", "burrow-test/multilayer");
    let image = format!("{}/burrow-test/multilayer", r.host);
    let out = d.burrow_ok(&["pull", &image]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert!(
        out.trim_end().ends_with(&format!("{image}:latest")),
        "{out}"
    );
    let (manifest, chain) = layout_image("multilayer", host_arch());
    assert!(out.contains(&format!("Digest: {manifest}")), "{out}");
    let images = d.ctr(&["images", "ls"]);
    assert!(
        images.contains(&format!("{image}:latest")) && images.contains(&manifest),
        "{images}"
    );
    assert_eq!(d.ctr(&["leases", "ls", "-q"]).trim(), "");
    let view = d.view(&chain);
    check_multilayer(&view.target, &images_support::Ids::identity());
    // And exactly the tree umoci unpacks from the same image.
    if let Some(theirs) = images_support::umoci_rootfs(&d.dir, "multilayer") {
        images_support::assert_same_tree(&view.target, &theirs);
    }
    drop(view);

    let again = d.burrow_ok(&["pull", &image]);
    assert!(!again.contains("Pull complete"), "{again}");
    assert!(
        again.contains("Already exists") && again.contains("Image is up to date"),
        "{again}"
    );
    // A name new here is "Downloaded newer image" even with every blob here already (Docker
    // says whether the name changed, not whether anything was fetched).
    let by_digest = format!("{image}@{manifest}");
    let pinned = d.burrow_ok(&["pull", &by_digest]);
    assert!(
        !pinned.contains("Pull complete") && pinned.contains("Status: Downloaded newer image"),
        "{pinned}"
    );
    // -q prints the name only.
    assert_eq!(
        d.burrow_ok(&["pull", "-q", &image]).trim(),
        format!("{image}:latest")
    );
}

#[test]
fn platform_is_picked_from_the_index() {
    let Some((d, r)) = ready("platform", None) else {
        return;
    };
    r.push("multiarch", "burrow-test/multiarch");
    let image = format!("{}/burrow-test/multiarch", r.host);
    let other = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let (host_manifest, chain) = layout_image("multiarch", host_arch());
    let (other_manifest, _) = layout_image("multiarch", other);

    d.burrow_ok(&["pull", &image]);
    let content = d.ctr(&["content", "ls", "-q"]);
    assert!(content.contains(&host_manifest), "{content}");
    assert!(!content.contains(&other_manifest), "{content}");
    let view = d.view(&chain);
    check_multilayer(&view.target, &images_support::Ids::identity());
    drop(view);

    d.burrow_ok(&["pull", "--platform", &format!("linux/{other}"), &image]);
    assert!(d.ctr(&["content", "ls", "-q"]).contains(&other_manifest));

    // Only the other platform here: the image still lists and inspects (as that platform).
    d.burrow_ok(&["rmi", &image]);
    d.burrow_ok(&["pull", "--platform", &format!("linux/{other}"), &image]);
    assert!(d.burrow_ok(&["images"]).contains("burrow-test/multiarch"));
    assert_eq!(
        d.burrow_ok(&["image", "inspect", "--format", "{{.Architecture}}", &image])
            .trim(),
        other
    );

    let out = d.burrow(&["pull", "--platform", "linux/s390x", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no manifest for linux/s390x"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn auth_registry_refuses_without_login_and_works_after_it() {
    let Some((d, r)) = ready("auth", Some(("burrow", "s3cret"))) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let image = format!("{}/burrow-test/busybox", r.host);
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("requires authentication")
            && stderr(&out).contains(&format!("burrow login {}", r.host)),
        "{}",
        stderr(&out)
    );
    let out = d.burrow(&["login", "-u", "burrow", "-p", "wrong", &r.host]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!d.dir.join("home/.docker/config.json").exists());

    // search REGISTRY/TERM reads the catalog, with the same credentials.
    let term = format!("{}/busy", r.host);
    let out = d.burrow(&["search", &term]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("requires authentication"),
        "{}",
        stderr(&out)
    );
    assert!(d
        .burrow_ok(&["login", "-u", "burrow", "-p", "s3cret", &r.host])
        .contains("Login Succeeded"));
    let found = d.burrow_ok(&["search", &term]);
    let mut lines = found.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("NAME") && h.contains("STARS")),
        "{found}"
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with(&format!("{}/burrow-test/busybox ", r.host))),
        "{found}"
    );
    r.push("multilayer", "burrow-test/multilayer");
    let all = format!("{}/", r.host);
    assert_eq!(
        d.burrow_ok(&["search", "--format", "{{.Name}}", &all]),
        format!(
            "{h}/burrow-test/busybox\n{h}/burrow-test/multilayer\n",
            h = r.host
        )
    );
    assert_eq!(
        d.burrow_ok(&["search", "--format", "{{.Name}}", "--limit", "1", &all])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        d.burrow_ok(&[
            "search",
            "--format",
            "{{.Name}}",
            "-f",
            "is-official=true",
            &all
        ]),
        ""
    );
    let out = d.burrow(&["search", "-f", "size=1", &all]);
    assert!(stderr(&out).contains("stars=N"), "{}", stderr(&out));
    let cfg = std::fs::read_to_string(d.dir.join("home/.docker/config.json")).unwrap();
    assert!(cfg.contains(&r.host), "{cfg}");
    d.burrow_ok(&["pull", &image]);
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&image));

    d.burrow_ok(&["logout", &r.host]);
    d.burrow_ok(&["rmi", &image]);
    let out = d.burrow(&["pull", &image]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "pull after logout must fail again"
    );
}

#[test]
fn cut_transfer_resumes_without_refetching_and_corrupt_blobs_are_refused() {
    let Some((d, r)) = ready("resume", None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let proxy = Proxy::start(&r.host);
    let image = format!("{}/burrow-test/busybox", proxy.host);
    let (manifest, _) = layout_image("busybox", host_arch());
    let layer = layout_blob(&manifest)["layers"][0].clone();
    let layer_size = layer["size"].as_u64().unwrap();

    // Corrupted on the wire: containerd's digest check refuses it and nothing is named.
    proxy.set_mode(ProxyMode::CorruptAt(200_000));
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert!(!d.ctr(&["images", "ls", "-q"]).contains("busybox"));

    // Cut after 300 kB: the pull fails, telling the user to run it again.
    proxy.set_mode(ProxyMode::CutAfter(300_000));
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run the command again to resume"),
        "{}",
        stderr(&out)
    );
    assert!(!d.ctr(&["images", "ls", "-q"]).contains("busybox"));

    // Again, uncut: only the rest of the layer comes over the wire.
    proxy.set_mode(ProxyMode::Pass);
    let before = proxy.bytes.load(std::sync::atomic::Ordering::SeqCst);
    let out = d.burrow_ok(&["pull", &image]);
    assert!(out.contains("Resuming download at"), "{out}");
    let sent = proxy.bytes.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        sent < layer_size - 200_000,
        "resumed pull moved {sent} bytes of a {layer_size}-byte layer"
    );
    assert!(d.ctr(&["images", "ls", "-q"]).contains("busybox"));
}

#[test]
fn unknown_tags_and_stopped_registries_fail_clearly() {
    let Some((d, mut r)) = ready("errors", None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let out = d.burrow(&["pull", &format!("{}/burrow-test/busybox:nope", r.host)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not found") && stderr(&out).contains("check the name and tag"),
        "{}",
        stderr(&out)
    );
    r.stop();
    let out = d.burrow(&["pull", &format!("{}/burrow-test/busybox", r.host)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("cannot reach registry {}", r.host)),
        "{}",
        stderr(&out)
    );
    r.resume();
    d.burrow_ok(&["pull", &format!("{}/burrow-test/busybox", r.host)]);
    let bad = d.burrow(&["pull", "Not/A/Valid:Ref:"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("invalid reference"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn https_registries_need_a_trusted_certificate() {
    if !Path::new(IMAGES_DIR).join("layout/index.json").exists() {
        eprintln!("SKIP: the provisioned test images are missing");
        return;
    }
    let Some(d) = Daemon::start("tls") else {
        return;
    };
    let Some(r) = TestRegistry::start_tls(&d.dir.join("registry")) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let image = format!("{}/burrow-test/busybox", r.host);
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("certificate is not trusted"),
        "{}",
        stderr(&out)
    );
    let ca = r.dir.join("ca.pem");
    let out = d.burrow_env(
        &["pull", &image],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&image));
}

#[test]
fn uncompressed_zstd_and_gzip_layers_unpack_alike() {
    if !Path::new("/usr/bin/zstd").exists() {
        eprintln!("SKIP: the zstd tool is missing");
        return;
    }
    let Some((d, r)) = ready("zstd", None) else {
        return;
    };
    let layout = d.dir.join("mixed");
    images_support::mixed_compression_layout(&layout);
    r.push_layout(&layout, "mixed", "burrow-test/mixed");
    let image = format!("{}/burrow-test/mixed", r.host);
    d.burrow_ok(&["pull", &image]);
    let content = d.ctr(&["content", "ls"]);
    assert!(content.contains("containerd.io/uncompressed="), "{content}");
    // Same diff ids as the gzip image, so the same chain.
    let (_, chain) = layout_image("multilayer", host_arch());
    let view = d.view(&chain);
    check_multilayer(&view.target, &images_support::Ids::identity());
}

#[test]
fn hosts_toml_mirrors_are_tried_in_order_before_the_server() {
    let Some((d, r)) = ready("mirror", None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    // "registry.invalid:5000" does not exist; its hosts.toml sends pulls to a dead mirror first,
    // then to the test registry.
    let dead = images_support::free_port();
    let hosts_dir = d.dir.join("certs.d");
    let host_dir = hosts_dir.join("registry.invalid:5000");
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(
        host_dir.join("hosts.toml"),
        format!(
            "server = \"http://127.0.0.1:{dead}\"\n\n\
             [host.\"http://127.0.0.1:{dead}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\n\
             [host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            r.host
        ),
    )
    .unwrap();
    let image = "registry.invalid:5000/burrow-test/busybox:latest";
    let out = d.burrow(&["pull", "--hosts-dir", hosts_dir.to_str().unwrap(), image]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trying the next endpoint"),
        "{}",
        stderr(&out)
    );
    assert!(d.ctr(&["images", "ls", "-q"]).contains(image));
    // Without the settings the name does not resolve.
    let out = d.burrow(&["pull", "-q", "registry.invalid:5000/burrow-test/other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot reach registry registry.invalid:5000"),
        "{}",
        stderr(&out)
    );
    // A broken hosts.toml is reported with its path.
    std::fs::write(host_dir.join("hosts.toml"), "server = [").unwrap();
    let out = d.burrow(&["pull", "--hosts-dir", hosts_dir.to_str().unwrap(), image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("hosts.toml is not valid TOML"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn credential_helpers_store_and_supply_the_password() {
    let Some((d, r)) = ready("helper", Some(("burrow", "s3cret"))) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let bin = d.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let store = d.dir.join("helper-store.json");
    let script = bin.join("docker-credential-burrowtest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n store) cat > {s} ;;\n get) read url; if [ -s {s} ]; then cat {s}; \
             else echo 'credentials not found in native keychain'; exit 1; fi ;;\n erase) read url; rm -f {s} ;;\nesac\n",
            s = store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let docker = d.dir.join("home/.docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"burrowtest"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [("PATH", path.as_str())];

    let image = format!("{}/burrow-test/busybox", r.host);
    let out = d.burrow_env(&["pull", &image], &env);
    assert_eq!(out.status.code(), Some(1), "no credentials yet");
    let out = d.burrow_env(&["login", "-u", "burrow", "-p", "s3cret", &r.host], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = std::fs::read_to_string(&store).unwrap();
    assert!(stored.contains("\"Secret\":\"s3cret\""), "{stored}");
    let cfg = std::fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(!cfg.contains("s3cret") && cfg.contains(&r.host), "{cfg}");
    let out = d.burrow_env(&["pull", &image], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    d.burrow_env(&["logout", &r.host], &env);
    assert!(!store.exists());
    // A helper that is not installed is named in the error.
    std::fs::write(docker.join("config.json"), r#"{"credsStore":"missing"}"#).unwrap();
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("docker-credential-missing"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_full_disk_fails_clearly_and_the_pull_resumes_once_there_is_room() {
    if !Path::new(IMAGES_DIR).join("layout/index.json").exists() {
        eprintln!("SKIP: the provisioned test images are missing");
        return;
    }
    let Some(d) = Daemon::start_small("full", "700k") else {
        return;
    };
    let Some(r) = TestRegistry::start(&d.dir.join("registry"), None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let image = format!("{}/burrow-test/busybox", r.host);
    let out = d.burrow(&["pull", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("disk is full"), "{}", stderr(&out));
    assert!(!d.ctr(&["images", "ls", "-q"]).contains("busybox"));
    d.resize_root("64m");
    let out = d.burrow_ok(&["pull", &image]);
    assert!(out.contains("Resuming download at"), "{out}");
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&image));
}

#[test]
fn concurrent_pulls_of_the_same_image_both_succeed() {
    let Some((d, r)) = ready("concurrent", None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let proxy = Proxy::start(&r.host);
    proxy.set_mode(ProxyMode::Slow(3));
    let image = format!("{}/burrow-test/busybox", proxy.host);
    let (a, b) = std::thread::scope(|s| {
        let one = s.spawn(|| d.burrow(&["pull", "-q", &image]));
        let two = s.spawn(|| d.burrow(&["pull", "-q", &image]));
        (one.join().unwrap(), two.join().unwrap())
    });
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&image));
    assert_eq!(d.ctr(&["leases", "ls", "-q"]).trim(), "");
}

#[test]
fn registry_stopped_midway_then_restarted_resumes_the_pull() {
    let Some((d, mut r)) = ready("stopped", None) else {
        return;
    };
    r.push("busybox", "burrow-test/busybox");
    let proxy = Proxy::start(&r.host);
    proxy.set_mode(ProxyMode::Slow(5));
    let image = format!("{}/burrow-test/busybox", proxy.host);
    let (manifest, _) = layout_image("busybox", host_arch());
    let layer_size = layout_blob(&manifest)["layers"][0]["size"]
        .as_u64()
        .unwrap();
    let bytes = proxy.bytes.clone();
    let first = std::thread::scope(|s| {
        let pull = s.spawn(|| d.burrow(&["pull", &image]));
        // Stop the registry once part of the layer has come through.
        assert!(burrow_testsupport::wait_for(
            std::time::Duration::from_secs(120),
            || bytes.load(std::sync::atomic::Ordering::SeqCst) > 300_000
        ));
        // The registry dies, and with it whatever was still on its way.
        r.stop();
        proxy.break_connections();
        pull.join().unwrap()
    });
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(!d.ctr(&["images", "ls", "-q"]).contains("busybox"));
    r.resume();
    proxy.set_mode(ProxyMode::Pass);
    let before = proxy.bytes.load(std::sync::atomic::Ordering::SeqCst);
    let out = d.burrow_ok(&["pull", &image]);
    assert!(out.contains("Resuming download at"), "{out}");
    let moved = proxy.bytes.load(std::sync::atomic::Ordering::SeqCst) - before;
    assert!(
        moved < layer_size - 250_000,
        "moved {moved} of {layer_size}"
    );
    assert!(d.ctr(&["images", "ls", "-q"]).contains(&image));
}

#[test]
fn manifest_lists_are_made_annotated_pushed_and_read_by_both_clis() {
    let Some((d, r)) = ready("manifest", None) else {
        return;
    };
    r.push("multiarch", "burrow-test/multiarch");
    r.push("busybox", "other/busybox");
    let multi = format!("{}/burrow-test/multiarch", r.host);
    let (amd64, _) = layout_image("multiarch", "amd64");
    let (arm64, _) = layout_image("multiarch", "arm64");

    // inspect of what the registry holds: the index, then each image with -v.
    let text = d.burrow_ok(&["manifest", "inspect", &multi]);
    assert!(text.starts_with("{\n\t"), "indented with tabs: {text}");
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{text}"
    );
    let verbose: serde_json::Value =
        serde_json::from_str(&d.burrow_ok(&["manifest", "inspect", "-v", &multi])).unwrap();
    assert!(
        verbose[0]["Ref"].as_str().unwrap().contains("@sha256:"),
        "{verbose}"
    );

    // create (an image of another repository too), annotate, inspect the kept list.
    let list = format!("{}/team/app:multi", r.host);
    let a = format!("{multi}@{amd64}");
    let b = format!("{multi}@{arm64}");
    let other = format!("{}/other/busybox", r.host);
    let out = d.burrow_ok(&["manifest", "create", &list, &a, &b]);
    assert_eq!(out, format!("Created manifest list {list}\n"));
    let again = d.burrow(&["manifest", "create", &list, &a]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--amend"), "{}", stderr(&again));
    d.burrow_ok(&["manifest", "create", "--amend", &list, &other]);
    d.burrow_ok(&[
        "manifest",
        "annotate",
        &list,
        &other,
        "--arch",
        "arm",
        "--variant",
        "v7",
    ]);
    let kept: serde_json::Value =
        serde_json::from_str(&d.burrow_ok(&["manifest", "inspect", &list])).unwrap();
    assert_eq!(
        kept["manifests"].as_array().map(Vec::len),
        Some(3),
        "{kept}"
    );
    assert_eq!(kept["manifests"][2]["platform"]["variant"], "v7", "{kept}");
    let wrong_registry = d.burrow(&["manifest", "create", &list, "docker.io/library/busybox"]);
    assert!(
        stderr(&wrong_registry).contains("share a registry"),
        "{}",
        stderr(&wrong_registry)
    );

    // The docker CLI reads the list kept here (same files).
    if std::path::Path::new("/usr/bin/docker").exists() {
        let mut docker = std::process::Command::new("docker");
        docker
            .args(["manifest", "inspect", &list])
            .env("HOME", d.dir.join("home"))
            .env_remove("DOCKER_CONFIG");
        let out = docker.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"v7\""));
    }

    // push: the images copied into the list's repository, the index under its tag.
    let digest = d.burrow_ok(&["manifest", "push", "--purge", &list]);
    assert!(digest.starts_with("sha256:"), "{digest}");
    assert!(!d
        .dir
        .join("home/.docker/manifests")
        .read_dir()
        .unwrap()
        .any(|_| true));
    let pushed: serde_json::Value =
        serde_json::from_str(&d.burrow_ok(&["manifest", "inspect", &list])).unwrap();
    assert_eq!(
        pushed["manifests"].as_array().map(Vec::len),
        Some(3),
        "{pushed}"
    );
    d.burrow_ok(&["pull", "--platform", "linux/arm/v7", &list]);
    d.burrow_ok(&["pull", "--platform", "linux/arm64", &list]);
    if std::path::Path::new("/usr/bin/docker").exists() {
        let out = std::process::Command::new("docker")
            .args(["manifest", "inspect", "--insecure", &list])
            .env("HOME", d.dir.join("home"))
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(arm64.as_str()));
    }
    let out = d.burrow(&["manifest", "rm", &list]);
    assert_eq!(out.status.code(), Some(1), "nothing kept after --purge");
}
