//! burrow-slirp as the unprivileged test user, used the way slirp4netns is: by hand on a
//! namespace made with `unshare` (the host's loopback via the gateway, and the JSON API's
//! add/list/remove_hostfwd), and as Debian's RootlessKit's `--slirp4netns-binary`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use burrow_testsupport::{kill_group, run_with_timeout, spawn_retrying, wait_for, TestMachine};

const T: Duration = Duration::from_secs(60);

fn slirp(m: &TestMachine) -> PathBuf {
    m.install_bin(env!("CARGO_BIN_EXE_burrow-slirp"))
}

/// A process killed (and reaped) when dropped.
/// A process started in a process group of its own; the whole group is killed on drop, so
/// nothing it started (the namespace's httpd) outlives the test.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory the test user can read and write, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(m: &TestMachine, name: &str) -> Dir {
        let p = Path::new(&m.xdg_runtime_dir)
            .join(format!("burrow-slirp-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("www")).unwrap();
        for d in [&p, &p.join("www")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An HTTP server on the host's loopback answering `body`; returns its port.
fn http_server(body: &'static str) -> u16 {
    burrow_testsupport::http_server(Ipv4Addr::LOCALHOST.into(), body)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn api(sock: &Path, req: &str) -> serde_json::Value {
    let mut s = UnixStream::connect(sock).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

#[test]
fn by_hand_on_an_unshare_namespace_with_the_api() {
    let Some(m) = TestMachine::get() else { return };
    let dir = Dir::new(&m, "hand");
    let d = dir.0.display().to_string();
    std::fs::write(dir.0.join("www/index.html"), "from-the-namespace\n").unwrap();
    let host_port = http_server("from-host-loopback\n");
    // The namespace, as slirp4netns's manual makes it: unshare, then wait for tap0.
    let script = format!(
        "busybox httpd -f -p 8080 -h {d}/www & echo $$ > {d}/pid; \
         i=0; while ! ip -4 route | grep -q '^default via 10.0.2.2 dev tap0'; do \
           i=$((i+1)); [ $i -gt 400 ] && exit 3; sleep 0.05; done; \
         wget -qO- -T 10 -t 1 http://10.0.2.2:{host_port}/ > {d}/wget.out 2>&1; \
         echo $? > {d}/wget.rc; sleep 120"
    );
    let mut cmd = m.user_command("unshare");
    cmd.args(["--user", "--map-root-user", "--net", "sh", "-c", &script])
        .stdin(Stdio::null())
        .process_group(0);
    let ns = Kill(spawn_retrying(&mut cmd).expect("unshare"));
    assert!(wait_for(T, || dir.0.join("pid").exists()), "no pid file");
    let pid = std::fs::read_to_string(dir.0.join("pid")).unwrap();
    let sock = dir.0.join("slirp.sock");
    let mut cmd = m.user_command(slirp(&m));
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--api-socket",
        sock.to_str().unwrap(),
        pid.trim(),
        "tap0",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut slirp = Kill(spawn_retrying(&mut cmd).expect("burrow-slirp"));

    assert!(
        wait_for(T, || dir.0.join("wget.rc").exists()),
        "the namespace never got its network"
    );
    let rc = std::fs::read_to_string(dir.0.join("wget.rc")).unwrap();
    let out = std::fs::read_to_string(dir.0.join("wget.out")).unwrap();
    assert_eq!(
        (rc.trim(), out.as_str()),
        ("0", "from-host-loopback\n"),
        "wget from the namespace through the gateway"
    );
    assert!(slirp.0.try_wait().unwrap().is_none(), "burrow-slirp exited");

    // The API, as RootlessKit's slirp4netns port driver and podman use it.
    let fwd_port = free_port();
    let r = api(
        &sock,
        &format!(
            r#"{{"execute": "add_hostfwd", "arguments": {{"proto": "tcp", "host_addr": "127.0.0.1", "host_port": {fwd_port}, "guest_addr": "10.0.2.100", "guest_port": 8080}}}}"#
        ),
    );
    let id = r["return"]["id"].as_i64().unwrap_or_else(|| panic!("{r}"));
    let page = http_get(fwd_port).unwrap();
    assert!(page.ends_with("from-the-namespace\n"), "{page}");
    // slirp4netns answers list_hostfwd without a "return" wrapper.
    let r = api(&sock, r#"{"execute": "list_hostfwd"}"#);
    let entries = r["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{r}");
    assert_eq!(entries[0]["host_port"], fwd_port);
    assert_eq!(entries[0]["guest_port"], 8080);
    let r = api(
        &sock,
        r#"{"execute": "add_hostfwd", "arguments": {"proto": "sctp"}}"#,
    );
    assert!(r["error"]["desc"].is_string(), "{r}");
    let r = api(
        &sock,
        &format!(r#"{{"execute": "remove_hostfwd", "arguments": {{"id": {id}}}}}"#),
    );
    assert!(r.get("return").is_some(), "{r}");
    assert!(http_get(fwd_port).is_err(), "the port still answers");
    let r = api(&sock, r#"{"execute": "list_hostfwd"}"#);
    assert_eq!(r["entries"].as_array().unwrap().len(), 0);

    // Nothing the namespace started outlives it.
    drop(slirp);
    drop(ns);
    let pattern = format!("httpd -f -p 8080 -h {d}/www");
    let left = wait_for(T, || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap();
        !out.status.success()
    });
    assert!(left, "the namespace's httpd outlived the test");
}

#[test]
fn debians_rootlesskit_runs_it_as_its_slirp4netns() {
    let Some(m) = TestMachine::get() else { return };
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("rootlesskit").is_file()));
    if !on_path {
        eprintln!("skipped: rootlesskit is not installed");
        return;
    }
    let bin = slirp(&m);
    let host_port = http_server("through-burrow-slirp\n");
    for extra in [
        &[][..],
        &["--slirp4netns-sandbox=true", "--slirp4netns-seccomp=true"][..],
    ] {
        let mut cmd = m.user_command("rootlesskit");
        cmd.args([
            "--net=slirp4netns",
            &format!("--slirp4netns-binary={}", bin.display()),
            "--copy-up=/etc",
        ])
        .args(extra)
        .args([
            "wget",
            "-qO-",
            "-T",
            "10",
            "-t",
            "1",
            &format!("http://10.0.2.2:{host_port}/"),
        ]);
        let out = run_with_timeout(&mut cmd, T);
        assert!(
            out.status.success(),
            "rootlesskit {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "through-burrow-slirp\n",
            "{extra:?}"
        );
    }
}
