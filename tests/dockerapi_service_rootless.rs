//! The Docker API service itself as the unprivileged test user: concurrent clients on its
//! worker threads (a pending wait and a following logs never hold up a ping), TCP only when
//! asked and then with a loud warning, and `burrow setup install --docker-api` both ways:
//! socket-activated systemd user units (the first `docker version` starts the service) and the
//! supervised service without systemd; `setup status` and `info` show it, uninstall removes it.

mod containers_support;
mod dockerapi_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use burrow_testsupport::{run_with_timeout, wait_for, Cleanup, TestMachine};
use containers_support::*;
use dockerapi_support::*;

/// The thread names of a process's threads.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|c| c.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The pid of the test user's `burrow ... system service` listening on `socket`.
fn service_pid(socket: &Path) -> Option<u32> {
    let want = socket.display().to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is = args.iter().any(|a| a == "service") && args.iter().any(|a| a.contains(&want));
        is.then_some(pid)
    })
}

#[test]
fn slow_requests_do_not_hold_up_other_clients() {
    let Some(rl) = rootless("apiconc") else {
        return;
    };
    let api = service(&rl);
    let pid = service_pid(&api.socket).expect("the service's pid");
    let workers = thread_names(pid)
        .iter()
        .filter(|n| n.starts_with("burrow-api"))
        .count();
    assert!(
        workers >= 2,
        "the service runs on worker threads: {:?}",
        thread_names(pid)
    );

    let busybox = image("busybox");
    let id = api.docker_ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        &busybox,
        "sh",
        "-c",
        "echo started; sleep 300",
    ]);
    let id = id.trim().to_string();
    // Two requests that stay open: a wait and a following log.
    let sock = api.socket.clone();
    let long = |path: String, method: &'static str| {
        let sock = sock.clone();
        std::thread::spawn(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
            write!(
                s,
                "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
            .unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    let waiting = long(format!("/v1.43/containers/{id}/wait"), "POST");
    let following = long(
        format!("/v1.43/containers/{id}/logs?stdout=1&follow=1"),
        "GET",
    );
    // Both are in flight (the log has started streaming) ...
    assert!(wait_for(Duration::from_secs(10), || {
        let (code, body) = api.curl("GET", "/v1.43/containers/json", None);
        code == 200 && body.contains("sleeper")
    }));
    // ... and other clients are answered meanwhile, again and again.
    for _ in 0..5 {
        let (code, body) = api.curl("GET", "/_ping", None);
        assert_eq!((code, body.as_str()), (200, "OK"));
        let v = api.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
        assert_eq!(v.trim(), "1.44");
    }
    assert!(
        !waiting.is_finished() && !following.is_finished(),
        "the long requests ended early"
    );
    // The container's end ends both.
    api.docker_ok(&["kill", "sleeper"]);
    let wait_body = waiting.join().unwrap();
    assert!(wait_body.contains("\"StatusCode\":137"), "{wait_body}");
    let log_body = following.join().unwrap();
    assert!(log_body.contains("started"), "{log_body}");
    api.docker_ok(&["rm", "-f", "sleeper"]);

    // SIGTERM (a service manager's stop) ends the service and removes its socket, as dockerd
    // removes docker.sock.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !api.socket.exists()
            && service_pid(&api.socket).is_none()),
        "the service or its socket outlived SIGTERM"
    );
}

