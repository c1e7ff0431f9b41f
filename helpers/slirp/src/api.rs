//! slirp4netns's JSON API on a unix socket: add_hostfwd, list_hostfwd and remove_hostfwd, served
//! by the embedded stack's forwards (the namespace sees each client's own address).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

use burrow_netstack::{ForwardProto, StackHandle};
use serde_json::{json, Value};

/// One host forward as list_hostfwd shows it.
#[derive(Debug, Clone)]
struct Entry {
    proto: &'static str,
    host: SocketAddrV4,
    guest: SocketAddrV4,
    fwd: u64,
}

/// The API's state: the forwards by slirp4netns id.
pub struct Api {
    stack: Arc<StackHandle>,
    guest_default: Ipv4Addr,
    entries: Mutex<(i64, BTreeMap<i64, Entry>)>,
}

impl Api {
    pub fn new(stack: Arc<StackHandle>, guest_default: Ipv4Addr) -> Api {
        Api {
            stack,
            guest_default,
            entries: Mutex::new((1, BTreeMap::new())),
        }
    }

    /// Serves connections until the listener fails; one request per connection, as slirp4netns.
    pub fn serve(self: Arc<Self>, listener: UnixListener) {
        for conn in listener.incoming() {
            match conn {
                Ok(c) => {
                    if let Err(e) = self.one(c) {
                        tracing::debug!("api: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!("api socket: {e}");
                    return;
                }
            }
        }
    }

    fn one(&self, mut c: UnixStream) -> std::io::Result<()> {
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let reply = match read_request(&mut c)? {
            Request::Json(v) => self.handle(&v),
            Request::Unparsable => err("bad request: cannot parse JSON").to_string(),
            Request::TooLarge => err("bad request: too large message").to_string(),
        };
        c.write_all(reply.as_bytes())?;
        let _ = c.shutdown(std::net::Shutdown::Both);
        Ok(())
    }

    /// Answers one request (a JSON value with "execute" and "arguments") as slirp4netns does,
    /// with its replies and error texts; returns the reply's JSON text.
    pub fn handle(&self, req: &Value) -> String {
        if !req.is_object() {
            return err("bad request: json_object() failed").to_string();
        }
        let Some(execute) = req.get("execute").and_then(Value::as_str) else {
            return err("bad request: no execute found").to_string();
        };
        let args = req.get("arguments").cloned().unwrap_or(Value::Null);
        if execute == "list_hostfwd" {
            return self.list();
        }
        let reply = match execute {
            "add_hostfwd" => self
                .add(&args)
                .unwrap_or_else(|e| err(&format!("bad request: add_hostfwd: {e}"))),
            "remove_hostfwd" => self
                .remove(&args)
                .unwrap_or_else(|e| err(&format!("bad request: remove_hostfwd: {e}"))),
            _ => err("bad request: unknown execute"),
        };
        reply.to_string()
    }

    fn add(&self, a: &Value) -> Result<Value, &'static str> {
        let proto = match a.get("proto").and_then(Value::as_str) {
            Some("tcp") => "tcp",
            Some("udp") => "udp",
            _ => return Err("bad arguments.proto"),
        };
        let addr = |key: &str, default: Ipv4Addr| -> Option<Ipv4Addr> {
            match a.get(key).and_then(Value::as_str) {
                None | Some("") => Some(default),
                Some(s) => s.parse().ok(),
            }
        };
        // slirp4netns reads ports as JSON numbers cut to integers; 0 (or absent) is refused.
        let port = |key: &str| -> Option<u16> {
            a.get(key)
                .and_then(Value::as_f64)
                .map(f64::trunc)
                .filter(|p| (1.0..=65535.0).contains(p))
                .map(|p| p as u16)
        };
        let host_ip = addr("host_addr", Ipv4Addr::UNSPECIFIED).ok_or("bad arguments.host_addr")?;
        let host = SocketAddrV4::new(host_ip, port("host_port").ok_or("bad arguments.host_port")?);
        let guest_ip = addr("guest_addr", self.guest_default).ok_or("bad arguments.guest_addr")?;
        let guest = SocketAddrV4::new(
            guest_ip,
            port("guest_port").ok_or("bad arguments.guest_port")?,
        );
        let fwd = self.forward(proto, host, guest).map_err(|e| {
            // Once, through the log (stderr at the default level).
            tracing::warn!("api: add_hostfwd {proto} {host} -> {guest}: {e}");
            "slirp_add_hostfwd failed"
        })?;
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let id = e.0;
        e.0 += 1;
        e.1.insert(
            id,
            Entry {
                proto,
                host,
                guest,
                fwd,
            },
        );
        Ok(json!({ "return": { "id": id } }))
    }

    /// Binds the host socket and hands it to the stack; returns the stack's forward id.
    fn forward(&self, proto: &str, host: SocketAddrV4, guest: SocketAddrV4) -> Result<u64, String> {
        if guest.ip().is_loopback() {
            return Err(format!(
                "the namespace's loopback is not reachable through its interface; use {}",
                self.guest_default
            ));
        }
        let (fd, fproto): (OwnedFd, ForwardProto) = if proto == "tcp" {
            let l = TcpListener::bind(host).map_err(|e| format!("cannot bind {host}/tcp: {e}"))?;
            (l.into(), ForwardProto::Tcp)
        } else {
            let u = UdpSocket::bind(host).map_err(|e| format!("cannot bind {host}/udp: {e}"))?;
            (u.into(), ForwardProto::Udp)
        };
        self.stack
            .add_forward(fproto, fd, guest)
            .map_err(|e| e.to_string())
    }

    /// slirp4netns's list_hostfwd answer: `{"entries": [...]}` (no "return" wrapper), each
    /// entry's members in slirp4netns's order.
    fn list(&self) -> String {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entries: Vec<ListEntry<'_>> =
            e.1.iter()
                .map(|(id, x)| ListEntry {
                    id: *id,
                    proto: x.proto,
                    host_addr: x.host.ip().to_string(),
                    host_port: x.host.port(),
                    guest_addr: x.guest.ip().to_string(),
                    guest_port: x.guest.port(),
                })
                .collect();
        // A struct keeps its members' order when serialized (a json! map would sort them).
        serde_json::to_string(&ListReply { entries }).unwrap_or_default()
    }

    fn remove(&self, a: &Value) -> Result<Value, &'static str> {
        let id = a
            .get("id")
            .and_then(Value::as_f64)
            .map(|f| f.trunc() as i64)
            .ok_or("bad arguments.id")?;
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = e.1.get(&id).ok_or("bad arguments.id")?.fwd;
        match self.stack.remove_forward(entry) {
            Ok(_) => {
                e.1.remove(&id);
                Ok(json!({ "return": {} }))
            }
            Err(x) => {
                tracing::warn!("api: remove_hostfwd {id}: {x}");
                Err("slirp_remove_hostfwd failed")
            }
        }
    }
}

