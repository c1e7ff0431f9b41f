//! `commit`/`import --change`, `commit --pause`, `pull -a`, `system df`, and the log driver
//! options (`--log-driver none|local|journald`, `--log-opt labels/env`, `logs --details`),
//! rootful against a private containerd with the provisioned test images; and one rootless
//! smoke case.

mod containers_support;

use containers_support::*;

#[test]
fn commit_applies_changes_pauses_and_writes_history() {
    let Some(d) = rootful("mcommit") else { return };
    let bb = image("busybox");
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "live",
        "--network",
        "none",
        "-e",
        "KEEP=1",
        "-l",
        "owner=me",
        "-w",
        "/tmp",
        &bb,
        "sleep",
        "300",
    ]));
    // containerd keeps no event history: watch while committing.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 7;
    let events = d
        .command(&[
            "events",
            "--until",
            &until.to_string(),
            "--filter",
            "container=live",
            "--format",
            "{{.Action}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    ok(&d.burrow(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "with changes",
        "-c",
        r#"ENV A=1 B="two words""#,
        "-c",
        "CMD echo A=$A B=$B in $(pwd) as $(id -u)",
        "-c",
        "EXPOSE 8080 53/udp",
        "-c",
        "LABEL team=misc",
        "-c",
        "WORKDIR /srv",
        "-c",
        "USER 65534",
        "-c",
        "VOLUME /data",
        "-c",
        "STOPSIGNAL SIGINT",
        "-c",
        "HEALTHCHECK --interval=5s --retries=2 CMD true",
        "live",
        "committed:1",
    ]));
    // Paused while committing, running again afterwards.
    let st = ok(&d.burrow(&["inspect", "--format", "{{.State.Status}}", "live"]));
    assert_eq!(st.trim(), "running");
    let events = ok(&events.wait_with_output().unwrap());
    assert_eq!(events, "pause\nunpause\n");
    let cfg = ok(&d.burrow(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        "committed:1",
    ]));
    let cfg: serde_json::Value = serde_json::from_str(cfg.trim()).unwrap();
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&"A=1") && env.contains(&"B=two words"),
        "{cfg}"
    );
    assert_eq!(
        cfg["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(cfg["Labels"]["team"], "misc");
    // The container's own config under the changes (as Docker: what it ran with).
    assert!(env.contains(&"KEEP=1"), "{cfg}");
    assert_eq!(cfg["Labels"]["owner"], "me");
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["User"], "65534");
    assert_eq!(cfg["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(
        cfg["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    let author = ok(&d.burrow(&["image", "inspect", "--format", "{{.Author}}", "committed:1"]));
    assert_eq!(author.trim(), "Ann <ann@example.com>");
    let hist = ok(&d.burrow(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "committed:1",
    ]));
    assert_eq!(
        hist.lines().next().unwrap(),
        "sleep 300|with changes",
        "{hist}"
    );
    // The new image runs with its CMD, ENV, WORKDIR and USER.
    let out = ok(&d.burrow(&["run", "--rm", "--network", "none", "committed:1"]));
    assert_eq!(out.trim(), "A=1 B=two words in /srv as 65534");
    // --pause=false commits it running; an ENTRYPOINT drops the inherited CMD.
    ok(&d.burrow(&[
        "commit",
        "--pause=false",
        "-c",
        r#"ENTRYPOINT ["echo", "ep"]"#,
        "live",
        "committed:2",
    ]));
    let out = ok(&d.burrow(&["run", "--rm", "--network", "none", "committed:2"]));
    assert_eq!(out.trim(), "ep");
    // No changes: the image runs as the container did (its command, environment, directory).
    ok(&d.burrow(&["commit", "--pause=false", "live", "committed:4"]));
    let plain = ok(&d.burrow(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.WorkingDir}} {{.Config.Labels.owner}}",
        "committed:4",
    ]));
    assert_eq!(
        plain.trim(),
        r#"["sleep","300"] ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","KEEP=1"] /tmp me"#
    );
    // Not a config instruction: Docker's error, nothing made.
    let out = d.burrow(&["commit", "-c", "RUN rm -rf /", "live", "committed:3"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("run is not a valid change command"),
        "{}",
        stderr(&out)
    );
    assert_ne!(code(&d.burrow(&["image", "inspect", "committed:3"])), 0);
    d.burrow(&["rm", "-f", "live"]);
}