#[test]
fn tcp_is_served_only_when_asked_and_with_a_warning() {
    let Some(rl) = rootless("apitcp") else {
        return;
    };
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cleanup = Cleanup::new();
    let log = rl.dir.join("tcp-service.log");
    let mut cmd = rl.machine.user_command(&rl.burrow);
    cmd.args(["system", "service", "--listen"])
        .arg(format!("tcp://{addr}"))
        .env("XDG_RUNTIME_DIR", &rl.runtime_dir)
        .env("HOME", &rl.home)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    cleanup.spawn(&mut cmd);
    let ping = || {
        let mut c = std::process::Command::new("curl");
        c.args(["-fsS", "--max-time", "2"])
            .arg(format!("http://{addr}/_ping"));
        stdout(&run_with_timeout(&mut c, Duration::from_secs(5)))
    };
    let answered = wait_for(Duration::from_secs(20), || ping() == "OK");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(answered, "no answer on tcp://{addr}: {text}");
    assert!(
        text.contains("WARNING") && text.contains("no authentication"),
        "{text}"
    );
    assert!(text.contains("owns your user"), "{text}");
    // A real client over TCP.
    let mut c = rl.machine.user_command(docker_bin());
    c.args(["-H", &format!("tcp://{addr}"), "version", "--format"])
        .arg("{{.Server.Version}}")
        .env("HOME", &rl.home);
    let out = run_with_timeout(&mut c, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).trim().is_empty());
    // Not by default: the unix socket only, and a bad address says what to give.
    let out = rl.burrow(&["system", "service", "--listen", "tcp://localhost"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("tcp://HOST:PORT"), "{}", stderr(&out));
    let out = rl.burrow(&["system", "service", "--help"]);
    assert!(
        stdout(&out).contains("no authentication"),
        "{}",
        stdout(&out)
    );
}

// ---- setup install --docker-api (the test user's real systemd --user and home) ----

fn binaries(m: &TestMachine) -> PathBuf {
    let burrow = Path::new(env!("CARGO_BIN_EXE_burrow"));
    let launcher = burrow.with_file_name("burrow-rootlesskit");
    assert!(
        launcher.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        launcher.display()
    );
    m.install_bin(&launcher);
    m.install_bin(burrow)
}

fn burrow_as_user(m: &TestMachine, bin: &Path, args: &[&str]) -> Output {
    let mut argv = vec![bin.to_str().unwrap()];
    argv.extend_from_slice(args);
    m.run_user(&argv, Duration::from_secs(180))
}

fn docker_as_user(m: &TestMachine, socket: &Path, args: &[&str]) -> Output {
    let mut c = m.user_command(docker_bin());
    c.args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", Path::new(&m.home).join(".docker"));
    run_with_timeout(&mut c, Duration::from_secs(120))
}

