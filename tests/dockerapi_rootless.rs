//! The Docker Engine API (`burrow system service`) as the unprivileged test user on its rootless
//! containerd, driven by clients nobody here wrote: Debian's `docker` CLI (the client only;
//! dockerd never runs) with DOCKER_HOST, and the Python Docker SDK; plus Docker's status codes
//! and messages for bad input, checked with curl.

mod containers_support;
mod dockerapi_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use burrow_testsupport::{wait_for, Cleanup};
use containers_support::*;
use dockerapi_support::*;

#[test]
fn docker_clients_drive_rootless_burrow_through_its_socket() {
    let Some(rl) = rootless("dockerapi") else {
        return;
    };
    let api = service(&rl);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&api.socket), 0o600, "the socket is private");
    assert_eq!(
        mode(api.socket.parent().unwrap()),
        0o700,
        "its directory is private"
    );

    let v = api.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Version}}",
    ]);
    assert!(v.starts_with("1.44 "), "{v}");
    // A client newer than the API (docker 28 speaks 1.51) negotiates down to it.
    if Path::new("/usr/local/bin/docker").exists() {
        let out = api.run(&[
            "/usr/local/bin/docker",
            "version",
            "--format",
            "{{.Client.APIVersion}}",
        ]);
        assert_eq!(stdout(&out).trim(), "1.44", "{}", stderr(&out));
    }

    // run -d -p: the published port answers on the host.
    let port = free_port().to_string();
    let demo = image("demo");
    let publish = format!("{port}:80");
    api.docker_ok(&["run", "-d", "--name", "web", "-p", &publish, &demo]);
    let body = http_get(&format!("127.0.0.1:{port}")).expect("the published port answers");
    assert!(body.contains("Hello"), "{body}");

    // ps with a filter and --format.
    let busybox = image("busybox");
    // `--entrypoint ''` (the client sends [""]): no entrypoint, the command given runs; with
    // none given there is no command, as Docker says.
    let cleared = api.docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "",
        &busybox,
        "echo",
        "cleared",
    ]);
    assert_eq!(cleared, "cleared\n");
    // --runtime: another OCI runtime program by path (runc's own here) runs the container and
    // is what inspect shows; a name that is no program is refused with the way out.
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc is installed");
    api.docker_ok(&[
        "create",
        "--name",
        "rt",
        "--runtime",
        runc,
        &busybox,
        "echo",
        "by path",
    ]);
    assert_eq!(api.docker_ok(&["start", "-a", "rt"]), "by path\n");
    assert_eq!(
        api.docker_ok(&["inspect", "-f", "{{.HostConfig.Runtime}}", "rt"]),
        format!("{runc}\n")
    );
    api.docker_ok(&["rm", "rt"]);
    // docker info lists runc, and crun where it is installed.
    let runtimes = api.docker_ok(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(runtimes.contains("\"runc\""), "{runtimes}");
    assert_eq!(
        runtimes.contains("\"crun\""),
        Path::new("/usr/bin/crun").exists(),
        "{runtimes}"
    );
    let out = api.docker(&["run", "--rm", "--runtime", "nosuchrt", &busybox, "true"]);
    assert!(
        !out.status.success() && stderr(&out).contains("no program \"nosuchrt\" in PATH"),
        "{}",
        stderr(&out)
    );
    // --domainname rootless: runc 1.1 ignores the spec's, and the kernel.domainname sysctl is
    // not writable from a user namespace; burrow's createContainer hook sets it.
    let domain = api.docker_ok(&[
        "run",
        "--rm",
        "--domainname",
        "example.org",
        &busybox,
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(domain, "example.org\n");
    // Image inspect's Config has Docker's always-present fields: a template may read them.
    let fields = api.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "[{{.Config.User}}|{{.Config.Domainname}}|{{.Config.Hostname}}|{{.Config.Tty}}]",
        &busybox,
    ]);
    assert_eq!(fields, "[|||false]\n");
    // A --rm container whose command is missing: Docker's 127, and the wait for its removal
    // has its answer too (the CLI may still cancel that wait first once the start failed,
    // saying "context canceled", as it does with Docker's daemon).
    let missing = api.docker(&["run", "--rm", &busybox, "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("executable file not found")
            && !stderr(&missing).contains("removed before"),
        "{}",
        stderr(&missing)
    );
    // A container whose start failed keeps Docker's code and why (State.ExitCode, State.Error)
    // and still shows as created, until a start succeeds.
    api.docker_ok(&[
        "create",
        "--name",
        "later",
        "-v",
        "laterv:/x",
        &busybox,
        "/x/prog",
    ]);
    let failed = api.docker(&["start", "later"]);
    assert!(!failed.status.success(), "{}", stdout(&failed));
    let state = |name: &str| {
        api.docker_ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}",
            name,
        ])
    };
    let after = state("later");
    assert!(
        after.starts_with("created 127 ") && after.contains("/x/prog"),
        "{after}"
    );
    let ps = api.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=later",
        "--format",
        "{{.Status}}",
    ]);
    assert_eq!(ps.trim(), "Created");
    api.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "laterv:/x",
        &busybox,
        "sh",
        "-c",
        "printf '#!/bin/sh\\nexit 7\\n' > /x/prog && chmod +x /x/prog",
    ]);
    let ran = api.docker(&["start", "-a", "later"]);
    assert_eq!(ran.status.code(), Some(7), "{}", stderr(&ran));
    assert_eq!(state("later").trim_end(), "exited 7");
    api.docker_ok(&["rm", "later"]);
    api.docker_ok(&["volume", "rm", "laterv"]);
    let none = api.docker(&["run", "--rm", "--entrypoint", "", &busybox]);
    assert!(
        !none.status.success() && stderr(&none).contains("no command specified"),
        "{}",
        stderr(&none)
    );
    let script = "echo to-out; echo to-err >&2; sleep 60";
    api.docker_ok(&[
        "run", "-d", "--name", "talker", "--expose", "9000", "-p", "9001", &busybox, "sh", "-c",
        script,
    ]);
    // A running container shows its published ports, and those it only exposes as Docker
    // does (`9000/tcp`, `"9000/tcp": null`).
    let talker_ports = api.docker_ok(&["ps", "--filter", "name=talker", "--format", "{{.Ports}}"]);
    assert!(
        talker_ports.contains("->9001/tcp") && talker_ports.contains("9000/tcp"),
        "{talker_ports}"
    );
    let inspected = api.docker_ok(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "talker"]);
    assert!(inspected.contains(r#""9000/tcp":null"#), "{inspected}");
    let ps = api.docker_ok(&[
        "ps",
        "--filter",
        "name=web",
        "--format",
        "{{.Names}} {{.Status}} {{.Ports}}",
    ]);
    assert!(ps.starts_with("web Up"), "{ps}");
    assert!(ps.contains(&format!(":{port}->80/tcp")), "{ps}");
    assert!(!ps.contains("talker"), "the filter keeps only web: {ps}");
    // Docker's names carry a leading slash, which scripts' filters match; the list's entries
    // name their networks (testcontainers reads a container's address there).
    let ps = api.docker_ok(&[
        "ps",
        "--filter",
        "name=^/web$",
        "--format",
        "{{.Names}} {{.Networks}}",
    ]);
    assert_eq!(ps.trim(), "web bridge");
    // publish= names the container port; values of one key are alternatives.
    let names = |filters: &[&str]| {
        let mut argv = vec!["ps", "--format", "{{.Names}}"];
        for f in filters {
            argv.extend(["--filter", f]);
        }
        let mut v: Vec<String> = api.docker_ok(&argv).lines().map(String::from).collect();
        v.sort();
        v.join(" ")
    };
    assert_eq!(names(&["publish=80"]), "web");
    assert_eq!(names(&["publish=70-90/tcp"]), "web");
    assert_eq!(
        names(&[&format!("publish={port}")]),
        "",
        "not the host port"
    );
    assert_eq!(names(&["expose=80"]), "web");
    assert_eq!(names(&["name=^/web$", "name=^/talker$"]), "talker web");
    let (code, body) = api.curl(
        "GET",
        "/containers/json?filters=%7B%22name%22%3A%5B%22web%22%5D%7D",
        None,
    );
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ip = list[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        .as_str()
        .unwrap_or_default();
    assert!(ip.starts_with("10."), "{body}");

    // logs: the two streams come back apart (Docker's multiplexed framing).
    assert!(wait_for(Duration::from_secs(10), || stdout(
        &api.docker(&["logs", "talker"])
    )
    .contains("to-out")));
    let logs = api.docker(&["logs", "talker"]);
    assert_eq!(stdout(&logs), "to-out\n");
    assert_eq!(stderr(&logs), "to-err\n");

    // logs -f stays open while other clients are answered, and ends when the container stops.
    let mut follow_cleanup = Cleanup::new();
    let mut follow = rl.machine.user_command(docker_bin());
    follow
        .args(["logs", "-f", "talker"])
        .env("DOCKER_CONFIG", rl.home.join(".docker"))
        .env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let follower = follow_cleanup.spawn(&mut follow);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        matches!(follower.try_wait(), Ok(None)),
        "logs -f ended early"
    );
    let ps = api.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.contains("talker"), "{ps}");

    // stop -s: the signal asked for, not the container's stop signal.
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "trapper",
        &busybox,
        "sh",
        "-c",
        "trap 'exit 7' USR1; trap 'exit 9' TERM; while :; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // (The CLI's `-s` is newer than Debian's docker client: the API call it makes.)
    let (code, body) = api.curl(
        "POST",
        "/v1.43/containers/trapper/stop?signal=USR1&t=5",
        None,
    );
    assert_eq!(code, 204, "{body}");
    let exit = api.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", "trapper"]);
    assert_eq!(exit.trim(), "7");
    api.docker_ok(&["rm", "trapper"]);

    // stop, then rm -f of a running and a stopped container.
    api.docker_ok(&["stop", "-t", "1", "talker"]);
    assert!(
        wait_for(Duration::from_secs(10), || matches!(
            follower.try_wait(),
            Ok(Some(_))
        )),
        "logs -f did not end with the container"
    );
    let mut followed = String::new();
    std::io::Read::read_to_string(follower.stdout.as_mut().unwrap(), &mut followed).unwrap();
    assert_eq!(followed, "to-out\n");
    let state = api.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=talker",
        "--format",
        "{{.State}}",
    ]);
    assert_eq!(state.trim(), "exited");
    // A stopped container's bindings went with its network: ps, inspect and port show none,
    // HostConfig keeps what was asked.
    let stopped = api.docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=talker",
        "--format",
        "[{{.Ports}}]",
    ]);
    assert_eq!(stopped.trim(), "[]");
    let inspected = api.docker_ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Ports}} {{len .HostConfig.PortBindings}}",
        "talker",
    ]);
    assert_eq!(inspected.trim(), "{} 1");
    assert_eq!(api.docker_ok(&["port", "talker"]), "");
    api.docker_ok(&["rm", "-f", "web", "talker"]);
    assert_eq!(api.docker_ok(&["ps", "-aq"]).trim(), "");

    // A restart policy: the monitor starts it again, on-failure:2 twice.
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        &busybox,
        "sh",
        "-c",
        "exit 3",
    ]);
    let restarts = || {
        api.docker_ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
    };
    assert!(
        wait_for(Duration::from_secs(20), || restarts().trim() == "2 exited"),
        "{}",
        restarts()
    );
    // The count is recorded before the last start: let that start and exit before removing
    // (rm -f racing the restart monitor's start is the CLI's behaviour too).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(restarts().trim(), "2 exited");
    api.docker_ok(&["rm", "-f", "flaky"]);

    // images, and a pull from the local registry.
    let images = api.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("burrow-import:demo"), "{images}");
    // Fields the docker CLI's templates index and parse as they are (a time that never was is
    // Go's zero time, not an empty string, which the CLI fails to parse).
    let fields = api.docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{.GraphDriver.Name}} {{.Metadata.LastTagTime}}",
        &busybox,
    ]);
    assert!(
        fields.starts_with("overlayfs ") || fields.starts_with("native "),
        "{fields}"
    );
    let remote = format!("{}/burrow-test/busybox:latest", rl.machine.registry);
    let pulled = api.docker_ok(&["pull", &remote]);
    assert!(pulled.contains("Status:"), "{pulled}");
    let images = api.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains(&remote), "{images}");
    // The list's filters: a reference (the CLI's argument), dangling (none here, and the
    // cleanup idiom `docker rmi $(docker images -qf dangling=true)` must not list them all).
    let only = api.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}", &remote]);
    assert_eq!(
        only.trim(),
        remote.trim_end_matches(":latest").to_string() + ":latest"
    );
    assert_eq!(
        api.docker_ok(&["images", "-q", "--filter", "dangling=true"]),
        ""
    );
    let either = api.docker_ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        "reference=burrow-import",
        "--filter",
        &format!("reference={remote}"),
    ]);
    assert!(
        either.contains("burrow-import") && either.contains("burrow-test/busybox"),
        "{either}"
    );
    assert_eq!(
        api.docker_ok(&["images", "-q", "--filter", "label=no.such.label"]),
        ""
    );
    let refused = api.docker(&["images", "--filter", "colour=red"]);
    assert!(
        stderr(&refused).contains("unsupported filter"),
        "{}",
        stderr(&refused)
    );
    // Time filters (the test images were made on 2023-11-14): before/since an image, until.
    let ids = |f: &str| api.docker_ok(&["images", "-q", "--filter", f]);
    assert_eq!(ids(&format!("since={remote}")), "");
    assert_eq!(ids(&format!("before={remote}")), "");
    assert!(!ids("until=2023-11-15").is_empty());
    assert_eq!(ids("until=2023-11-14"), "");
    let unknown = api.docker(&["images", "--filter", "since=nosuch:1"]);
    assert!(
        stderr(&unknown).contains("no such image"),
        "{}",
        stderr(&unknown)
    );
    let missing = format!("{}/burrow-test/nosuch:latest", rl.machine.registry);
    let failed = api.docker(&["pull", &missing]);
    assert!(!failed.status.success(), "{}", stdout(&failed));
    // A pull that fails before it began is the answer's status (SDKs raise on it).
    let (code, body) = api.curl(
        "POST",
        &format!(
            "/images/create?fromImage={}/burrow-test/nosuch&tag=latest",
            rl.machine.registry
        ),
        None,
    );
    assert_eq!(code, 404, "{body}");
    // A platform the image is not of: not run as the host's (the client's pull for it fails).
    let other = api.docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/s390x",
        &busybox,
        "uname",
        "-m",
    ]);
    assert!(!other.status.success(), "{}", stdout(&other));
    assert!(!stdout(&other).contains("x86_64"), "{}", stdout(&other));
    // inspect of a name nothing has: Docker's "No such object" (after asking for a plugin).
    let nothing = api.docker(&["inspect", "no-such-object"]);
    assert!(
        stderr(&nothing).contains("No such object: no-such-object"),
        "{}",
        stderr(&nothing)
    );

    // volumes and networks.
    api.docker_ok(&["volume", "create", "apivol"]);
    assert!(api
        .docker_ok(&["volume", "ls", "-q"])
        .lines()
        .any(|l| l == "apivol"));
    // The list's filters: dangling (the cleanup idiom), name, label.
    let dangling = api.docker_ok(&[
        "volume",
        "ls",
        "-q",
        "-f",
        "dangling=true",
        "-f",
        "name=apiv",
    ]);
    assert_eq!(dangling.trim(), "apivol");
    assert_eq!(
        api.docker_ok(&["volume", "ls", "-q", "-f", "label=no.such"]),
        ""
    );
    api.docker_ok(&["volume", "rm", "apivol"]);
    assert!(!api.docker_ok(&["volume", "ls", "-q"]).contains("apivol"));
    api.docker_ok(&["network", "create", "apinet"]);
    let nets = api.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.lines().any(|l| l == "apinet"), "{nets}");
    // The list's filters: a network no container is on is dangling; builtin is the default.
    let dangling = api.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "-f",
        "dangling=true",
    ]);
    assert!(
        dangling.lines().any(|l| l == "apinet") && !dangling.contains("bridge"),
        "{dangling}"
    );
    let builtin = api.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "-f",
        "type=builtin",
    ]);
    assert_eq!(builtin.trim(), "bridge");
    api.docker_ok(&["network", "rm", "apinet"]);
    assert!(!api.docker_ok(&["network", "ls"]).contains("apinet"));

    // Bad input: Docker's status codes and messages.
    let (code, body) = api.curl("POST", "/v1.43/containers/create", Some("{not json"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = api.curl("GET", "/containers/nosuch/json", None);
    assert_eq!(
        (code, body.as_str()),
        (404, r#"{"message":"No such container: nosuch"}"#)
    );
    let create = format!(r#"{{"Image":"{busybox}","Cmd":["true"]}}"#);
    let (code, body) = api.curl("POST", "/containers/create?name=dup", Some(&create));
    assert_eq!(code, 201, "{body}");
    let (code, body) = api.curl("POST", "/containers/create?name=dup", Some(&create));
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains(r#"The container name \"/dup\" is already in use"#),
        "{body}"
    );
    let conflict = api.docker(&["run", "-d", "--name", "dup", &busybox]);
    assert_eq!(code_of(&conflict), 125, "{}", stderr(&conflict));
    assert!(
        stderr(&conflict).contains("Conflict"),
        "{}",
        stderr(&conflict)
    );
    let (code, body) = api.curl("GET", "/containers/dup/attach/ws", None);
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("GET /containers/{id}/attach/ws"), "{body}");
    let (code, _) = api.curl("GET", "/v1.99/version", None);
    assert_eq!(code, 400, "a version above burrow's is refused");
    api.docker_ok(&["rm", "dup"]);

    // The Python Docker SDK.
    let py = format!(
        "import docker\n\
         c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
         assert c.ping()\n\
         ct = c.containers.run('{busybox}', ['sh', '-c', 'echo from-python'], detach=True, name='py')\n\
         assert ct.wait()['StatusCode'] == 0\n\
         print(ct.logs().decode(), end='')\n\
         ct.remove()\n\
         assert not c.containers.list(all=True)\n",
        sock = api.socket.display()
    );
    let out = api.run(&["/usr/bin/python3", "-c", &py]);
    assert!(
        out.status.success(),
        "the Python SDK (python3-docker, see tests/provision.sh): {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "from-python\n");

    // --timeout: a service no client uses ends by itself, its socket gone.
    let idle = rl.runtime_dir.join("burrow/idle.sock");
    let mut cleanup = Cleanup::new();
    let mut cmd = rl.machine.user_command(&rl.burrow);
    cmd.args(["system", "service", "--timeout", "1", "--listen"])
        .arg(format!("unix://{}", idle.display()))
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .stderr(std::process::Stdio::null());
    let child = cleanup.spawn(&mut cmd);
    assert!(
        wait_for(Duration::from_secs(15), || matches!(
            child.try_wait(),
            Ok(Some(_))
        )),
        "the idle service did not end"
    );
    assert!(!idle.exists());
}

fn code_of(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}