#[test]
fn import_applies_changes() {
    let Some(d) = rootful("mimport") else { return };
    let bb = image("busybox");
    ok(&d.burrow(&["create", "--name", "src", "--network", "none", &bb]));
    let tar = d.dir.join("src.tar");
    ok(&d.burrow(&["export", "-o", tar.to_str().unwrap(), "src"]));
    ok(&d.burrow(&[
        "import",
        "-c",
        "ENV WHO=imported",
        "-c",
        r#"CMD ["/bin/sh", "-c", "echo $WHO"]"#,
        tar.to_str().unwrap(),
        "imported:1",
    ]));
    let out = ok(&d.burrow(&["run", "--rm", "--network", "none", "imported:1"]));
    assert_eq!(out.trim(), "imported");
    let out = d.burrow(&[
        "import",
        "-c",
        "FROM scratch",
        tar.to_str().unwrap(),
        "imported:2",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("from is not a valid change command"),
        "{}",
        stderr(&out)
    );
    // rmi -f of an image a container uses: untagged, but kept (<none>) for the container,
    // which still inspects and commits; prune takes it once the container is gone.
    ok(&d.burrow(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "imported:1",
    ]));
    let id = ok(&d.burrow(&["image", "inspect", "-f", "{{.Id}}", "imported:1"]));
    let id = id.trim();
    let out = ok(&d.burrow(&["rmi", "-f", "imported:1"]));
    assert!(
        out.contains("Untagged: imported:1") && !out.contains("Deleted"),
        "{out}"
    );
    let dangling = ok(&d.burrow(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]));
    assert!(dangling.lines().any(|l| l == id), "{dangling}");
    ok(&d.burrow(&["commit", "user", "fromkept:1"]));
    ok(&d.burrow(&["rmi", "fromkept:1"]));
    ok(&d.burrow(&["rm", "user"]));
    ok(&d.burrow(&["image", "prune", "-f"]));
    let dangling = ok(&d.burrow(&["images", "-q", "--no-trunc", "--filter", "dangling=true"]));
    assert!(!dangling.lines().any(|l| l == id), "{dangling}");
    d.burrow(&["rm", "-f", "src"]);
}

#[test]
fn pull_all_tags_pulls_every_tag_of_the_repository() {
    let Some(d) = rootful("mpull") else { return };
    let registry = std::env::var("BURROW_TEST_REGISTRY").unwrap_or("127.0.0.1:5000".into());
    let repo = format!("{registry}/burrow-misc-{}/bb", std::process::id());
    let bb = image("busybox");
    for tag in ["one", "two"] {
        let name = format!("{repo}:{tag}");
        ok(&d.burrow(&["tag", &bb, &name]));
        ok(&d.burrow(&["push", &name]));
        ok(&d.burrow(&["rmi", &name]));
    }
    let out = d.burrow(&["pull", "-a", &format!("{repo}:one")]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tag can't be used with --all-tags/-a"),
        "{}",
        stderr(&out)
    );
    let out = ok(&d.burrow(&["pull", "--all-tags", &repo]));
    assert!(
        out.contains("one: Pulling from") && out.contains("two: Pulling from"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap(), repo, "{out}");
    let listed = ok(&d.burrow(&["images", "--format", "{{.Tag}}", &repo]));
    let mut tags: Vec<&str> = listed.lines().collect();
    tags.sort();
    assert_eq!(tags, ["one", "two"], "{listed}");
}

#[test]
fn system_df_counts_images_containers_and_volumes() {
    let Some(d) = rootful("mdf") else { return };
    let bb = image("busybox");
    ok(&d.burrow(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "dfvol:/v",
        &bb,
        "sh",
        "-c",
        "head -c 10000 /dev/zero > /v/f; head -c 5000 /dev/zero > /w",
    ]));
    let out = ok(&d.burrow(&["system", "df"]));
    let head: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        head,
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("Build Cache")
            && l.split_whitespace().skip(2).collect::<Vec<_>>() == ["0", "0", "0B", "0B"]),
        "{out}"
    );
    let json = ok(&d.burrow(&["system", "df", "--format", "json"]));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |t: &str| rows.iter().find(|r| r["Type"] == t).unwrap().clone();
    assert_eq!(row("Local Volumes")["TotalCount"], "1");
    assert_eq!(row("Local Volumes")["Active"], "1");
    assert_eq!(row("Local Volumes")["Size"], "10kB");
    assert_eq!(row("Containers")["TotalCount"], "1");
    assert_eq!(row("Containers")["Active"], "0");
    assert!(
        row("Containers")["Reclaimable"]
            .as_str()
            .unwrap()
            .ends_with("(100%)"),
        "{json}"
    );
    assert_eq!(row("Images")["Active"], "1");
    let out = ok(&d.burrow(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]));
    assert!(out.contains("Local Volumes=1\n"), "{out}");
    let out = ok(&d.burrow(&["system", "df", "-v"]));
    for part in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(out.contains(part), "{out}");
    }
    let vol = out
        .lines()
        .find(|l| l.starts_with("dfvol"))
        .unwrap_or_default();
    assert_eq!(
        vol.split_whitespace().collect::<Vec<_>>(),
        ["dfvol", "1", "10kB"],
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("writer") && l.contains("Exited (0)")),
        "{out}"
    );
    d.burrow(&["rm", "-f", "writer"]);
}

