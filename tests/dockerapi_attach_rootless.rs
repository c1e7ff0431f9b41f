//! The Docker API's attach, exec, resize and AutoRemove as the unprivileged test user, driven
//! by Debian's docker CLI and the Python Docker SDK: `docker run` without -d (output, exit
//! codes, --rm, piped stdin, -it through a pty), `docker attach`, `docker exec` (-it too), the
//! SDK's exec_run, and clients killed mid-attach.

mod containers_support;
mod dockerapi_support;

use std::process::{Output, Stdio};
use std::time::Duration;

use burrow_testsupport::wait_for;
use containers_support::*;
use dockerapi_support::*;

/// `argv` through a pty (`script`), as a terminal user would run it.
fn in_pty(api: &Api, line: &str, input: &str) -> Output {
    let sh = format!("printf '{input}' | script -qec \"{line}\" /dev/null");
    api.run(&["sh", "-c", &sh])
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The names of all containers.
fn names(api: &Api) -> String {
    api.docker_ok(&["ps", "-a", "--format", "{{.Names}}"])
}

#[test]
fn docker_run_attach_and_exec_through_the_socket() {
    let Some(rl) = rootless("dockerapi-attach") else {
        return;
    };
    let api = service(&rl);
    let docker = docker_bin();
    let busybox = image("busybox");

    // run without -d: create, attach, start, wait; --rm leaves nothing.
    let out = api.docker(&["run", "--rm", "--name", "hi", &busybox, "echo", "hi"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "hi\n"),
        "{}",
        stderr(&out)
    );
    assert!(!names(&api).lines().any(|n| n == "hi"), "{}", names(&api));
    // Both streams, apart, and the exit code.
    let script = "echo out; echo err >&2; exit 3";
    let out = api.docker(&["run", "--rm", &busybox, "sh", "-c", script]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(
        (stdout(&out), stderr(&out)),
        ("out\n".into(), "err\n".into())
    );
    // More output than a pipe holds, all of it: the removal at the exit loses none.
    let out = api.docker(&["run", "--rm", &busybox, "seq", "1", "30000"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let got = stdout(&out);
    assert_eq!(
        (got.lines().count(), got.lines().last()),
        (30000, Some("30000")),
        "{}",
        stderr(&out)
    );
    // Created with --rm and started only later: the network attach begun at the create and
    // parked for a start that did not come at once was undone; the start attaches as usual.
    let out = api.docker(&[
        "create", "--rm", "--name", "late", &busybox, "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::thread::sleep(burrow::containers::parked::WINDOW + Duration::from_secs(1));
    let out = api.docker(&["start", "-a", "late"]);
    assert!(
        stdout(&out).contains("inet "),
        "eth0 has an address: {}",
        stderr(&out)
    );
    assert!(!names(&api).lines().any(|n| n == "late"), "{}", names(&api));
    // A command that cannot start: Docker's 127, and --rm still removes the container.
    let out = api.docker(&["run", "--rm", "--name", "bad", &busybox, "nosuchcommand"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(!names(&api).lines().any(|n| n == "bad"), "{}", names(&api));
    // Containers that end at once (before the service's next look at them): the wait still
    // gets the exit status of the task the background reader started and removed.
    for _ in 0..4 {
        let out = api.docker(&["run", "--rm", &busybox, "sh", "-c", "exit 5"]);
        assert_eq!(code(&out), 5, "{}", stderr(&out));
    }
    // Without --rm the container stays, with its log.
    api.docker_ok(&["run", "--name", "kept", &busybox, "echo", "logged"]);
    assert_eq!(api.docker_ok(&["logs", "kept"]), "logged\n");
    api.docker_ok(&["rm", "kept"]);

    // The CLI's `run -d --rm` is removed when it exits too (the same background reader).
    ok(&rl.burrow(&[
        "run", "-d", "--rm", "--name", "clirm", &busybox, "sleep", "1",
    ]));
    assert!(
        wait_for(Duration::from_secs(20), || !names(&api)
            .lines()
            .any(|n| n == "clirm")),
        "{}",
        names(&api)
    );

    // Piped stdin: its end is the container's (StdinOnce).
    let line = format!("printf 'data\\nmore\\n' | {docker} run -i --rm {busybox} cat");
    let out = api.run(&["sh", "-c", &line]);
    assert_eq!(stdout(&out), "data\nmore\n", "{}", stderr(&out));

    // run -it through a pty: a terminal, typed input, its exit code.
    let line = format!("{docker} run -it --rm {busybox} sh");
    let out = in_pty(&api, &line, "tty; echo typed-$((6*7))\\nexit 5\\n");
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text}\n{}", stderr(&out));
    assert!(text.contains("typed-42"), "{text}");
    assert_eq!(code(&out), 5, "{text}");

    // run -d, then attach: the output from now on; the client killed, the container runs on.
    let ticker = "while true; do echo tick; sleep 0.2; done";
    let id = api.docker_ok(&["run", "-d", "--name", "tick", &busybox, "sh", "-c", ticker]);
    let id = id.trim().to_string();
    let mut att = api
        .command(&[docker, "attach", "--sig-proxy=false", "tick"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    att.kill().unwrap();
    let seen = att.wait_with_output().unwrap();
    assert!(stdout(&seen).contains("tick\n"), "{}", stdout(&seen));
    let state = api.docker_ok(&["inspect", "-f", "{{.State.Status}}", "tick"]);
    assert_eq!(state.trim(), "running");
    // logs=1 without stream (and without the upgrade): the log so far as a plain body.
    let (status, body) = api.curl("POST", "/containers/tick/attach?logs=1&stdout=1", None);
    assert_eq!(status, 200);
    assert!(body.starts_with("\u{1}\0\0\0\0\0\0\u{5}tick\n"), "{body:?}");

    // exec: output, exit codes, a terminal, and the SDK's exec_run.
    let host = api.docker_ok(&["exec", "tick", "cat", "/etc/hostname"]);
    assert_eq!(host.trim(), &id[..12]);
    let out = api.docker(&["exec", "tick", "sh", "-c", "echo e >&2; exit 3"]);
    assert_eq!((code(&out), stderr(&out).as_str()), (3, "e\n"));
    let out = api.docker(&["exec", "tick", "nosuchcommand"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    // Docker's words, once: "OCI runtime exec failed: exec failed: ... executable file not found".
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.starts_with("OCI runtime exec failed: ")
            && said.matches("OCI runtime exec failed").count() == 1
            && said.contains("executable file not found"),
        "{said}"
    );
    let line = format!("printf 'in\\n' | {docker} exec -i tick cat");
    assert_eq!(stdout(&api.run(&["sh", "-c", &line])), "in\n");
    let line = format!("{docker} exec -it tick sh -c 'tty; exit 4'");
    let out = in_pty(&api, &line, "");
    assert!(stdout(&out).contains("/dev/pts/"), "{}", stdout(&out));
    assert_eq!(code(&out), 4);
    let py = "import docker\n\
         c = docker.from_env().containers.get('tick')\n\
         r = c.exec_run(['sh', '-c', 'echo py-exec; exit 4'])\n\
         print(r.exit_code, r.output.decode().strip())\n\
         r = c.exec_run(['sleep', '30'], detach=True)\n\
         print('detached', r.exit_code)\n";
    let out = api.run(&["/usr/bin/python3", "-c", py]);
    assert_eq!(
        stdout(&out),
        "4 py-exec\ndetached None\n",
        "{}",
        stderr(&out)
    );
    // dockerpty's way (docker-compose run without the CLI): one attach socket for each
    // stream inspect's Config.Attach* names, made before the start; shutting the stdin socket
    // for writing ends the container's input.
    let py = format!(
        "import docker, socket\n\
         c = docker.from_env().api\n\
         cid = c.create_container('{busybox}', command=['sh', '-c', 'cat; echo err >&2; exit 3'], stdin_open=True)['Id']\n\
         cfg = c.inspect_container(cid)['Config']\n\
         print(cfg['AttachStdin'], cfg['AttachStdout'], cfg['AttachStderr'], cfg['StdinOnce'], repr(cfg['Domainname']))\n\
         socks = [c.attach_socket(cid, {{k: 1, 'stream': 1}}) for k in ('stdin', 'stdout', 'stderr')]\n\
         socks = [getattr(s, '_sock', s) for s in socks]\n\
         c.start(cid)\n\
         socks[0].sendall(b'piped\\n')\n\
         socks[0].shutdown(socket.SHUT_WR)\n\
         def drain(s):\n    s.settimeout(20)\n    b = b''\n    while True:\n        d = s.recv(4096)\n        if not d: return b\n        b += d\n\
         print(drain(socks[1])[8:], drain(socks[2])[8:], c.wait(cid, timeout=20)['StatusCode'])\n\
         c.remove_container(cid, force=True)\n"
    );
    let out = api.run(&["timeout", "60", "/usr/bin/python3", "-c", &py]);
    assert_eq!(
        stdout(&out),
        "True True True True ''\nb'piped\\n' b'err\\n' 3\n",
        "{}",
        stderr(&out)
    );
    // The docker CLI's: create attaches stdout and stderr (stdin with -i), run -d none.
    api.docker_ok(&["create", "--name", "made", "-i", &busybox, "cat"]);
    api.docker_ok(&["run", "-d", "--name", "bg", &busybox, "sleep", "30"]);
    let f = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}";
    let flags = api.docker_ok(&["inspect", "-f", f, "made", "bg"]);
    assert_eq!(flags, "true true true\nfalse false false\n");
    api.docker_ok(&["rm", "-f", "made", "bg"]);
    let (status, body) = api.curl("GET", "/exec/nosuch/json", None);
    assert_eq!(status, 404, "{body}");
    let (status, body) = api.curl("POST", "/containers/tick/resize?h=40&w=100", None);
    assert_eq!(status, 200, "{body}");

    // attach with a terminal: typed input reaches the shell, the detach keys leave it running.
    api.docker_ok(&["run", "-dit", "--name", "shell", &busybox, "sh"]);
    let line = format!("{docker} attach --detach-keys=ctrl-a shell");
    // The keys a moment after the line, so its output comes back first.
    let typed = "printf 'echo attached-$((2*3))\\n'; sleep 1; printf '\\001'";
    let sh = format!("({typed}) | script -qec \"{line}\" /dev/null");
    let out = api.run(&["sh", "-c", &sh]);
    assert!(stdout(&out).contains("attached-6"), "{}", stdout(&out));
    let state = api.docker_ok(&["inspect", "-f", "{{.State.Status}}", "shell"]);
    assert_eq!(state.trim(), "running");

    // run -it left with ctrl-p ctrl-q: the shell runs on (a TTY's stdin stays open).
    let line = format!("{docker} run -it --name left {busybox} sh");
    let typed = "printf 'echo in-left\\n'; sleep 1; printf '\\020\\021'";
    let sh = format!("({typed}) | script -qec \"{line}\" /dev/null");
    let out = api.run(&["sh", "-c", &sh]);
    assert!(stdout(&out).contains("in-left"), "{}", stdout(&out));
    std::thread::sleep(Duration::from_millis(500));
    let state = api.docker_ok(&["inspect", "-f", "{{.State.Status}}", "left"]);
    assert_eq!(state.trim(), "running");

    // docker 28 (API 1.44 negotiated) takes the same paths.
    let newer = "/usr/local/bin/docker";
    if std::path::Path::new(newer).exists() {
        let out = api.run(&[newer, "run", "--rm", &busybox, "echo", "from-28"]);
        assert_eq!(stdout(&out), "from-28\n", "{}", stderr(&out));
        let out = api.run(&[newer, "exec", "tick", "sh", "-c", "echo x28; exit 2"]);
        assert_eq!((code(&out), stdout(&out).as_str()), (2, "x28\n"));
    }

    // A client killed mid-attach: the service answers on, the container runs on (and an
    // auto-removed one still goes when it ends).
    let mut victim = api
        .command(&[docker, "run", "--name", "victim", &busybox, "sleep", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut gone = api
        .command(&[
            docker, "run", "--rm", "--name", "gone", &busybox, "sleep", "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = |n: &str| {
        api.docker(&["inspect", "-f", "{{.State.Status}}", n])
            .stdout
            .starts_with(b"running")
    };
    assert!(wait_for(Duration::from_secs(20), || running("victim")
        && running("gone")));
    victim.kill().unwrap();
    gone.kill().unwrap();
    let _ = (victim.wait(), gone.wait());
    let ps = api.docker_ok(&["ps", "--format", "{{.Names}}"]);
    assert!(ps.lines().any(|n| n == "victim"), "{ps}");
    assert!(
        wait_for(Duration::from_secs(20), || !names(&api)
            .lines()
            .any(|n| n == "gone")),
        "{}",
        names(&api)
    );
    // Attach again to the survivor, then end everything.
    let out = api.docker(&["exec", "victim", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    api.docker_ok(&["rm", "-f", "victim", "tick", "shell", "left"]);
    assert_eq!(names(&api).trim(), "");
}