#[derive(serde::Serialize)]
struct ListReply<'a> {
    entries: Vec<ListEntry<'a>>,
}

#[derive(serde::Serialize)]
struct ListEntry<'a> {
    id: i64,
    proto: &'a str,
    host_addr: String,
    host_port: u16,
    guest_addr: String,
    guest_port: u16,
}

fn err(desc: &str) -> Value {
    json!({ "error": { "desc": desc } })
}

/// What one API connection sent.
enum Request {
    Json(Value),
    Unparsable,
    /// The request filled slirp4netns's 4096-byte buffer.
    TooLarge,
}

/// slirp4netns's request buffer: a request must be shorter.
const MAX_REQUEST: usize = 4096;

/// Reads a request: what arrives until one complete JSON value has (a client may write it in
/// pieces), the peer stops writing, or slirp4netns's 4096-byte limit is reached.
fn read_request(c: &mut UnixStream) -> std::io::Result<Request> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        let n = c.read(&mut buf[len..])?;
        len += n;
        if len >= MAX_REQUEST {
            return Ok(Request::TooLarge);
        }
        match serde_json::from_slice::<Value>(&buf[..len]) {
            Ok(v) => return Ok(Request::Json(v)),
            Err(e) if e.is_eof() && n > 0 => continue,
            Err(_) => return Ok(Request::Unparsable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    /// An API over a real stack whose tap is one end of a socketpair (no privileges needed).
    fn api() -> (Api, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        let stack =
            burrow_netstack::spawn_stack(OwnedFd::from(a), burrow_netstack::StackConfig::default())
                .unwrap();
        (Api::new(Arc::new(stack), Ipv4Addr::new(10, 0, 2, 100)), b)
    }

    fn ask(api: &Api, req: &str) -> String {
        api.handle(&serde_json::from_str(req).unwrap())
    }

    #[test]
    fn errors_are_slirp4netns_texts() {
        let (api, _tap) = api();
        let cases = [
            ("[1]", "bad request: json_object() failed"),
            (r#"{"unexpectedjson": 42}"#, "bad request: no execute found"),
            (r#"{"execute": "bad"}"#, "bad request: unknown execute"),
            (
                r#"{"execute": "add_hostfwd", "arguments": {"proto": "bad"}}"#,
                "bad request: add_hostfwd: bad arguments.proto",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "x", "host_port": 1, "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.host_addr",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.host_port",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments": {"proto": "udp", "host_port": 1, "guest_addr": "10.0.2", "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.guest_addr",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments": {"proto": "udp", "host_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.guest_port",
            ),
            (
                r#"{"execute": "remove_hostfwd", "arguments": {"id": 7}}"#,
                "bad request: remove_hostfwd: bad arguments.id",
            ),
        ];
        for (req, desc) in cases {
            assert_eq!(ask(&api, req), err(desc).to_string(), "{req}");
        }
    }

    #[test]
    fn add_list_remove_answer_as_slirp4netns() {
        let (api, _tap) = api();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let add = format!(
            r#"{{"execute": "add_hostfwd", "arguments": {{"proto": "tcp", "host_addr": "127.0.0.1", "host_port": {port}, "guest_port": 80}}}}"#
        );
        assert_eq!(ask(&api, &add), r#"{"return":{"id":1}}"#);
        // The same port again: the bind fails, as slirp_add_hostfwd would.
        assert_eq!(
            ask(&api, &add),
            r#"{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}"#
        );
        assert_eq!(
            ask(&api, r#"{"execute": "list_hostfwd"}"#),
            format!(
                r#"{{"entries":[{{"id":1,"proto":"tcp","host_addr":"127.0.0.1","host_port":{port},"guest_addr":"10.0.2.100","guest_port":80}}]}}"#
            )
        );
        assert_eq!(
            ask(
                &api,
                r#"{"execute": "remove_hostfwd", "arguments": {"id": 1}}"#
            ),
            r#"{"return":{}}"#
        );
        assert_eq!(
            ask(&api, r#"{"execute": "list_hostfwd"}"#),
            r#"{"entries":[]}"#
        );
    }
}
