//! Site defaults (an administrator's burrow.toml, here through BURROW_SITE_CONFIG) for a
//! rootless user on a private rootless containerd: variables passed from the caller, a scratch
//! mount and a CDI device added to every container, the default network; the user's own
//! burrow.toml overriding a key the site allows and refused, with both files named, for a key
//! the site locks; a missing mount source skipped.

mod containers_support;

use std::path::Path;

use containers_support::*;

/// `burrow ARGS` as the test user with the site file and extra environment.
fn burrow_with(rl: &Rootless, site: &Path, env: &[&str], args: &[&str]) -> std::process::Output {
    let site_env = format!("BURROW_SITE_CONFIG={}", site.display());
    let mut argv = vec!["env", site_env.as_str()];
    argv.extend_from_slice(env);
    argv.push(rl.burrow.to_str().unwrap());
    argv.extend_from_slice(args);
    rl.user(&argv)
}

fn own(rl: &Rootless, paths: &[&Path]) {
    for p in paths {
        std::os::unix::fs::chown(p, Some(rl.machine.uid), Some(rl.machine.gid)).unwrap();
    }
}

#[test]
fn site_defaults_reach_every_container_and_the_user_overrides_what_is_allowed() {
    let Some(rl) = rootless("site") else { return };
    let site_dir = rl.dir.join("site");
    let cdi = site_dir.join("cdi");
    let scratch = site_dir.join("scratch");
    std::fs::create_dir_all(&cdi).unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("f"), "scratch-data\n").unwrap();
    std::fs::write(
        cdi.join("site.yaml"),
        "cdiVersion: \"0.6.0\"\nkind: site.example.com/gpu\ndevices:\n  - name: all\n    containerEdits:\n      env: [SITE_GPU=all-visible]\n      deviceNodes:\n        - path: /dev/sitegpu0\n          hostPath: /dev/null\n",
    )
    .unwrap();
    let site = site_dir.join("burrow.toml");
    std::fs::write(
        &site,
        format!(
            "# a GPU node\nenv = [\"SITE_TEST_*\"]\nmounts = [\"{}:/scratch:ro\", \"/nonexistent-site-dir:/gone\"]\ndevices = [\"site.example.com/gpu=all\"]\ncdi_spec_dirs = [\"{}\"]\nnetwork = \"sitenet\"\nlocked = [\"devices\"]\n",
            scratch.display(),
            cdi.display()
        ),
    )
    .unwrap();
    let busybox = image("busybox");
    ok(&burrow_with(
        &rl,
        &site,
        &[],
        &["network", "create", "sitenet"],
    ));

    // Every container: the caller's SITE_TEST_* (an explicit -e wins), the scratch mount, the
    // CDI device, the site's network.
    let out = burrow_with(
        &rl,
        &site,
        &["SITE_TEST_A=passed", "SITE_TEST_B=caller", "OTHER=hidden"],
        &[
            "run",
            "-d",
            "--name",
            "s1",
            "-e",
            "SITE_TEST_B=explicit",
            &busybox,
            "sleep",
            "60",
        ],
    );
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = burrow_with(
        &rl,
        &site,
        &[],
        &[
            "exec", "s1", "sh", "-c",
            "echo A=$SITE_TEST_A B=$SITE_TEST_B O=$OTHER G=$SITE_GPU; cat /scratch/f; ls /dev/sitegpu0; touch /scratch/x || echo ro; ls /gone || echo no-gone",
        ],
    );
    let text = stdout(&out);
    for want in [
        "A=passed B=explicit O= G=all-visible",
        "scratch-data",
        "/dev/sitegpu0",
        "ro",
        "no-gone",
    ] {
        assert!(
            text.contains(want),
            "missing {want:?} in {text}{}",
            stderr(&out)
        );
    }
    let nets = ok(&burrow_with(
        &rl,
        &site,
        &[],
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "s1",
        ],
    ));
    assert!(
        nets.contains("sitenet"),
        "not on the site's network: {nets}"
    );
    ok(&burrow_with(&rl, &site, &[], &["rm", "-f", "s1"]));

    // The user's file overrides an allowed key (the network) ...
    let user_dir = rl.home.join(".config/burrow");
    std::fs::create_dir_all(&user_dir).unwrap();
    let user_file = user_dir.join("burrow.toml");
    std::fs::write(&user_file, "network = \"none\"\n").unwrap();
    own(&rl, &[&rl.home.join(".config"), &user_dir, &user_file]);
    let out = burrow_with(
        &rl,
        &site,
        &[],
        &["run", "--rm", &busybox, "ip", "-o", "link"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("eth0"),
        "the user's network none was not used: {}",
        stdout(&out)
    );

    // ... and is refused, naming both files, for a key the site locks.
    std::fs::write(&user_file, "devices = []\n").unwrap();
    let out = burrow_with(&rl, &site, &[], &["run", "--rm", &busybox, "true"]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        err.contains("devices")
            && err.contains(&site.display().to_string())
            && err.contains(&user_file.display().to_string()),
        "{err}"
    );
    std::fs::remove_file(&user_file).unwrap();
    ok(&burrow_with(&rl, &site, &[], &["network", "rm", "sitenet"]));
}