fn api_status(m: &TestMachine, bin: &Path) -> serde_json::Value {
    let out = burrow_as_user(m, bin, &["setup", "status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("setup status json: {e}: {}", stdout(&out)));
    v["docker_api"].clone()
}

fn systemctl_state(m: &TestMachine, unit: &str) -> String {
    let out = m.run_user(
        &["systemctl", "--user", "is-active", unit],
        Duration::from_secs(30),
    );
    stdout(&out).trim().to_string()
}

/// Installs with `--docker-api` (plus `extra`), checks the printed export line, and returns the
/// socket.
fn install_with_api(m: &TestMachine, bin: &Path, extra: &[&str]) -> PathBuf {
    let socket = Path::new(&m.xdg_runtime_dir).join("burrow/docker.sock");
    let mut args = vec!["setup", "install", "--docker-api"];
    args.extend_from_slice(extra);
    let out = burrow_as_user(m, bin, &args);
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let export = format!("export DOCKER_HOST=unix://{}", socket.display());
    assert!(
        stdout(&out).lines().any(|l| l == export),
        "{}",
        stdout(&out)
    );
    socket
}

/// The API answers a real client, and `info` says it is served.
fn check_served(m: &TestMachine, bin: &Path, socket: &Path) {
    let out = docker_as_user(
        m,
        socket,
        &["version", "--format", "{{.Server.APIVersion}}"],
    );
    assert!(out.status.success(), "docker version: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1.44");
    let out = burrow_as_user(m, bin, &["info"]);
    let want = format!("Docker API:\tunix://{} (served", socket.display());
    assert!(stdout(&out).contains(&want), "{}", stdout(&out));
    let out = burrow_as_user(m, bin, &["info", "--format", "{{.DockerApi.Served}}"]);
    assert_eq!(stdout(&out).trim(), "true", "{}", stderr(&out));
}

fn check_uninstalled(m: &TestMachine, bin: &Path, socket: &Path) {
    let out = burrow_as_user(m, bin, &["setup", "uninstall"]);
    assert!(
        out.status.success(),
        "uninstall: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(!socket.exists(), "the API socket is still there");
    let units = Path::new(&m.home).join(".config/systemd/user");
    assert!(!units.join("burrow-docker.socket").exists());
    assert!(!units.join("burrow-docker.service").exists());
    let out = docker_as_user(m, socket, &["version"]);
    assert!(!out.status.success(), "the API still answers");
}

#[test]
fn setup_installs_a_socket_activated_api_under_systemd() {
    let Some(m) = TestMachine::get() else { return };
    let bin = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let manager = m.run_user(
        &["systemctl", "--user", "show-environment"],
        Duration::from_secs(30),
    );
    if !manager.status.success() {
        eprintln!(
            "SKIP: no systemd --user for {} (tests/provision.sh starts one): {}",
            m.user,
            stderr(&manager)
        );
        return;
    }
    let mut c = Cleanup::new();
    let mut un = m.user_command(&bin);
    un.args(["setup", "uninstall"]);
    c.run_on_drop(un);

    let socket = install_with_api(&m, &bin, &[]);
    let units = Path::new(&m.home).join(".config/systemd/user");
    let sock_unit = std::fs::read_to_string(units.join("burrow-docker.socket")).unwrap();
    assert!(
        sock_unit.contains(&format!("ListenStream={}", socket.display())),
        "{sock_unit}"
    );
    assert!(units.join("burrow-docker.service").exists());
    // systemd listens; the service itself has not started yet.
    assert_eq!(systemctl_state(&m, "burrow-docker.socket"), "active");
    assert_ne!(systemctl_state(&m, "burrow-docker.service"), "active");
    let st = api_status(&m, &bin);
    assert_eq!(st["installed"], true, "{st}");
    assert_eq!(st["listening"], true, "{st}");
    assert_eq!(st["running"], false, "{st}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions())
            & 0o777;
    assert_eq!(mode, 0o600, "the socket is private");

    // The first client starts the service.
    check_served(&m, &bin, &socket);
    assert_eq!(systemctl_state(&m, "burrow-docker.service"), "active");
    assert_eq!(api_status(&m, &bin)["running"], true);
    let out = burrow_as_user(&m, &bin, &["setup", "status"]);
    assert!(
        stdout(&out).contains("docker api: unix://") && stdout(&out).contains("service running"),
        "{}",
        stdout(&out)
    );
    // A plain install again keeps the API.
    let out = burrow_as_user(&m, &bin, &["setup", "install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("export DOCKER_HOST="),
        "{}",
        stdout(&out)
    );

    check_uninstalled(&m, &bin, &socket);
    assert_ne!(systemctl_state(&m, "burrow-docker.socket"), "active");
    assert_ne!(systemctl_state(&m, "burrow-docker.service"), "active");
}

#[test]
fn setup_installs_the_api_under_the_supervisor_without_systemd() {
    let Some(m) = TestMachine::get() else { return };
    let bin = binaries(&m);
    let _lock = m.exclusive("rootless-containerd");
    let mut c = Cleanup::new();
    let mut un = m.user_command(&bin);
    un.args(["setup", "uninstall"]);
    c.run_on_drop(un);

    let socket = install_with_api(&m, &bin, &["--no-systemd"]);
    let marker = Path::new(&m.home).join(".config/burrow/supervised-service");
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(text.lines().any(|l| l == "docker_api = true"), "{text}");
    let st = api_status(&m, &bin);
    assert_eq!(st["installed"], true, "{st}");
    assert_eq!(st["listening"], true, "{st}");
    check_served(&m, &bin, &socket);

    // The supervisor restarts the API when it dies.
    let pid = service_pid(&socket).expect("the supervised API's pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let back = wait_for(Duration::from_secs(30), || {
        service_pid(&socket).is_some_and(|p| p != pid)
            && docker_as_user(&m, &socket, &["version"]).status.success()
    });
    assert!(back, "the supervisor did not restart the Docker API");

    check_uninstalled(&m, &bin, &socket);
}