#[test]
fn log_attributes_details_and_drivers() {
    let Some(d) = rootful("mlogs") else { return };
    let bb = image("busybox");
    let opts = [
        "--label",
        "team=a b",
        "--label",
        "other=x",
        "-e",
        "A=1",
        "-e",
        "B_X=2",
        "--log-opt",
        "labels=team",
        "--log-opt",
        "env=A",
        "--log-opt",
        "env-regex=^B_",
    ];
    // Attached (the CLI writes the log) and detached (the shim's log driver does).
    let mut args = vec!["run", "--name", "att", "--network", "none"];
    args.extend(opts);
    args.extend([bb.as_str(), "sh", "-c", "echo out; echo err >&2"]);
    ok(&d.burrow(&args));
    let mut args = vec!["run", "-d", "--name", "det", "--network", "none"];
    args.extend(opts);
    args.extend([bb.as_str(), "echo", "hi"]);
    ok(&d.burrow(&args));
    ok(&d.burrow(&["wait", "det"]));
    let out = d.burrow(&["logs", "--details", "att"]);
    assert_eq!(stdout(&out), "A=1,B_X=2,team=a+b out\n");
    assert_eq!(stderr(&out), "A=1,B_X=2,team=a+b err\n");
    let out = ok(&d.burrow(&["logs", "--details", "det"]));
    assert_eq!(out, "A=1,B_X=2,team=a+b hi\n");
    let out = ok(&d.burrow(&["logs", "-t", "--details", "det"]));
    let (time, rest) = out.split_once(' ').unwrap();
    assert!(
        time.ends_with('Z') && rest == "A=1,B_X=2,team=a+b hi\n",
        "{out}"
    );
    assert_eq!(ok(&d.burrow(&["logs", "det"])), "hi\n");
    // No attributes: Docker's lone space.
    ok(&d.burrow(&[
        "run",
        "--name",
        "plain",
        "--network",
        "none",
        &bb,
        "echo",
        "p",
    ]));
    assert_eq!(ok(&d.burrow(&["logs", "--details", "plain"])), " p\n");

    // none: the output still reaches an attached terminal, nothing is kept.
    let out = ok(&d.burrow(&[
        "run",
        "--name",
        "quiet",
        "--network",
        "none",
        "--log-driver",
        "none",
        &bb,
        "echo",
        "shown",
    ]));
    assert_eq!(out, "shown\n");
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "quiet2",
        "--network",
        "none",
        "--log-driver",
        "none",
        &bb,
        "echo",
        "lost",
    ]));
    ok(&d.burrow(&["wait", "quiet2"]));
    for name in ["quiet", "quiet2"] {
        let out = d.burrow(&["logs", name]);
        assert_ne!(code(&out), 0);
        assert!(
            stderr(&out).contains("configured logging driver does not support reading"),
            "{}",
            stderr(&out)
        );
    }
    // local: kept and read as json-file's.
    ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "loc",
        "--network",
        "none",
        "--log-driver",
        "local",
        &bb,
        "echo",
        "kept",
    ]));
    ok(&d.burrow(&["wait", "loc"]));
    assert_eq!(ok(&d.burrow(&["logs", "loc"])), "kept\n");
    // json-file with a tag: each record's `tag` attribute (logs --details shows it).
    ok(&d.burrow(&[
        "run",
        "--name",
        "tagged",
        "--network",
        "none",
        "--log-opt",
        "tag={{.ImageName}}|{{.Name}}",
        &bb,
        "echo",
        "t",
    ]));
    let details = ok(&d.burrow(&["logs", "--details", "tagged"]));
    assert!(
        details.starts_with("tag=") && details.contains("%7Ctagged t"),
        "{details}"
    );
    // Refused, with the reason, and nothing left behind.
    let refused: &[&[&str]] = &[
        &["--log-driver", "local", "--log-opt", "compress=yes"],
        &["--log-opt", "compress=true"],
        &["--log-driver", "syslog"],
        &["--log-opt", "labels-regex=("],
        &["--log-opt", "tag={{.Name"],
        &["--log-driver", "local", "--log-opt", "tag=x"],
    ];
    for flags in refused {
        let mut args = vec!["run", "--name", "bad", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([bb.as_str(), "true"]);
        let out = d.burrow(&args);
        assert_eq!(code(&out), 125, "{flags:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--log-"), "{}", stderr(&out));
    }
    if !std::path::Path::new("/run/systemd/journal/socket").exists() {
        let out = d.burrow(&[
            "run",
            "--name",
            "bad",
            "--log-driver",
            "journald",
            &bb,
            "true",
        ]);
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("/run/systemd/journal/socket"),
            "{}",
            stderr(&out)
        );
    }
    assert_ne!(
        code(&d.burrow(&["inspect", "bad"])),
        0,
        "a refused run left a container"
    );
    d.burrow(&[
        "rm", "-f", "att", "det", "plain", "quiet", "quiet2", "loc", "tagged",
    ]);
}

