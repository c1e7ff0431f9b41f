//! The v1 API server: every endpoint with RootlessKit's JSON shapes, hostile requests, socket
//! handling, and Debian's `rootlessctl` and our `burrow-rootlessctl` as clients.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burrow_rootlesskit::api::client::{Client, ClientError};
use burrow_rootlesskit::api::{self, ApiError, ApiInfo, ApiServer, NetworkDriverInfo};
use burrow_rootlesskit::port::{PortDriver, PortDriverInfo, PortError, PortSpec, PortStatus};
use serde_json::{json, Value};

/// An in-memory driver with RootlessKit's conflict rule; the real one is tested in port_builtin.
#[derive(Default)]
struct MemDriver {
    ports: Mutex<(u64, Vec<PortStatus>)>,
}

impl PortDriver for MemDriver {
    fn info(&self) -> PortDriverInfo {
        PortDriverInfo {
            driver: "mem".into(),
            protos: vec!["tcp".into(), "udp".into()],
            disallow_loopback_child_ip: false,
        }
    }
    fn add(&self, spec: PortSpec) -> Result<PortStatus, PortError> {
        spec.validate()?;
        let mut p = self.ports.lock().unwrap();
        if let Some(s) = p.1.iter().find(|s| s.spec.same_parent(&spec)) {
            return Err(PortError::Conflict {
                id: s.id,
                spec: spec.to_string(),
            });
        }
        p.0 += 1;
        let st = PortStatus { id: p.0, spec };
        p.1.push(st.clone());
        Ok(st)
    }
    fn list(&self) -> Vec<PortStatus> {
        self.ports.lock().unwrap().1.clone()
    }
    fn remove(&self, id: u64) -> Result<(), PortError> {
        let mut p = self.ports.lock().unwrap();
        let before = p.1.len();
        p.1.retain(|s| s.id != id);
        if p.1.len() == before {
            return Err(PortError::NotFound(id));
        }
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    server: Option<ApiServer>,
}

fn info(dir: &Path, driver: Option<Arc<dyn PortDriver>>) -> ApiInfo {
    ApiInfo {
        version: "0.1.0-test".into(),
        state_dir: dir.to_path_buf(),
        child_pid: 4242,
        network_driver: NetworkDriverInfo {
            driver: "slirp4netns".into(),
            dns: vec!["10.0.2.3".parse().unwrap()],
            child_ip: Some("10.0.2.100".parse().unwrap()),
        },
        port_driver: driver,
    }
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let server = api::serve(
        &sock,
        info(dir.path(), Some(Arc::new(MemDriver::default()))),
    )
    .unwrap();
    Fixture {
        sock,
        server: Some(server),
        _dir: dir,
    }
}

/// Sends raw bytes, returns (status, body as JSON or Null).
fn raw(sock: &Path, req: &[u8]) -> (u16, Value) {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(req);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn request(sock: &Path, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    raw(sock, req.as_bytes())
}

#[test]
fn info_has_rootlesskit_shape() {
    let f = start();
    let (status, v) = request(&f.sock, "GET", "/v1/info", "");
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({
            "apiVersion": "1.1.1",
            "version": "0.1.0-test",
            "stateDir": f._dir.path(),
            "childPID": 4242,
            "networkDriver": {"driver": "slirp4netns", "dns": ["10.0.2.3"], "childIP": "10.0.2.100"},
            "portDriver": {"driver": "mem", "protos": ["tcp", "udp"]}
        })
    );
}

#[test]
fn ports_endpoints_and_errors() {
    let f = start();
    assert_eq!(request(&f.sock, "GET", "/v1/ports", ""), (200, json!([])));
    let (status, v) = request(
        &f.sock,
        "POST",
        "/v1/ports",
        r#"{"proto":"tcp","parentIP":"127.0.0.1","parentPort":8080,"childPort":80}"#,
    );
    assert_eq!(status, 201);
    assert_eq!(
        v,
        json!({"id": 1, "spec": {"proto": "tcp", "parentIP": "127.0.0.1", "parentPort": 8080, "childPort": 80}})
    );
    let (status, v) = request(&f.sock, "GET", "/v1/ports", "");
    assert_eq!(status, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);

    let msg = |v: &Value| {
        v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {v}"))
            .to_owned()
    };
    // Conflict with the existing port.
    let (status, v) = request(
        &f.sock,
        "POST",
        "/v1/ports",
        r#"{"proto":"tcp","parentIP":"127.0.0.1","parentPort":8080,"childPort":81}"#,
    );
    assert_eq!(status, 400);
    assert!(msg(&v).contains("port id 1"), "{v}");
    // Malformed JSON, bad proto, bad IP, out-of-range and zero ports.
    for body in [
        "{not json",
        r#"{"proto":"sctp","parentPort":1,"childPort":2}"#,
        r#"{"proto":"tcp","parentIP":"1.2.3","parentPort":1,"childPort":2}"#,
        r#"{"proto":"tcp","parentPort":70000,"childPort":2}"#,
        r#"{"proto":"tcp","childPort":2}"#,
        r#"[1,2,3]"#,
        "",
    ] {
        let (status, v) = request(&f.sock, "POST", "/v1/ports", body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(!msg(&v).is_empty());
    }
    let (status, v) = request(
        &f.sock,
        "POST",
        "/v1/ports",
        r#"{"proto":"udp4","parentPort":53,"childPort":53}"#,
    );
    assert_eq!((status, v["id"].as_u64()), (201, Some(2)));
    // Unknown and malformed ids.
    let (status, v) = request(&f.sock, "DELETE", "/v1/ports/99", "");
    assert_eq!(status, 404);
    assert!(msg(&v).contains("99"));
    assert_eq!(request(&f.sock, "DELETE", "/v1/ports/abc", "").0, 400);
    assert_eq!(request(&f.sock, "DELETE", "/v1/ports/1", "").0, 200);
    assert_eq!(request(&f.sock, "DELETE", "/v1/ports/1", "").0, 404);
    let (_, v) = request(&f.sock, "GET", "/v1/ports", "");
    assert_eq!(
        v,
        json!([{"id": 2, "spec": {"proto": "udp4", "parentPort": 53, "childPort": 53}}])
    );
    // Unknown endpoints and methods.
    assert_eq!(request(&f.sock, "GET", "/v2/info", "").0, 404);
    assert_eq!(request(&f.sock, "GET", "/", "").0, 404);
    assert_eq!(request(&f.sock, "PUT", "/v1/ports", "").0, 405);
    assert_eq!(request(&f.sock, "POST", "/v1/info", "").0, 405);
}

#[test]
fn hostile_requests_do_not_stop_the_server() {
    let f = start();
    // A huge body.
    let big = format!(r#"{{"proto":"tcp","pad":"{}"}}"#, "x".repeat(1 << 20));
    assert_eq!(request(&f.sock, "POST", "/v1/ports", &big).0, 413);
    // Garbage instead of HTTP.
    let (status, _) = raw(&f.sock, b"\x00\x01\x02 hello\r\n\r\n");
    assert_eq!(status, 400);
    // A lying Content-Length, then the connection closes.
    {
        let mut s = UnixStream::connect(&f.sock).unwrap();
        s.write_all(b"POST /v1/ports HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
            .unwrap();
    }
    // Slow clients holding connections open with half a request.
    let slow: Vec<UnixStream> = (0..20)
        .map(|_| {
            let mut s = UnixStream::connect(&f.sock).unwrap();
            s.write_all(b"GET /v1/info HTTP/1.1\r\nHos").unwrap();
            s
        })
        .collect();
    let stalled_body = {
        let mut s = UnixStream::connect(&f.sock).unwrap();
        s.write_all(b"POST /v1/ports HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
            .unwrap();
        s
    };
    // The server still answers everyone else.
    let (status, v) = request(&f.sock, "GET", "/v1/info", "");
    assert_eq!((status, v["childPID"].as_i64()), (200, Some(4242)));
    let client = Client::new(&f.sock);
    assert!(client.list_ports().unwrap().is_empty());
    drop((slow, stalled_body));
    assert_eq!(request(&f.sock, "GET", "/v1/ports", "").0, 200);
}

#[test]
fn socket_is_private_replaces_stale_and_refuses_live() {
    let mut f = start();
    let mode = std::fs::metadata(&f.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second server on a live socket is refused.
    let dir = f._dir.path().to_path_buf();
    match api::serve(&f.sock, info(&dir, None)) {
        Err(ApiError::InUse { .. }) => {}
        other => panic!("expected InUse, got {:?}", other.map(|_| ())),
    }
    // Shutdown removes the socket.
    f.server.take().unwrap().shutdown();
    assert!(!f.sock.exists());
    // A stale socket (bound, nobody serving) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&f.sock).unwrap());
    assert!(f.sock.exists());
    let server = api::serve(&f.sock, info(&dir, None)).unwrap();
    let (status, v) = request(&f.sock, "GET", "/v1/info", "");
    assert_eq!(status, 200);
    assert!(v.get("portDriver").is_none(), "{v}");
    // Without a port driver, the port endpoints say so.
    let (status, v) = request(&f.sock, "GET", "/v1/ports", "");
    assert_eq!(status, 400);
    assert!(
        v["message"].as_str().unwrap().contains("port-driver"),
        "{v}"
    );
    drop(server);
    assert!(!f.sock.exists());
}

#[test]
fn typed_client_round_trip() {
    let f = start();
    let c = Client::new(&f.sock);
    let info = c.info().unwrap();
    assert_eq!(info.api_version, "1.1.1");
    assert_eq!(info.port_driver.unwrap().driver, "mem");
    let st = c
        .add_port(&"[::1]:8080:[::1]:80/tcp6".parse().unwrap())
        .unwrap();
    assert_eq!(c.list_ports().unwrap(), vec![st.clone()]);
    match c.add_port(&"[::1]:8080:81/tcp6".parse().unwrap()) {
        Err(ClientError::Api {
            status: 400,
            message,
        }) => assert!(message.contains("conflicts"), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    c.remove_port(st.id).unwrap();
    assert!(matches!(
        c.remove_port(st.id),
        Err(ClientError::Api { status: 404, .. })
    ));
    let gone = Client::new(&f._dir.path().join("nope.sock"));
    let err = gone.info().unwrap_err();
    assert!(err.to_string().contains("nope.sock"), "{err}");
}

fn ctl(bin: &str, sock: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Both RootlessKit's own client and ours speak to the server the same way.
fn clients_agree(bin: &str) {
    let f = start();
    let (ok, out, err) = ctl(
        bin,
        &f.sock,
        &[
            "add-ports",
            "127.0.0.1:18080:80/tcp",
            "0.0.0.0:18081:10.0.2.100:81/udp",
        ],
    );
    assert!(ok, "{bin} add-ports: {err}");
    assert_eq!(out, "1\n2\n");
    let (ok, out, err) = ctl(bin, &f.sock, &["list-ports", "--json"]);
    assert!(ok, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0],
        json!({"id": 1, "spec": {"proto": "tcp", "parentIP": "127.0.0.1", "parentPort": 18080, "childPort": 80}})
    );
    assert_eq!(lines[1]["spec"]["childIP"], "10.0.2.100");
    let (ok, out, _) = ctl(bin, &f.sock, &["list-ports"]);
    assert!(ok);
    assert!(
        out.starts_with("ID    PROTO    PARENTIP     PARENTPORT    CHILDIP       CHILDPORT    \n"),
        "{out:?}"
    );
    assert!(
        out.contains("1     tcp      127.0.0.1    18080                       80           \n"),
        "{out:?}"
    );
    let (ok, _, err) = ctl(bin, &f.sock, &["add-ports", "127.0.0.1:18080:80/tcp"]);
    assert!(!ok && err.contains("conflict"), "{err}");
    let (ok, _, err) = ctl(bin, &f.sock, &["remove-ports", "7"]);
    assert!(!ok && err.contains("no port with id 7"), "{err}");
    let (ok, out, _) = ctl(bin, &f.sock, &["remove-ports", "1"]);
    assert!(ok);
    assert_eq!(out, "1\n");
    let (ok, out, _) = ctl(bin, &f.sock, &["info", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["childPID"], 4242);
    assert_eq!(v["networkDriver"]["childIP"], "10.0.2.100");
    let (ok, out, _) = ctl(bin, &f.sock, &["info"]);
    assert!(ok);
    assert!(
        out.contains("- REST API version: 1.1.1\n")
            && out.contains("  - DNS: [10.0.2.3]\n")
            && out.contains("- Port Driver: mem\n"),
        "{out}"
    );
}

#[test]
fn debian_rootlessctl_talks_to_our_server() {
    if Command::new("rootlessctl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: Debian's rootlessctl (package rootlesskit) is not installed");
        return;
    }
    clients_agree("rootlessctl");
}

#[test]
fn our_rootlessctl_talks_to_our_server() {
    clients_agree(env!("CARGO_BIN_EXE_burrow-rootlessctl"));
}

#[test]
fn a_client_stalling_in_its_headers_is_disconnected() {
    let f = start();
    let mut s = UnixStream::connect(&f.sock).unwrap();
    s.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // The server's header timeout (10 s) closes it; the read timeout only bounds a broken server.
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut out = Vec::new();
    let r = s.read_to_end(&mut out);
    assert!(
        r.is_ok(),
        "the server never closed the stalled connection: {r:?}"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert_eq!(request(&f.sock, "GET", "/v1/info", "").0, 200);
}
