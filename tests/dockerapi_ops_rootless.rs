//! The Docker API's operations endpoints as the unprivileged test user, driven by the docker
//! CLI (client only) and the Python SDK: cp both ways (archive GET/HEAD/PUT), top, stats,
//! diff, export, events with since/until, system df, the prunes, network connect/disconnect.

mod containers_support;
mod dockerapi_support;

use std::process::{Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burrow_testsupport::{wait_for, Cleanup, TestMachine};
use containers_support::*;
use dockerapi_support::*;

/// `docker ARGS` as the test user on the socket, started and not waited for.
fn spawn_docker(api: &Api, args: &[&str]) -> std::process::Child {
    let rl = api.rl;
    rl.machine
        .user_command(docker_bin())
        .args(args)
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .env("DOCKER_CONFIG", rl.home.join(".docker"))
        .env("DOCKER_HOST", format!("unix://{}", api.socket.display()))
        .current_dir(&rl.home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker starts")
}

fn sh(api: &Api, script: &str) -> String {
    let out = api.run(&["sh", "-c", script]);
    assert!(
        out.status.success(),
        "{script}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn failed(o: &Output) -> bool {
    !o.status.success()
}

#[test]
fn docker_cli_ops_through_burrows_socket() {
    let Some(rl) = rootless("dockerapi-ops") else {
        return;
    };
    let api = service(&rl);
    let busybox = image("busybox");

    // events: a bounded stream, started first, collected at the end.
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (since, until) = (t0.to_string(), (t0 + 12).to_string());
    let events = spawn_docker(
        &api,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    api.docker_ok(&["run", "-d", "--name", "evt", &busybox, "true"]);
    // What the service does to a container itself shows too: kill, stop, restart.
    let trap = "trap 'exit 0' TERM; sleep 300 & wait";
    api.docker_ok(&["run", "-d", "--name", "evr", &busybox, "sh", "-c", trap]);
    api.docker_ok(&["restart", "-t", "5", "evr"]);
    api.docker_ok(&["rm", "-f", "evr"]);

    // cp into a running container and back out: a file and a directory.
    api.docker_ok(&["run", "-d", "--name", "cpc", &busybox, "sleep", "300"]);
    sh(
        &api,
        "mkdir -p tree/sub && echo deep > tree/sub/f && echo one > file1",
    );
    api.docker_ok(&["cp", "file1", "cpc:/tmp/"]);
    api.docker_ok(&["cp", "tree", "cpc:/tmp/tree"]);
    api.docker_ok(&["cp", "cpc:/tmp/file1", "back1"]);
    api.docker_ok(&["cp", "cpc:/tmp/tree", "backtree"]);
    api.docker_ok(&["cp", "cpc:/etc/.", "etcfiles"]);
    assert_eq!(
        sh(
            &api,
            "cat back1 backtree/sub/f; ls etcfiles | grep -x passwd"
        ),
        "one\ndeep\npasswd\n"
    );
    // HEAD: the path's stat, 404 when nothing is there; docker cp into a missing directory fails.
    let sock = api.socket.display().to_string();
    let head = |path: &str| {
        let url = format!("http://d/containers/cpc/archive?path={path}");
        let out = api.run(&[
            "curl",
            "-s",
            "-I",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
            &sock,
            &url,
        ]);
        stdout(&out)
    };
    assert_eq!(head("/tmp/file1"), "200");
    assert_eq!(head("/nosuch"), "404");
    let out = api.docker(&["cp", "file1", "cpc:/nosuch/dir/x"]);
    assert!(failed(&out), "{}", stdout(&out));
    // PUT with noOverwriteDirNonDir: a file over the directory /tmp/tree is refused (400).
    sh(
        &api,
        "mkdir -p clash && echo x > clash/tree && tar -C clash -cf clash.tar tree",
    );
    let put = |flag: &str| {
        let url = format!("http://d/containers/cpc/archive?path=/tmp&noOverwriteDirNonDir={flag}");
        let out = api.run(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "--unix-socket",
            &sock,
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            "@clash.tar",
            &url,
        ]);
        stdout(&out)
    };
    assert_eq!(put("true"), "400");
    let (code, body) = api.curl("PUT", "/containers/cpc/archive?path=/tmp/file1", Some("x"));
    assert_eq!(code, 400, "a file is no extraction point: {body}");

    // top, diff, export.
    let top = api.docker_ok(&["top", "cpc"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 300"), "{top}");
    let top = api.docker_ok(&["top", "cpc", "-o", "pid,args"]);
    assert!(
        top.lines().count() == 2 && top.contains("sleep 300"),
        "{top}"
    );
    let sizes = api.docker_ok(&[
        "container",
        "inspect",
        "--size",
        "-f",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "cpc",
    ]);
    let sizes: Vec<u64> = sizes
        .split_whitespace()
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    assert!(
        sizes.len() == 2 && sizes[0] > 0 && sizes[1] > sizes[0],
        "{sizes:?}"
    );
    let listed = api.docker_ok(&["ps", "--filter", "is-task=false", "--format", "{{.Names}}"]);
    assert!(listed.lines().any(|l| l == "cpc"), "{listed}");
    let diff = api.docker_ok(&["diff", "cpc"]);
    assert!(diff.lines().any(|l| l == "A /tmp/file1"), "{diff}");
    // The runtime's mount points are not the container's changes (Docker's init layer).
    for made in [
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/sys",
    ] {
        assert!(
            !diff.lines().any(|l| l.ends_with(&format!(" {made}"))),
            "{made} in:\n{diff}"
        );
    }
    api.docker_ok(&["export", "-o", "cpc.tar", "cpc"]);
    assert!(sh(&api, "tar tf cpc.tar")
        .lines()
        .any(|l| l == "etc/passwd"));

    // import: the exported filesystem back as an image (the body, fromSrc=-), with a change and
    // a message; and from stdin.
    let id = api.docker_ok(&[
        "import",
        "-c",
        "ENV FROM_IMPORT=yes",
        "-m",
        "from export",
        "cpc.tar",
        "opsimport:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = api.docker_ok(&[
        "run",
        "--rm",
        "opsimport:1",
        "sh",
        "-c",
        "cat /tmp/file1; echo $FROM_IMPORT",
    ]);
    assert_eq!(out, "one\nyes\n");
    let comment = api.docker_ok(&["history", "--format", "{{.Comment}}", "opsimport:1"]);
    assert_eq!(comment.trim(), "from export");
    sh(
        &api,
        &format!("{} import - opsimport:2 < cpc.tar", docker_bin()),
    );
    let arch = api.docker_ok(&[
        "image",
        "inspect",
        "opsimport:2",
        "--format",
        "{{.Os}}/{{.Architecture}}",
    ]);
    assert!(arch.starts_with("linux/"), "{arch}");
    let (code, body) = api.curl(
        "POST",
        "/images/create?fromSrc=-&repo=opsimport&tag=3",
        None,
    );
    assert_eq!(code, 400, "an empty body is no tarball: {body}");
    let (code, body) = api.curl(
        "POST",
        "/images/create?fromSrc=-&repo=UPPER",
        Some("not a tar"),
    );
    assert_eq!(code, 400, "a bad name is the client's: {body}");
    assert!(body.contains("invalid reference format"), "{body}");

    // --volumes-from and --device through the API's HostConfig.
    api.docker_ok(&[
        "run",
        "--name",
        "volsrc",
        "-v",
        "opsvol:/data",
        &busybox,
        "sh",
        "-c",
        "echo v > /data/f",
    ]);
    let out = api.docker_ok(&[
        "run",
        "--name",
        "volsink",
        "--volumes-from",
        "volsrc:ro",
        "--device",
        "/dev/zero:/dev/z",
        &busybox,
        "sh",
        "-c",
        "cat /data/f; head -c 5 /dev/z | wc -c; touch /data/g 2>/dev/null || echo ro",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["v", "5", "ro"],
        "{out}"
    );
    let hc = api.docker_ok(&[
        "inspect",
        "volsink",
        "--format",
        "{{.HostConfig.VolumesFrom}} {{range .HostConfig.Devices}}{{.PathOnHost}}:{{.PathInContainer}}:{{.CgroupPermissions}}{{end}}",
    ]);
    assert_eq!(hc.trim(), "[volsrc:ro] /dev/zero:/dev/z:rwm");
    // --mac-address and --stop-timeout, --log-opt without --log-driver (an empty LogConfig.Type).
    let out = api.docker_ok(&[
        "run",
        "--name",
        "macd",
        "--mac-address",
        "02:42:ac:11:00:99",
        "--stop-timeout",
        "4",
        "--log-opt",
        "max-size=1k",
        &busybox,
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out, "02:42:ac:11:00:99\n");
    let cfg = api.docker_ok(&[
        "inspect",
        "macd",
        "--format",
        "{{.Config.StopTimeout}} {{json .HostConfig.LogConfig.Config}}",
    ]);
    assert_eq!(cfg.trim(), r#"4 {"max-size":"1k"}"#);
    api.docker_ok(&["rm", "macd"]);
    // The container's own loopback is up: a server on 127.0.0.1 answers it.
    let out = api.docker_ok(&[
        "run",
        "--rm",
        &busybox,
        "sh",
        "-c",
        "httpd -p 127.0.0.1:81 -h /etc; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 81 | head -1",
    ]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // A host port published twice: the second run fails saying so, once.
    let port = format!("127.0.0.1:{}:80", free_port());
    api.docker_ok(&[
        "run", "-d", "--name", "pub1", "-p", &port, &busybox, "sleep", "60",
    ]);
    let out = api.docker(&[
        "run", "-d", "--name", "pub2", "-p", &port, &busybox, "sleep", "60",
    ]);
    let err = stderr(&out);
    assert!(
        !out.status.success()
            && err.contains("already published")
            && err.contains(&format!(
                "Bind for {} failed: port is already allocated",
                port.trim_end_matches(":80")
            )),
        "{err}"
    );
    assert_eq!(
        err.matches("runc create failed").count(),
        1,
        "said twice: {err}"
    );
    api.docker_ok(&["rm", "-f", "pub1", "pub2"]);
    // Once a container exits by itself (here through `docker kill`), its port is free for
    // another, as with Docker; it restarts with it again.
    api.docker_ok(&[
        "run", "-d", "--name", "pub3", "-p", &port, &busybox, "sleep", "60",
    ]);
    api.docker_ok(&["kill", "pub3"]);
    let taken = wait_for(Duration::from_secs(20), || {
        let run = [
            "run", "-d", "--name", "pub4", "-p", &port, &busybox, "sleep", "60",
        ];
        // A refused start leaves the container created (as with Docker): removed to try again.
        let started = api.docker(&run).status.success();
        if !started {
            api.docker(&["rm", "-f", "pub4"]);
        }
        started
    });
    assert!(taken, "the killed container kept its port");
    api.docker_ok(&["rm", "-f", "pub4"]);
    api.docker_ok(&["start", "pub3"]);
    let ports = api.docker_ok(&["port", "pub3"]);
    assert!(ports.contains(port.trim_end_matches(":80")), "{ports}");
    api.docker_ok(&["rm", "-f", "pub3"]);
    // A published port answers other containers on their gateway too (as Docker's proxy does).
    let gw_port = free_port().to_string();
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "gwweb",
        "-p",
        &format!("{gw_port}:80"),
        &busybox,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    let via_gateway = api.docker_ok(&[
        "run", "--rm", &busybox, "sh", "-c",
        &format!("for i in 1 2 3 4 5; do wget -q -O- http://$(ip route | awk '/default/{{print $3}}'):{gw_port}/hostname && break; sleep 0.3; done"),
    ]);
    let web_id = api.docker_ok(&["inspect", "-f", "{{.Id}}", "gwweb"]);
    assert_eq!(via_gateway.trim(), &web_id.trim()[..12], "{via_gateway}");
    api.docker_ok(&["rm", "-f", "gwweb"]);
    api.docker_ok(&["rm", "volsrc", "volsink"]);

    // --ipc shareable: the donor's /dev/shm (of its --shm-size) is what a container joining its
    // IPC namespace sees; a private one cannot be joined (Docker's rule); a new start has a
    // fresh one, and nothing stays mounted in the launcher once the donor is gone.
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "shmd",
        "--ipc",
        "shareable",
        "--shm-size",
        "8m",
        &busybox,
        "sleep",
        "300",
    ]);
    api.docker_ok(&["exec", "shmd", "sh", "-c", "echo shared > /dev/shm/f"]);
    let seen = api.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:shmd",
        &busybox,
        "sh",
        "-c",
        "cat /dev/shm/f; df -k /dev/shm | tail -1",
    ]);
    let mut lines = seen.lines();
    assert_eq!(lines.next(), Some("shared"), "{seen}");
    assert!(lines.next().is_some_and(|l| l.contains(" 8192 ")), "{seen}");
    // Joining a container that joined the donor joins the donor's (followed, as with Docker).
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "shmj",
        "--ipc",
        "container:shmd",
        &busybox,
        "sleep",
        "300",
    ]);
    let seen = api.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:shmj",
        &busybox,
        "cat",
        "/dev/shm/f",
    ]);
    assert_eq!(seen, "shared\n");
    api.docker_ok(&["rm", "-f", "shmj"]);
    api.docker_ok(&["run", "-d", "--name", "shmp", &busybox, "sleep", "300"]);
    let out = api.docker(&["run", "--rm", "--ipc", "container:shmp", &busybox, "true"]);
    assert!(
        !out.status.success() && stderr(&out).contains("non-shareable IPC"),
        "{}",
        stderr(&out)
    );
    // --ipc host: the host's /dev/shm, in the container and in one that joins it (and its
    // host PID namespace: both joined by keeping the host's).
    let host_shm = format!("/dev/shm/burrow-ipc-test-{}", std::process::id());
    std::fs::write(&host_shm, "from-the-host\n").unwrap();
    let mut gone = Cleanup::new();
    let mut rm = std::process::Command::new("rm");
    rm.args(["-f", &host_shm]);
    gone.run_on_drop(rm);
    api.docker_ok(&[
        "run", "-d", "--name", "shmh", "--ipc", "host", "--pid", "host", &busybox, "sleep", "300",
    ]);
    let seen = api.docker_ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:shmh",
        "--pid",
        "container:shmh",
        &busybox,
        "sh",
        "-c",
        // The donor's `sleep 300` is seen: not a PID namespace of the joiner's own.
        &format!("cat {host_shm}; ps | grep -q '[s]leep 300' && echo sees-the-donor"),
    ]);
    assert_eq!(seen, "from-the-host\nsees-the-donor\n");
    api.docker_ok(&["rm", "-f", "shmh"]);
    api.docker_ok(&["restart", "-t", "1", "shmd"]);
    let fresh = api.docker_ok(&["exec", "shmd", "ls", "-A", "/dev/shm"]);
    assert_eq!(fresh, "", "a new start has a fresh /dev/shm");
    let shmd = api.docker_ok(&["inspect", "-f", "{{.Id}}", "shmd"]);
    api.docker_ok(&["rm", "-f", "shmd", "shmp"]);
    let child = std::fs::read_to_string(api.rl.runtime_dir.join("containerd-rootless/child_pid"))
        .expect("the launcher's child pid");
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", child.trim())).unwrap();
    assert!(
        !mounts.contains(shmd.trim()),
        "still mounted in the launcher:\n{mounts}"
    );
    api.docker_ok(&["volume", "rm", "opsvol"]);

    // stats: rootless containers have no cgroups on cgroup v1, which is said, not zeros.
    let stats = api.docker(&["stats", "--no-stream", "cpc"]);
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert!(stats.status.success(), "{}", stderr(&stats));
        assert!(stdout(&stats).contains("cpc"), "{}", stdout(&stats));
    } else {
        let (code, body) = api.curl("GET", "/containers/cpc/stats?stream=false", None);
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("cgroup v1"), "{body}");
    }

    // The Python SDK: get_archive and top.
    let py = format!(
        "import docker, io, tarfile\n\
         c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
         ct = c.containers.get('cpc')\n\
         bits, st = ct.get_archive('/tmp/file1')\n\
         assert st['name'] == 'file1' and st['size'] == 4, st\n\
         t = tarfile.open(fileobj=io.BytesIO(b''.join(bits)))\n\
         print(t.extractfile('file1').read().decode(), end='')\n\
         assert any('sleep' in p[-1] for p in ct.top()['Processes'])\n"
    );
    let out = api.run(&["/usr/bin/python3", "-c", &py]);
    assert_eq!(stdout(&out), "one\n", "{}", stderr(&out));

    // A stopped container: cp both ways through its snapshot.
    api.docker_ok(&["stop", "-t", "1", "cpc"]);
    api.docker_ok(&["cp", "file1", "cpc:/tmp/file2"]);
    api.docker_ok(&["cp", "cpc:/tmp/file2", "back2"]);
    assert_eq!(sh(&api, "cat back2"), "one\n");

    // commit (with a change) and update.
    api.docker_ok(&[
        "commit",
        "-c",
        "ENV MARK=committed",
        "-m",
        "ops",
        "cpc",
        "opsimg:1",
    ]);
    let env = api.docker_ok(&[
        "image",
        "inspect",
        "opsimg:1",
        "--format",
        "{{.Config.Env}}",
    ]);
    assert!(env.contains("MARK=committed"), "{env}");
    // A config in the body (the SDK's commit(conf=...)) is the image's, with the changes over
    // it and the container's config filling what it leaves out.
    let py = format!(
        "import docker\n\
         c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
         img = c.containers.get('cpc').commit(repository='opsimg', tag='2', changes=['ENV MARK=2'], conf={{'Cmd': ['echo', 'from-body'], 'Labels': {{'via': 'body'}}, 'Hostname': 'ignored'}})\n\
         cfg = img.attrs['Config']\n\
         print(cfg['Cmd'], cfg['Labels']['via'], [e for e in cfg['Env'] if e.startswith('MARK')])\n\
         print(c.containers.run('opsimg:2', remove=True).decode(), end='')\n"
    );
    let out = api.run(&["/usr/bin/python3", "-c", &py]);
    assert_eq!(
        stdout(&out),
        "['echo', 'from-body'] body ['MARK=2']\nfrom-body\n",
        "{}",
        stderr(&out)
    );
    // Distribution inspect (the SDK's get_registry_data): the registry's descriptor of a name
    // and its platforms (an index's entries; one image's from its config); a missing one 404.
    if let Some(m) = TestMachine::get() {
        let py = format!(
            "import docker\n\
             c = docker.DockerClient(base_url='unix://{sock}', version='auto')\n\
             multi = c.images.get_registry_data('{multi}')\n\
             one = c.images.get_registry_data('{one}')\n\
             print(multi.id.startswith('sha256:'), multi.has_platform('linux/amd64'), multi.has_platform('linux/arm64'), multi.has_platform('linux/s390x'))\n\
             print(one.has_platform('linux/amd64'), one.attrs['Descriptor']['size'] > 0)\n\
             try:\n    c.images.get_registry_data('{reg}/burrow-test/nosuch:1')\n\
             except docker.errors.APIError as e:\n    print(e.status_code)\n",
            multi = m.image_multiarch,
            one = m.image_busybox,
            reg = m.registry,
        );
        let out = api.run(&["/usr/bin/python3", "-c", &py]);
        assert_eq!(
            stdout(&out),
            "True True True False\nTrue True\n404\n",
            "{}",
            stderr(&out)
        );
    }
    api.docker_ok(&["update", "--restart", "on-failure:2", "cpc"]);
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        let out = api.docker(&["update", "--memory", "64m", "cpc"]);
        assert!(stderr(&out).contains("cgroup v1"), "{}", stderr(&out));
    }
    // CpuShares is a limit like Memory (409 where no cgroup can be had); what burrow does not
    // set is refused by name.
    let (code, body) = api.curl(
        "POST",
        "/containers/cpc/update",
        Some(r#"{"CpuShares":512}"#),
    );
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("cgroup v1"), "{body}");
    }
    // Pausing likewise needs a cgroup (the freezer): 409 saying so where there is none.
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        api.docker_ok(&["run", "-d", "--name", "pz", &busybox, "sleep", "60"]);
        let (code, body) = api.curl("POST", "/containers/pz/pause", None);
        assert_eq!(code, 409, "{body}");
        assert!(body.contains("freezer"), "{body}");
        let out = api.docker(&["pause", "pz"]);
        assert!(stderr(&out).contains("freezer"), "{}", stderr(&out));
        api.docker_ok(&["rm", "-f", "pz"]);
    }
    let (code, body) = api.curl(
        "POST",
        "/containers/cpc/update",
        Some(r#"{"CpuRealtimeRuntime":1000}"#),
    );
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("CpuRealtimeRuntime"), "{body}");

    // network connect: a running container joins a network live and answers there by name.
    // Network and volume events are burrow's own: a second bounded stream sees them.
    let t1 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let until1 = (t1 + 15).to_string();
    let own_events = spawn_docker(
        &api,
        &[
            "events",
            "--until",
            &until1,
            "--filter",
            "type=network",
            "--filter",
            "type=volume",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let demo = image("demo");
    api.docker_ok(&["network", "create", "opsnet"]);
    api.docker_ok(&["run", "-d", "--name", "srv", &demo]);
    api.docker_ok(&["network", "connect", "--alias", "web2", "opsnet", "srv"]);
    let members = || {
        api.docker_ok(&[
            "network",
            "inspect",
            "opsnet",
            "--format",
            "{{range .Containers}}{{.Name}} {{end}}",
        ])
    };
    assert!(members().contains("srv"), "{}", members());
    let probe = |name: &str, host: &str| {
        let url = format!("http://{host}/");
        api.docker_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "opsnet",
            &busybox,
            "wget",
            "-qO-",
            &url,
        ]);
        api.docker_ok(&["wait", name]).trim().to_string()
    };
    assert_eq!(probe("probe1", "srv"), "0");
    assert!(api.docker_ok(&["logs", "probe1"]).contains("Hello"));
    assert_eq!(probe("probe2", "web2"), "0", "the alias answers");
    let out = api.docker(&["network", "connect", "opsnet", "srv"]);
    assert!(failed(&out), "connecting twice is refused");
    api.docker_ok(&["network", "disconnect", "opsnet", "srv"]);
    assert!(!members().contains("srv"), "{}", members());
    // docker run --link (HostConfig.Links): the alias resolves, Docker's variables are set.
    let linked = api.docker_ok(&[
        "run",
        "--rm",
        "--link",
        "srv:web",
        &busybox,
        "sh",
        "-c",
        "echo $WEB_NAME; grep -cw web /etc/hosts",
    ]);
    let lines: Vec<&str> = linked.lines().collect();
    assert!(lines[0].ends_with("/web") && lines[1] == "1", "{linked}");
    // docker network create --internal -o MTU (Internal, Options): the container's interface
    // has that MTU, and no default route.
    api.docker_ok(&[
        "network",
        "create",
        "--internal",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "apinet",
    ]);
    assert_eq!(
        api.docker_ok(&["network", "inspect", "-f", "{{.Internal}}", "apinet"])
            .trim(),
        "true"
    );
    let seen = api.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "apinet",
        &busybox,
        "sh",
        "-c",
        "cat /sys/class/net/eth0/mtu; ip route | grep -c default; true",
    ]);
    assert_eq!(seen, "1400\n0\n");
    api.docker_ok(&["network", "rm", "apinet"]);
    // A stopped container is connected for its next start.
    api.docker_ok(&["network", "connect", "opsnet", "cpc"]);
    api.docker_ok(&["network", "disconnect", "opsnet", "cpc"]);

    // system df; its containers carry their mounts (the docker CLI counts LOCAL VOLUMES of
    // `df -v` from the local-driver ones).
    api.docker_ok(&["create", "--name", "dfvol", "-v", "dfv:/d", &busybox]);
    let df = api.docker_ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert!(df.lines().any(|l| l.starts_with("Images ")), "{df}");
    assert!(df.lines().any(|l| l.starts_with("Containers ")), "{df}");
    assert!(df.lines().any(|l| l.starts_with("Local Volumes ")), "{df}");
    let (code, body) = api.curl("GET", "/system/df", None);
    assert_eq!(code, 200, "{body}");
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mounts = df["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"][0] == "/dfvol")
        .map(|c| c["Mounts"].clone());
    assert_eq!(
        mounts.as_ref().map(|m| (&m[0]["Name"], &m[0]["Driver"])),
        Some((&serde_json::json!("dfv"), &serde_json::json!("local"))),
        "{body}"
    );
    api.docker_ok(&["rm", "dfvol"]);
    api.docker_ok(&["volume", "rm", "dfv"]);

    // prunes: stopped containers go, running ones stay; named volumes stay unless all=true.
    let pruned = api.docker_ok(&["container", "prune", "-f"]);
    let ps = api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "srv", "{pruned}");
    api.docker_ok(&["rm", "-f", "srv"]);
    api.docker_ok(&["volume", "create", "keepme"]);
    api.docker_ok(&["volume", "prune", "-f"]);
    assert!(api.docker_ok(&["volume", "ls", "-q"]).contains("keepme"));
    let (code, body) = api.curl(
        "POST",
        "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D",
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""VolumesDeleted":["keepme"]"#), "{body}");
    // A volume of a host directory through DriverOpts (docker volume create -o): what a
    // container writes lands there; tmpfs is refused with 400.
    let host = rl.home.join("bound-by-api");
    std::fs::create_dir_all(&host).unwrap();
    let _ = std::process::Command::new("chown")
        .arg(format!("{}:{}", rl.machine.uid, rl.machine.gid))
        .arg(&host)
        .status();
    let device = format!("device={}", host.display());
    api.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "onhost",
    ]);
    api.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "onhost:/d",
        &image("busybox"),
        "sh",
        "-c",
        "echo api > /d/f",
    ]);
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "api\n");
    api.docker_ok(&["volume", "rm", "onhost"]);
    // A tmpfs volume (the local driver's type=tmpfs): one filesystem for every container that
    // mounts it, of the size asked; other filesystems are refused rootless.
    api.docker_ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=8m",
        "tv",
    ]);
    let opts = api.docker_ok(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]);
    assert!(opts.contains(r#""type":"tmpfs""#), "{opts}");
    let first = api.docker_ok(&[
        "run", "--rm", "-v", "tv:/t", &image("busybox"), "sh", "-c",
        "echo shared > /t/f; grep ' /t ' /proc/mounts | cut -d' ' -f3; df -k /t | tail -1 | tr -s ' ' | cut -d' ' -f2",
    ]);
    assert_eq!(first, "tmpfs\n8192\n");
    // Its contents last while a container uses it and go with the last one, as with Docker's
    // local driver (which unmounts it then).
    let count = || {
        api.docker_ok(&[
            "run",
            "--rm",
            "-v",
            "tv:/t",
            &image("busybox"),
            "sh",
            "-c",
            "cat /t/* 2>/dev/null; ls /t | wc -l",
        ])
    };
    assert_eq!(
        count().trim(),
        "0",
        "the first container's file outlived it"
    );
    api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "tvkeep",
        "-v",
        "tv:/t",
        &image("busybox"),
        "sh",
        "-c",
        "echo kept > /t/f; exec sleep 300",
    ]);
    assert!(
        wait_for(Duration::from_secs(20), || count() == "kept\n1\n"),
        "a running user's file is seen by the next: {}",
        count()
    );
    api.docker_ok(&["stop", "-t", "1", "tvkeep"]);
    assert_eq!(
        count().trim(),
        "0",
        "the file outlived the last user's stop"
    );
    api.docker_ok(&["rm", "tvkeep"]);
    api.docker_ok(&["volume", "rm", "tv"]);
    // --mount volume-opt: the docker CLI's VolumeOptions.DriverConfig.Options make a new volume.
    let made = api.docker_ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=tv2,target=/t,volume-opt=type=tmpfs,volume-opt=o=size=4m",
        &image("busybox"),
        "sh",
        "-c",
        "df -k /t | tail -1 | tr -s ' ' | cut -d' ' -f2",
    ]);
    assert_eq!(made, "4096\n");
    api.docker_ok(&["volume", "rm", "tv2"]);
    let out = api.docker(&[
        "volume",
        "create",
        "-o",
        "type=nfs",
        "-o",
        "o=addr=127.0.0.1",
        "-o",
        "device=:/x",
        "n",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("rootless, only a tmpfs"),
        "{}",
        stderr(&out)
    );
    // network prune's filters: a network made just now is not older than an hour; a label
    // keeps one.
    api.docker_ok(&["network", "create", "--label", "keep=yes", "keptnet"]);
    let pruned = api.docker_ok(&["network", "prune", "-f", "--filter", "until=1h"]);
    assert!(!pruned.contains("opsnet"), "{pruned}");
    let pruned = api.docker_ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert!(
        pruned.contains("opsnet") && !pruned.contains("keptnet"),
        "{pruned}"
    );
    let pruned = api.docker_ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("keptnet"), "{pruned}");
    let pruned = api.docker_ok(&["image", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");

    let out = own_events.wait_with_output().unwrap();
    let text = stdout(&out);
    for seen in [
        "network create ",
        "network connect ",
        "network disconnect ",
        "network destroy ",
        "volume create keepme",
        "volume destroy keepme",
    ] {
        assert!(
            text.lines().any(|l| l.contains(seen)),
            "no {seen} in:\n{text}\n{}",
            stderr(&out)
        );
    }
    assert!(
        !text.contains("container "),
        "only the types asked for:\n{text}"
    );

    // The events seen between since and until: evt's create, start and die.
    assert!(
        wait_for(Duration::from_secs(30), || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                > t0 + 12
        }),
        "until passes"
    );
    let out = events.wait_with_output().unwrap();
    let text = stdout(&out);
    for action in ["create", "start", "die"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("container {action} ")) && l.contains("name=evt")),
            "no {action} of evt in:\n{text}\n{}",
            stderr(&out)
        );
    }
    // Asked afterwards, the same window is answered from the events the service kept (as
    // Docker's daemon answers from its buffer), and a window of the future waits for it.
    let window = |filter: &str, format: &str| {
        let args = ["events", "--since", &since, "--until", &until];
        api.docker_ok(&[&args[..], &["--filter", filter, "--format", format]].concat())
    };
    let past = window("container=evt", "{{.Action}}");
    for action in ["create", "start", "die"] {
        assert!(past.lines().any(|l| l == action), "no {action} in:\n{past}");
    }
    let restarted = window("container=evr", "{{.Action}} {{.Actor.Attributes.signal}}");
    // A missing attribute prints Go's "<no value>".
    for action in ["kill 15", "stop <no value>", "restart <no value>"] {
        assert!(
            restarted.lines().any(|l| l == action),
            "no {action:?} in:\n{restarted}"
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let later = spawn_docker(
        &api,
        &[
            "events",
            "--since",
            &now.to_string(),
            "--until",
            &(now + 4).to_string(),
            "--filter",
            "container=evt2",
            "--format",
            "{{.Action}}",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    api.docker_ok(&["run", "--rm", "--name", "evt2", &image("busybox"), "true"]);
    let out = later.wait_with_output().unwrap();
    assert!(
        stdout(&out).lines().any(|l| l == "start"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Stats need cgroups, which rootless containers lack on cgroup v1: this part runs the
/// service as root on the private rootful containerd, the docker CLI on its socket.
#[test]
fn docker_stats_through_a_rootful_service() {
    let Some(d) = rootful("dockerapi-stats") else {
        return;
    };
    let socket = d.dir.join("docker.sock");
    let mut cleanup = burrow_testsupport::Cleanup::new();
    let mut cmd = d.command(&["system", "service", "--listen"]);
    cmd.arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cleanup.spawn(&mut cmd);
    assert!(wait_for(Duration::from_secs(20), || socket.exists()));
    let busybox = image("busybox");
    ok(&d.burrow(&["run", "-d", "--name", "st", &busybox, "sleep", "60"]));
    let client = |argv: &[&str]| {
        let mut c = std::process::Command::new(argv[0]);
        c.args(&argv[1..])
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .env("DOCKER_CONFIG", d.dir.join("docker-config"));
        burrow_testsupport::run_with_timeout(&mut c, Duration::from_secs(60))
    };
    let out = client(&[
        docker_bin(),
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "st",
    ]);
    let text = ok(&out);
    assert!(text.starts_with("st 1 "), "{text}");
    assert!(!text.contains(" 0B /"), "memory is counted: {text}");
    let sock = socket.display().to_string();
    let out = client(&[
        "curl",
        "-s",
        "--unix-socket",
        &sock,
        "http://d/containers/st/stats?stream=false",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(doc["name"], "/st");
    assert_eq!(doc["pids_stats"]["current"], 1);
    assert!(doc["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(doc["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(doc["memory_stats"]["limit"].as_u64().unwrap() > 0);
    // Streamed: a document a second until the client leaves.
    let out = client(&[
        "curl",
        "-s",
        "-m",
        "2.5",
        "--unix-socket",
        &sock,
        "http://d/containers/st/stats",
    ]);
    let lines = stdout(&out).lines().count();
    assert!((1..=3).contains(&lines), "{}", stdout(&out));
    let _ = d.burrow(&["rm", "-f", "st"]);
}
