//! The test machine itself: user namespaces with subordinate ids, the user's systemd manager, and
//! the local registries with every test image. If these fail, nothing else can be trusted.

use std::time::Duration;

use burrow_testsupport::{expect_success, machine_or_skip, TestMachine};

const T: Duration = Duration::from_secs(60);

/// Parses /proc/PID/uid_map text into (inside, outside, count) triples.
fn parse_map(text: &str) -> Vec<(u64, u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect()
}

/// The user's first range in /etc/subuid or /etc/subgid, matched by name or uid.
fn subid_range(file: &str, m: &TestMachine) -> (u64, u64) {
    let text = std::fs::read_to_string(file).expect("read the subordinate id file");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && (f[0] == m.user || f[0] == m.uid.to_string()))
                .then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
        })
        .next()
        .unwrap_or_else(|| panic!("{file} has no range for {}", m.user))
}

#[test]
fn user_namespace_maps_root_to_the_user_and_ids_to_its_subordinate_range() {
    let m = machine_or_skip!();
    let out = m.run_user(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--map-auto",
            "sh",
            "-c",
            "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u",
        ],
        T,
    );
    let text = expect_success(&out, "unshare --map-auto as the test user");
    let parts: Vec<&str> = text.split("--\n").collect();
    assert_eq!(parts.len(), 3, "{text}");
    let uid_map = parse_map(parts[0]);
    let gid_map = parse_map(parts[1]);
    assert_eq!(parts[2].trim(), "0", "root inside the namespace");
    assert!(
        uid_map.contains(&(0, u64::from(m.uid), 1)),
        "root = the user: {uid_map:?}"
    );
    assert!(
        gid_map.contains(&(0, u64::from(m.gid), 1)),
        "root group = the user's: {gid_map:?}"
    );
    let (start, count) = subid_range("/etc/subuid", &m);
    assert!(
        uid_map
            .iter()
            .any(|&(inside, outside, n)| inside == 1 && outside == start && n >= count - 1),
        "ids 1.. come from /etc/subuid {start}:{count}: {uid_map:?}"
    );
    let (gstart, _) = subid_range("/etc/subgid", &m);
    assert!(
        gid_map
            .iter()
            .any(|&(inside, outside, _)| inside == 1 && outside == gstart),
        "{gid_map:?}"
    );
}

#[test]
fn commands_run_as_the_unprivileged_user_with_its_runtime_dir() {
    let m = machine_or_skip!();
    let out = m.run_user(
        &[
            "sh",
            "-c",
            "id -u; id -g; echo $XDG_RUNTIME_DIR; stat -c '%u %a' $XDG_RUNTIME_DIR",
        ],
        T,
    );
    let text = expect_success(&out, "id as the test user");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], m.uid.to_string());
    assert_eq!(lines[1], m.gid.to_string());
    assert_eq!(lines[2], m.xdg_runtime_dir);
    assert_eq!(
        lines[3],
        format!("{} 700", m.uid),
        "runtime dir owned by the user, 0700"
    );
}

#[test]
fn systemd_user_manager_is_running_for_the_test_user() {
    let m = machine_or_skip!();
    let out = m.run_user(&["systemctl", "--user", "is-system-running"], T);
    let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        state == "running" || state == "degraded",
        "systemctl --user is-system-running said {state:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And it really manages units: a transient one runs and reports back.
    let out = m.run_user(
        &[
            "systemd-run",
            "--user",
            "--wait",
            "--quiet",
            "--collect",
            "sh",
            "-c",
            "exit 7",
        ],
        T,
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "systemd-run --wait passes on the unit's exit status"
    );
}

#[test]
fn tun_device_is_usable_by_unprivileged_users() {
    let _m = machine_or_skip!();
    let meta = std::fs::metadata("/dev/net/tun").expect("/dev/net/tun exists");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o666,
        "chmod 0666 /dev/net/tun"
    );
}

/// Fetches a manifest with curl; returns (HTTP status, body).
fn fetch_manifest(registry: &str, repo: &str, creds: Option<&str>) -> (u16, String) {
    let url = format!("http://{registry}/v2/{repo}/manifests/latest");
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-s", "-w", "\n%{http_code}", "-H"])
        .arg(
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .arg(&url);
    if let Some(c) = creds {
        cmd.args(["-u", c]);
    }
    let out = burrow_testsupport::run_with_timeout(&mut cmd, T);
    let text = expect_success(&out, &format!("curl {url}"));
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("HTTP status"), body.to_string())
}

fn repo_of(image_ref: &str) -> String {
    let (_, rest) = image_ref.split_once('/').expect("registry/repo:tag");
    rest.rsplit_once(':').expect("tag").0.to_string()
}

#[test]
fn every_test_image_is_in_both_registries_and_auth_is_enforced() {
    let m = machine_or_skip!();
    let creds = format!("{}:{}", m.auth_user, m.auth_password);
    for image in [
        &m.image_busybox,
        &m.image_multilayer,
        &m.image_multiarch,
        &m.image_tools,
        &m.image_demo,
    ] {
        let repo = repo_of(image);
        let (code, body) = fetch_manifest(&m.registry, &repo, None);
        assert_eq!(code, 200, "{repo} on {}: {body}", m.registry);
        let manifest: serde_json::Value = serde_json::from_str(&body).expect("manifest JSON");
        assert_eq!(manifest["schemaVersion"], 2);

        let (code, _) = fetch_manifest(&m.auth_registry, &repo, None);
        assert_eq!(
            code, 401,
            "{repo} on {} without credentials",
            m.auth_registry
        );
        let (code, _) = fetch_manifest(&m.auth_registry, &repo, Some("burrow:wrong-password"));
        assert_eq!(
            code, 401,
            "{repo} on {} with a wrong password",
            m.auth_registry
        );
        let (code, body2) = fetch_manifest(&m.auth_registry, &repo, Some(&creds));
        assert_eq!(code, 200, "{repo} on {} with credentials", m.auth_registry);
        assert_eq!(body, body2, "same manifest in both registries");
    }
}

#[test]
fn multiarch_image_is_an_index_with_amd64_and_arm64() {
    let m = machine_or_skip!();
    let (code, body) = fetch_manifest(&m.registry, &repo_of(&m.image_multiarch), None);
    assert_eq!(code, 200, "{body}");
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut archs: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|d| {
            d["platform"]["architecture"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    archs.sort();
    assert_eq!(archs, ["amd64", "arm64"]);
}

#[test]
fn multilayer_image_has_three_layers_and_an_unpack_manifest() {
    let m = machine_or_skip!();
    let (_, body) = fetch_manifest(&m.registry, &repo_of(&m.image_multilayer), None);
    let manifest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        manifest["layers"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    let expected = std::path::Path::new(&m.images_dir).join("multilayer-expected.json");
    let exp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&expected).expect("expected-unpack manifest"),
    )
    .unwrap();
    assert!(exp["absent"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == "/data/deleted.txt")));
}
