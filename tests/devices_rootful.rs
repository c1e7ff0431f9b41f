//! `--device`, `--device-cgroup-rule`, CDI devices and `--gpus`, rootful, against a private
//! containerd with the provisioned test images; CDI specs are written to temp dirs named by
//! BURROW_CDI_SPEC_DIRS. (The rootless case is in devices_rootless.rs.)

mod containers_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::run_with_timeout;
use containers_support::*;

/// burrow with the CDI spec dirs set to `dirs`.
fn with_cdi(d: &Rootful, dirs: &Path, args: &[&str]) -> Output {
    let mut cmd = d.command(args);
    cmd.env("BURROW_CDI_SPEC_DIRS", dirs);
    run_with_timeout(&mut cmd, Duration::from_secs(120))
}

/// A fake vendor's spec: example.com/dev=one gives /dev/null as /dev/fake0, an env var and a
/// read-only mount of `data`.
fn fake_spec(data: &Path) -> String {
    format!(
        "cdiVersion: \"0.6.0\"\nkind: example.com/dev\ncontainerEdits:\n  env: [FROM_SPEC=yes]\n\
         devices:\n  - name: one\n    containerEdits:\n      env: [FAKE=one]\n\
         \x20     deviceNodes:\n        - path: /dev/fake0\n          hostPath: /dev/null\n\
         \x20     mounts:\n        - hostPath: {}\n          containerPath: /fake/data\n\
         \x20         options: [ro, bind]\n",
        data.display()
    )
}

#[test]
fn host_device_readable_inside_and_missing_device_refused() {
    let Some(d) = rootful("dev") else { return };
    let bb = image("busybox");
    let out = d.burrow(&[
        "run",
        "-d",
        "--name",
        "dz",
        "--network",
        "none",
        "--device",
        "/dev/zero:/dev/myzero",
        "--device-cgroup-rule",
        "c 1:9 r",
        &bb,
        "sleep",
        "300",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = d.burrow(&[
        "exec",
        "dz",
        "sh",
        "-c",
        "head -c 4 /dev/myzero | od -An -tx1; ls -l /dev/myzero",
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("00 00 00 00") && text.contains("crw"),
        "{text}"
    );
    // The device cgroup allows the node and the extra rule, and not what it was not given.
    let id = stdout(&d.burrow(&["inspect", "-f", "{{.Id}}", "dz"]))
        .trim()
        .to_string();
    let list = std::fs::read_to_string(format!("/sys/fs/cgroup/devices/default/{id}/devices.list"))
        .expect("the container's device cgroup");
    assert!(
        list.contains("c 1:5 rwm") && list.contains("c 1:9 r") && !list.contains("a *:* rwm"),
        "{list}"
    );
    let out = d.burrow(&["inspect", "-f", "{{json .HostConfig}}", "dz"]);
    let hc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        hc["Devices"],
        serde_json::json!([{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/myzero", "CgroupPermissions": "rwm"}])
    );
    assert_eq!(hc["DeviceCgroupRules"], serde_json::json!(["c 1:9 r"]));

    // A missing host device: exit 125, the path named, nothing left behind.
    let before = d.ctr(&["c", "ls", "-q"]);
    let out = d.burrow(&[
        "run",
        "--rm",
        "--name",
        "nodev",
        "--network",
        "none",
        "--device",
        "/dev/no-such-dev",
        &bb,
        "true",
    ]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/dev/no-such-dev") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(d.ctr(&["c", "ls", "-q"]), before);
    let out = d.burrow(&["run", "--rm", "--device", "dev/zero", &bb, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid --device"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cdi_devices_and_gpus_from_spec_dirs() {
    let Some(d) = rootful("cdi") else { return };
    let bb = image("busybox");
    let dir = d.dir.join("cdi");
    std::fs::create_dir_all(&dir).unwrap();
    let data = d.dir.join("fake-data");
    std::fs::write(&data, "vendor data\n").unwrap();
    std::fs::write(dir.join("fake.yaml"), fake_spec(&data)).unwrap();

    let out = with_cdi(&d, &dir, &[
        "run", "--name", "c1", "--network", "none", "--device", "example.com/dev=one", &bb,
        "sh", "-c", "echo $FAKE $FROM_SPEC; cat /fake/data; ls -l /dev/fake0; echo x > /dev/fake0 && echo wrote",
    ]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}{}", stderr(&out));
    assert!(
        text.contains("one yes")
            && text.contains("vendor data")
            && text.contains("crw")
            && text.contains("wrote"),
        "{text}"
    );
    let out = d.burrow(&["inspect", "-f", "{{json .HostConfig.DeviceRequests}}", "c1"]);
    let req: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(req[0]["Driver"], "cdi", "{req}");
    assert_eq!(
        req[0]["DeviceIDs"],
        serde_json::json!(["example.com/dev=one"]),
        "{req}"
    );

    // An unknown device names what is known and where it looked.
    let out = with_cdi(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "--device",
            "example.com/dev=two",
            &bb,
            "true",
        ],
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no CDI device example.com/dev=two; known: example.com/dev=one")
            && err.contains(dir.to_str().unwrap()),
        "{err}"
    );

    // --gpus without an nvidia.com/gpu spec says how to make one.
    let out = with_cdi(&d, &dir, &["run", "--rm", "--gpus", "all", &bb, "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml"),
        "{}",
        stderr(&out)
    );

    // A fake GPU spec: the first N, chosen ids, all.
    let gpu = "{\"cdiVersion\":\"0.6.0\",\"kind\":\"nvidia.com/gpu\",\"devices\":[\
        {\"name\":\"0\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/nvidia0\",\"hostPath\":\"/dev/null\"}]}},\
        {\"name\":\"1\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/nvidia1\",\"hostPath\":\"/dev/zero\"}]}},\
        {\"name\":\"all\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/nvidia0\",\"hostPath\":\"/dev/null\"},{\"path\":\"/dev/nvidia1\",\"hostPath\":\"/dev/zero\"}]}}],\
        \"containerEdits\":{\"env\":[\"NVIDIA_FAKE=1\"]}}";
    std::fs::write(dir.join("nvidia.json"), gpu).unwrap();
    for (gpus, want) in [
        ("1", "/dev/nvidia0 NVIDIA_FAKE=1"),
        ("\"device=1\"", "/dev/nvidia1 NVIDIA_FAKE=1"),
        ("all", "/dev/nvidia0 /dev/nvidia1 NVIDIA_FAKE=1"),
    ] {
        let out = with_cdi(
            &d,
            &dir,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--gpus",
                gpus,
                &bb,
                "sh",
                "-c",
                "echo $(ls /dev/nvidia*) $(env | grep NVIDIA_FAKE)",
            ],
        );
        assert_eq!(code(&out), 0, "--gpus {gpus}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), want, "--gpus {gpus}");
    }

    // A malformed spec file is skipped with a warning naming it and what is wrong; a device
    // it may have defined is unknown, and the error names the file too.
    std::fs::write(
        dir.join("broken.yaml"),
        "cdiVersion: 0.6.0\nkind: nokind\ndevices: [{name: x}]\n",
    )
    .unwrap();
    let out = with_cdi(
        &d,
        &dir,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--device",
            "example.com/dev=one",
            &bb,
            "true",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken.yaml") && err.contains("malformed") && err.contains("nokind"),
        "{err}"
    );
    let out = with_cdi(
        &d,
        &dir,
        &["run", "--rm", "--device", "nokind.com/x=x", &bb, "true"],
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("skipped spec files") && stderr(&out).contains("broken.yaml"),
        "{}",
        stderr(&out)
    );
}