/// Set in the private mount namespace [`journald_driver_writes_and_logs_reads_back`] makes.
const IN_JOURNAL_NS: &str = "BURROW_MISC_IN_JOURNAL_NS";

/// journald end to end where this machine has no journal: this test binary again, in a private
/// mount namespace with a systemd-journald of its own (tmpfs over the journal's socket and
/// files), runs [`journald_inside`] with containerd started there too.
#[test]
fn journald_driver_writes_and_logs_reads_back() {
    let journald = std::path::Path::new("/lib/systemd/systemd-journald");
    if !is_root() || !journald.exists() || std::env::var_os(IN_JOURNAL_NS).is_some() {
        eprintln!("SKIP: needs root and {}", journald.display());
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "set -e; mkdir -p /run/systemd/journal /run/log /var/log/journal; \
         for d in /run/systemd/journal /run/log /var/log/journal; do mount -t tmpfs tmpfs $d; done; \
         {j} & jpid=$!; trap 'kill $jpid' EXIT; \
         for i in $(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done; \
         {IN_JOURNAL_NS}=1 {exe} --exact journald_inside --nocapture --test-threads=1",
        j = journald.display(),
        exe = exe.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run: {text}"
    );
    assert!(!text.contains("SKIP"), "the inner test was skipped: {text}");
}

#[test]
fn journald_inside() {
    if std::env::var_os(IN_JOURNAL_NS).is_none() {
        return;
    }
    let Some(d) = rootful("mjournal") else { return };
    let bb = image("busybox");
    let id = ok(&d.burrow(&[
        "run",
        "-d",
        "--name",
        "jd",
        "--network",
        "none",
        "--log-driver",
        "journald",
        "-e",
        "A=1",
        "--log-opt",
        "env=A",
        "--log-opt",
        "tag=app/{{.Name}}",
        &bb,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]));
    ok(&d.burrow(&["wait", "jd"]));
    // Attached runs write the journal too.
    let shown = ok(&d.burrow(&[
        "run",
        "--name",
        "ja",
        "--network",
        "none",
        "--log-driver",
        "journald",
        &bb,
        "echo",
        "att",
    ]));
    assert_eq!(shown, "att\n");
    let id = id.trim();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let out = std::process::Command::new("journalctl")
        .args([
            "--no-pager",
            "-o",
            "json",
            &format!("CONTAINER_ID_FULL={id}"),
        ])
        .output()
        .unwrap();
    let entries: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let out_entry = entries
        .iter()
        .find(|e| e["MESSAGE"] == "out")
        .expect("no entry for out");
    assert_eq!(out_entry["CONTAINER_NAME"], "jd");
    assert_eq!(out_entry["CONTAINER_ID"], &id[..12]);
    assert_eq!(out_entry["PRIORITY"], "6");
    assert_eq!(out_entry["A"], "1");
    assert_eq!(out_entry["SYSLOG_IDENTIFIER"], "app/jd", "--log-opt tag");
    assert_eq!(out_entry["CONTAINER_TAG"], "app/jd");
    let out = d.burrow(&["logs", "jd"]);
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("out\n", "err\n")
    );
    assert_eq!(ok(&d.burrow(&["logs", "--tail", "1", "ja"])), "att\n");
    d.burrow(&["rm", "-f", "jd", "ja"]);
}
