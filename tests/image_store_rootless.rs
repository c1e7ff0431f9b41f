//! The shared read-only image store as the unprivileged test user on a private rootless
//! containerd: `image squash` writes a registry image (three layers, files of several owners,
//! a whiteout) as one SquashFS file and its JSON; with the image removed, `images` lists it
//! from the store and `run --pull never` starts from it (owners and the layers' result kept,
//! writes going to the container's own layer, two containers at once); an image whose layers
//! the node does not have runs from its file mounted with squashfuse, which `rmi` unmounts; a
//! container of a store image cannot be committed, nor the image saved or pushed, and a build
//! FROM it pulls it first; a missing store dir is a clear error.

mod containers_support;
mod dockerapi_support;

use std::path::Path;

use containers_support::*;

/// `burrow ARGS` as the test user with `store` as the image store.
fn with_store(rl: &Rootless, store: &Path, args: &[&str]) -> std::process::Output {
    let env = format!("BURROW_IMAGE_STORE={}", store.display());
    let mut argv = vec!["env", env.as_str(), rl.burrow.to_str().unwrap()];
    argv.extend_from_slice(args);
    rl.user(&argv)
}

#[test]
fn images_squashed_to_the_store_start_without_a_pull() {
    let Some(rl) = rootless("store") else { return };
    let store = rl.dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::os::unix::fs::chown(&store, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    let img = rl.machine.image_multilayer.clone();

    // Squashed (pulled first): one SquashFS file and its JSON, nothing else left in the dir.
    let out = with_store(
        &rl,
        &store,
        &[
            "image",
            "squash",
            &img,
            "--to",
            &store.display().to_string(),
        ],
    );
    let file = ok(&out);
    assert!(file.trim().ends_with(".sqsh"), "{file}");
    let mut names: Vec<String> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names[0].ends_with(".json") && names[1].ends_with(".sqsh"),
        "{names:?}"
    );

    // Gone from containerd, it is listed from the store and runs from it without a pull.
    ok(&with_store(&rl, &store, &["rmi", &img]));
    let listed = ok(&with_store(
        &rl,
        &store,
        &["images", "--format", "{{.Repository}} {{.Containers}}"],
    ));
    assert!(listed.contains("burrow-test/multilayer store"), "{listed}");
    // What `images` lists, `image inspect`, `inspect` and `history` show, before any run.
    let doc = ok(&with_store(
        &rl,
        &store,
        &[
            "image",
            "inspect",
            "--format",
            "{{.GraphDriver.Name}} {{.GraphDriver.Data.File}} {{.Os}}",
            &img,
        ],
    ));
    assert!(
        doc.starts_with("squashfuse ") && doc.trim().ends_with(".sqsh linux"),
        "{doc}"
    );
    let id = ok(&with_store(
        &rl,
        &store,
        &["inspect", "--format", "{{.Id}}", &img],
    ));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let steps = ok(&with_store(
        &rl,
        &store,
        &["history", "--no-trunc", "--format", "{{.ID}}", &img],
    ));
    assert_eq!(steps.lines().next(), Some(id.trim()), "{steps}");
    // The Docker API lists and inspects it too (the store named in the user's burrow.toml, which
    // the service reads), as the docker CLI shows them.
    let config_dir = rl.home.join(".config/burrow");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("burrow.toml");
    std::fs::write(
        &config,
        format!("image_store = [\"{}\"]\n", store.display()),
    )
    .unwrap();
    for p in [rl.home.join(".config"), config_dir.clone(), config.clone()] {
        std::os::unix::fs::chown(&p, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    }
    {
        let api = dockerapi_support::service(&rl);
        let listed = api.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(listed.contains("burrow-test/multilayer"), "{listed}");
        let driver = api.docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.GraphDriver.Name}}",
            &img,
        ]);
        assert_eq!(driver.trim(), "squashfuse");
    }
    std::fs::remove_file(&config).unwrap();
    let script = "cat /data/layer3.txt; ls /data/deleted.txt 2>&1 | grep -c 'No such'; stat -c '%u %n' /data/owned/user1000; echo new > /data/new.txt; cat /data/new.txt";
    let out = with_store(
        &rl,
        &store,
        &["run", "--rm", "--pull", "never", &img, "sh", "-c", script],
    );
    let text = ok(&out);
    for want in ["layer 3", "1\n", "1000 /data/owned/user1000", "new"] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    // Writes stay in each container's own layer.
    ok(&with_store(
        &rl,
        &store,
        &["run", "-d", "--name", "s1", &img, "sleep", "60"],
    ));
    ok(&with_store(
        &rl,
        &store,
        &["run", "-d", "--name", "s2", &img, "sleep", "60"],
    ));
    ok(&with_store(
        &rl,
        &store,
        &["exec", "s1", "sh", "-c", "echo mine > /data/only-s1"],
    ));
    let other = with_store(&rl, &store, &["exec", "s2", "cat", "/data/only-s1"]);
    assert_ne!(code(&other), 0, "s2 sees s1's file: {}", stdout(&other));
    ok(&with_store(&rl, &store, &["rm", "-f", "s1", "s2"]));
    let fresh = with_store(&rl, &store, &["run", "--rm", &img, "cat", "/data/new.txt"]);
    assert_ne!(code(&fresh), 0, "a container's write reached the store");

    // A container of an image from the store cannot be committed (the record holds no layers
    // to build on), and says so.
    ok(&with_store(
        &rl,
        &store,
        &["run", "--name", "c0", &img, "true"],
    ));
    let refused = with_store(&rl, &store, &["commit", "c0", "localhost/nope:1"]);
    assert_ne!(code(&refused), 0, "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("shared image store"),
        "{}",
        stderr(&refused)
    );
    ok(&with_store(&rl, &store, &["rm", "c0"]));
    // Nor saved or pushed, under its name or another (a manifest without the config's layers
    // was written before): each says why.
    ok(&with_store(
        &rl,
        &store,
        &["tag", &img, "127.0.0.1:5000/burrow-test/from-store:1"],
    ));
    let saved = rl.dir.join("home").join("saved.tar");
    let saved_s = saved.display().to_string();
    for (what, args) in [
        ("save", vec!["save", "-o", saved_s.as_str(), img.as_str()]),
        (
            "push",
            vec!["push", "127.0.0.1:5000/burrow-test/from-store:1"],
        ),
    ] {
        let out = with_store(&rl, &store, &args);
        assert_ne!(code(&out), 0, "{what}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("shared image store"),
            "{what}: {}",
            stderr(&out)
        );
    }
    ok(&with_store(
        &rl,
        &store,
        &["rmi", "127.0.0.1:5000/burrow-test/from-store:1"],
    ));
    assert!(!saved.exists(), "a failed save left {saved_s}");

    // A build FROM an image here only from the store pulls it first (the record has no layers
    // to build on) and makes an image that runs and saves whole.
    let bctx = rl.dir.join("home").join("bctx");
    std::fs::create_dir_all(&bctx).unwrap();
    std::fs::write(
        bctx.join("Dockerfile"),
        format!("FROM {img}\nRUN echo built > /built.txt\n"),
    )
    .unwrap();
    for p in [&bctx, &bctx.join("Dockerfile")] {
        std::os::unix::fs::chown(p, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    }
    let built = "localhost/built-on-store:1";
    ok(&with_store(
        &rl,
        &store,
        &["build", "-q", "-t", built, &bctx.display().to_string()],
    ));
    let out = with_store(
        &rl,
        &store,
        &[
            "run",
            "--rm",
            built,
            "cat",
            "/built.txt",
            "/data/layer3.txt",
        ],
    );
    let text = ok(&out);
    assert!(text.contains("built") && text.contains("layer 3"), "{text}");
    ok(&with_store(
        &rl,
        &store,
        &["save", "-o", saved_s.as_str(), built],
    ));
    ok(&with_store(&rl, &store, &["rmi", built]));
    let _ = std::fs::remove_file(&saved);

    // An image whose layers this containerd no longer has (the harness's own copy of the
    // test images keeps theirs) runs from its file, mounted with squashfuse; removing the
    // image record unmounts the file (no squashfuse left serving it), and the next run mounts
    // it again.
    let own = "127.0.0.1:5000/burrow-test/store-only:1";
    let busybox = rl.machine.image_busybox.clone();
    ok(&with_store(
        &rl,
        &store,
        &[
            "run",
            "--name",
            "c1",
            &busybox,
            "sh",
            "-c",
            "mkdir -p /data; echo committed > /data/committed.txt",
        ],
    ));
    ok(&with_store(&rl, &store, &["commit", "c1", own]));
    ok(&with_store(&rl, &store, &["push", own]));
    ok(&with_store(&rl, &store, &["rm", "c1"]));
    let own_file = ok(&with_store(
        &rl,
        &store,
        &["image", "squash", own, "--to", &store.display().to_string()],
    ));
    let own_file = own_file.trim().to_string();
    ok(&with_store(&rl, &store, &["rmi", own]));
    let serving = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", "--", &format!("^squashfuse .*{own_file}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let from_store = |what: &str| {
        let out = with_store(
            &rl,
            &store,
            &[
                "run",
                "--rm",
                "--pull",
                "never",
                own,
                "cat",
                "/data/committed.txt",
            ],
        );
        assert_eq!(ok(&out).trim(), "committed", "{what}");
    };
    from_store("first run from the store");
    assert!(!serving().is_empty(), "no squashfuse serves {own_file}");
    let rmi_unmounts = |what: &str| {
        ok(&with_store(&rl, &store, &["rmi", own]));
        let mut left = serving();
        for _ in 0..50 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            left = serving();
        }
        assert!(
            left.is_empty(),
            "squashfuse (pid {left}) still serves {own_file} after rmi ({what})"
        );
    };
    rmi_unmounts("run from the store");
    // Pulled while it runs from the store, its snapshot stays the mounted file: removing the
    // pulled image unmounts it as well.
    from_store("run from the store after rmi");
    ok(&with_store(&rl, &store, &["pull", "-q", own]));
    assert!(!serving().is_empty(), "the pull unmounted {own_file}");
    from_store("run of the pulled image");
    rmi_unmounts("pulled over the store's record");

    // A store dir that is not there says so.
    let bad = with_store(
        &rl,
        &store,
        &["image", "squash", &img, "--to", "/nonexistent-store"],
    );
    assert_ne!(code(&bad), 0);
    assert!(
        stderr(&bad).contains("/nonexistent-store"),
        "{}",
        stderr(&bad)
    );
}
