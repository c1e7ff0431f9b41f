//! `--format` and `-f` as Docker reads them, rootful, against a real container: Go templates
//! (range over maps, index, if/else, with, variables, pipelines, functions, trim markers),
//! Docker's `table` headers and columns, `json`, and malformed templates (exit 1, as Docker).

mod containers_support;

use containers_support::*;

/// Runs burrow and returns stdout, failing on a non-zero exit.
fn ok(d: &Rootful, args: &[&str]) -> String {
    let out = d.burrow(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn go_templates_tables_and_json_against_a_container() {
    let Some(d) = rootful("format") else { return };
    let name = format!("fmt-{}", std::process::id());
    ok(
        &d,
        &["network", "create", "--subnet", "10.4.78.0/24", "fmtnet"],
    );
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "fmtnet",
            "--ip",
            "10.4.78.7",
            "--label",
            "tier=front",
            "--label",
            "app=shop",
            "-v",
            "/cache",
            &image("busybox"),
            "sleep",
            "300",
        ],
    );
    let inspect = |t: &str| ok(&d, &["inspect", "-f", t, &name]);

    // Range over a map (networks by name), and variables.
    assert_eq!(
        inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"),
        "10.4.78.7\n"
    );
    assert_eq!(
        inspect("{{range $n, $s := .NetworkSettings.Networks}}{{$n}}={{$s.IPAddress}} {{end}}"),
        "fmtnet=10.4.78.7 \n"
    );
    // index, maps' missing keys, len, pipelines, functions, if/else if/else, with.
    assert_eq!(
        inspect(
            "{{index .Config.Labels \"tier\"}} {{.Config.Labels.nope}} {{len .Config.Labels.app}} \
             {{.State.Status | upper}} {{json .Config.Cmd}}"
        ),
        "front <no value> 4 RUNNING [\"sleep\",\"300\"]\n"
    );
    assert_eq!(
        inspect(
            "{{if eq .State.Status \"exited\"}}down{{else if .State.Running}}up{{else}}?{{end}} \
             {{with .Config}}{{join .Cmd \" \"}}{{end}} {{$p := .State.Pid}}{{if gt $p 0}}pid{{end}}"
        ),
        "up sleep 300 pid\n"
    );
    assert_eq!(
        inspect(
            "{{range $k, $v := .Config.Labels -}}\n {{if or (eq $k \"app\") (eq $k \"tier\")}}\
             {{$k}}:{{$v | title}};{{end}}\n{{- end}}"
        ),
        "app:Shop;tier:Front;\n"
    );
    assert_eq!(
        inspect("{{/* a comment */}}{{printf \"%s-%d\" (lower \"AB\") 7}} {{split \"a,b\" \",\"}}"),
        "ab-7 [a b]\n"
    );
    // A missing field of a struct is an error, as in Docker.
    let out = d.burrow(&["inspect", "-f", "{{.Nope}}", &name]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("can't evaluate field Nope"),
        "{}",
        stderr(&out)
    );

    // Malformed templates fail with the template's position, before any output.
    for args in [
        vec!["inspect", "-f", "{{.Name", name.as_str()],
        vec!["ps", "--format", "{{.Names"],
        vec!["images", "--format", "{{if .ID}}"],
    ] {
        let out = d.burrow(&args);
        assert_eq!(code(&out), 1, "{args:?}: {}", stdout(&out));
        assert_eq!(stdout(&out), "", "{args:?}");
        assert!(
            stderr(&out).contains("template parsing error: template: :1: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // `table` templates: Docker's header names and tabwriter columns.
    let filter = format!("name={name}");
    let table = ok(
        &d,
        &[
            "ps",
            "--filter",
            &filter,
            "--format",
            "table {{.Names}}\\t{{.Status}}",
        ],
    );
    let lines: Vec<&str> = table.lines().collect();
    let w = name.len().max("NAMES".len()) + 3;
    assert_eq!(lines.len(), 2, "{table}");
    assert_eq!(
        lines[0],
        format!("{:<w$}STATUS", "NAMES").as_str(),
        "{table}"
    );
    assert!(lines[1].starts_with(&format!("{name:<w$}Up ")), "{table}");
    let default = ok(&d, &["ps", "--filter", &filter]);
    let table = ok(&d, &["ps", "--filter", &filter, "--format", "table"]);
    // The same columns (their widths follow the CREATED text, which can change in between).
    let header = |t: &str| {
        t.lines()
            .next()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(header(&default), header(&table));
    assert!(default.starts_with("CONTAINER ID   IMAGE"), "{default}");
    let json = ok(&d, &["ps", "--filter", &filter, "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["Names"], name.as_str());
    assert_eq!(
        ok(
            &d,
            &["ps", "--filter", &filter, "--format", "{{.Names | upper}}"]
        ),
        format!("{}\n", name.to_uppercase())
    );
    let stats = ok(
        &d,
        &[
            "stats",
            "--no-stream",
            "--format",
            "table {{.Name}}\\t{{.PIDs}}",
            &name,
        ],
    );
    assert!(stats.starts_with("NAME"), "{stats}");
    assert!(
        stats.lines().nth(1).is_some_and(|l| l.starts_with(&name)),
        "{stats}"
    );

    // The other commands' formats.
    let images = ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == image("busybox")), "{images}");
    let images = ok(
        &d,
        &["images", "--format", "table {{.Repository}}\\t{{.Tag}}"],
    );
    let head = images.lines().next().unwrap_or_default();
    let row = images
        .lines()
        .find(|l| l.ends_with(" busybox"))
        .unwrap_or_default();
    assert!(
        head.starts_with("REPOSITORY ") && head.ends_with(" TAG"),
        "{images}"
    );
    assert_eq!(head.find("TAG"), row.find("busybox"), "{images}");
    assert_eq!(
        ok(
            &d,
            &[
                "network",
                "inspect",
                "-f",
                "{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}",
                "fmtnet"
            ]
        ),
        "fmtnet 10.4.78.0/24\n"
    );
    let nets = ok(&d, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|l| l == "fmtnet"), "{nets}");

    // inspect's Config as asked: the entrypoint and cmd apart (not the init's argv), the user
    // as given, exposed ports; Path is the entrypoint.
    let asked = format!("{name}-asked");
    ok(
        &d,
        &[
            "create",
            "--name",
            &asked,
            "--init",
            "--entrypoint",
            "echo",
            "-u",
            "app",
            "--expose",
            "9000",
            "--cap-add",
            "NET_ADMIN",
            "-v",
            "/tmp:/hosttmp:ro",
            "--ulimit",
            "nofile=512:1000",
            "--tmpfs",
            "/scratch:size=1m",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--security-opt",
            "no-new-privileges",
            "--domainname",
            "example.org",
            &image("busybox"),
            "hi",
            "there",
        ],
    );
    let config = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}} {{json .Config.ExposedPorts}} {{.Path}} {{json .Args}}",
            &asked,
        ],
    );
    assert_eq!(
        config.trim(),
        r#"["echo"] ["hi","there"] app {"9000/tcp":{}} echo ["hi","there"]"#
    );
    let host = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .HostConfig.Binds}} {{json .HostConfig.CapAdd}} {{.HostConfig.Privileged}} {{.HostConfig.Init}} [{{.State.Error}}]",
            &asked,
        ],
    );
    assert_eq!(
        host.trim(),
        r#"["/tmp:/hosttmp:ro"] ["NET_ADMIN"] false true []"#
    );
    // The rest of HostConfig as Docker shows it, and which streams `create` attaches.
    let more = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .HostConfig.Ulimits}} {{json .HostConfig.Tmpfs}} {{json .HostConfig.Sysctls}} {{json .HostConfig.SecurityOpt}} {{.HostConfig.Runtime}} {{.Config.Domainname}} {{.Config.AttachStdin}} {{.Config.AttachStdout}}",
            &asked,
        ],
    );
    assert_eq!(
        more.trim(),
        r#"[{"Hard":1000,"Name":"nofile","Soft":512}] {"/scratch":"size=1m"} {"net.ipv4.ip_forward":"1"} ["no-new-privileges=true"] runc example.org false true"#
    );
    ok(&d, &["rm", &asked]);
    // Docker's other ps fields: networks, mounts (a volume's name, cut to 15 characters).
    let fields = ok(
        &d,
        &[
            "ps",
            "--filter",
            &filter,
            "--format",
            "{{.Networks}} {{.LocalVolumes}} {{.Mounts}}",
        ],
    );
    let parts: Vec<&str> = fields.split_whitespace().collect();
    assert_eq!(parts[..2], ["fmtnet", "1"], "{fields}");
    assert!(
        parts[2].chars().count() == 15 && parts[2].ends_with('…'),
        "{fields}"
    );
    // CreatedAt columns print times as Go does (`2026-12-04 09:16:27 +0000 UTC`), as Docker's.
    let go_time = |t: &str| {
        let b = t.as_bytes();
        t.len() == 29 && t.ends_with(" +0000 UTC") && b[4] == b'-' && b[10] == b' ' && b[13] == b':'
    };
    let created = ok(
        &d,
        &["ps", "--filter", &filter, "--format", "{{.CreatedAt}}"],
    );
    assert!(go_time(created.trim()), "{created}");
    let nets = ok(
        &d,
        &["network", "ls", "--format", "{{.Name}}={{.CreatedAt}}"],
    );
    let fmtnet = nets.lines().find_map(|l| l.strip_prefix("fmtnet="));
    assert!(fmtnet.is_some_and(go_time), "{nets}");
    let images = ok(&d, &["images", "--format", "{{.CreatedAt}}"]);
    assert!(images.lines().all(go_time), "{images}");
    ok(&d, &["volume", "create", "--label", "a=b", "fmtvol"]);
    assert_eq!(
        ok(
            &d,
            &[
                "volume",
                "inspect",
                "-f",
                "{{.Labels.a}} {{.Driver}}",
                "fmtvol"
            ]
        ),
        "b local\n"
    );
    let vols = ok(&d, &["volume", "ls", "--format", "{{.Name}} {{.Labels}}"]);
    assert!(vols.lines().any(|l| l == "fmtvol a=b"), "{vols}");
    assert_eq!(
        ok(&d, &["version", "--format", "{{.Client.Version}}"]),
        format!("{}\n", env!("CARGO_PKG_VERSION"))
    );
    let server = ok(&d, &["version", "--format", "{{.Server.Version}}"]);
    assert!(
        !server.trim().is_empty() && !server.contains("no value"),
        "{server}"
    );
    let info = ok(&d, &["info", "--format", "{{.Mode}}"]);
    assert_eq!(info, "rootful\n");
    // Docker's fields too, for scripts written against `docker info` / `docker version`.
    let info = ok(
        &d,
        &[
            "info",
            "--format",
            "{{.Driver}} {{.CgroupVersion}} {{json .SecurityOptions}} {{.Mode}}",
        ],
    );
    assert!(
        info.starts_with("overlayfs ")
            && info.contains("name=seccomp")
            && !info.contains("rootless")
            && info.trim_end().ends_with(" rootful"),
        "{info}"
    );
    assert_eq!(
        ok(
            &d,
            &[
                "version",
                "--format",
                "{{.Client.APIVersion}} {{.Server.APIVersion}}"
            ]
        ),
        "1.44 1.44\n"
    );

    ok(&d, &["rm", "-f", &name]);
    ok(&d, &["volume", "rm", "fmtvol"]);
    ok(&d, &["network", "rm", "fmtnet"]);
}
