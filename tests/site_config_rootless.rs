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

#[test]
fn the_sites_user_data_root_does_not_move_an_existing_setup() {
    let Some(rl) = rootless("siteroot") else {
        return;
    };
    let site = rl.dir.join("site.toml");
    let base = rl.dir.join("site-data");
    std::fs::create_dir_all(&base).unwrap();
    own(&rl, &[&base]);
    std::fs::write(
        &site,
        format!("user_data_root = \"{}/{{user}}\"\n", base.display()),
    )
    .unwrap();
    let data_root = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("Data Root:").map(|d| d.trim().to_string()))
            .unwrap_or_else(|| panic!("no data root in:\n{text}"))
    };
    // A user with no setup recorded takes the site's.
    let fresh = data_root(burrow_with(&rl, &site, &[], &["info"]));
    assert!(fresh.starts_with(&base.display().to_string()), "{fresh}");
    // One whose install is recorded with the default data root keeps it.
    let toml = rl.home.join(".config/burrow/burrow.toml");
    std::fs::create_dir_all(toml.parent().unwrap()).unwrap();
    std::fs::write(
        &toml,
        "# Managed by burrow setup install: (as an install before the site's setting wrote it)\nsnapshotter = \"overlayfs\"\n# End of the lines managed by burrow setup install.\n",
    )
    .unwrap();
    own(
        &rl,
        &[
            toml.parent().unwrap().parent().unwrap(),
            toml.parent().unwrap(),
            &toml,
        ],
    );
    let kept = data_root(burrow_with(&rl, &site, &[], &["info"]));
    assert!(
        !kept.starts_with(&base.display().to_string()),
        "the site's user_data_root moved an existing setup to {kept}"
    );
}
