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
        let req = read_request(&mut c)?;
        let reply = match req {
            Ok(v) => self.handle(&v),
            Err(e) => err(&e),
        };
        c.write_all(reply.to_string().as_bytes())
    }

    /// Answers one request (a JSON value with "execute" and "arguments").
    pub fn handle(&self, req: &Value) -> Value {
        let args = req.get("arguments").cloned().unwrap_or(Value::Null);
        match req.get("execute").and_then(Value::as_str) {
            Some("add_hostfwd") => self.add(&args).unwrap_or_else(|e| err(&e)),
            Some("list_hostfwd") => self.list(),
            Some("remove_hostfwd") => self.remove(&args).unwrap_or_else(|e| err(&e)),
            Some(other) => err(&format!(
                "unknown command {other:?}: burrow-slirp implements add_hostfwd, list_hostfwd and remove_hostfwd"
            )),
            None => err("the request has no \"execute\" member"),
        }
    }

    fn add(&self, a: &Value) -> Result<Value, String> {
        let proto = match a.get("proto").and_then(Value::as_str) {
            Some("tcp") => "tcp",
            Some("udp") => "udp",
            other => return Err(format!("proto {other:?}: use \"tcp\" or \"udp\"")),
        };
        let addr = |key: &str, default: Ipv4Addr| -> Result<Ipv4Addr, String> {
            match a.get(key).and_then(Value::as_str) {
                None | Some("") => Ok(default),
                Some(s) => s
                    .parse()
                    .map_err(|_| format!("{key} {s:?} is not an IPv4 address")),
            }
        };
        let port = |key: &str| -> Result<u16, String> {
            a.get(key)
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("{key} must be a port number 1..65535"))
        };
        let host = SocketAddrV4::new(
            addr("host_addr", Ipv4Addr::UNSPECIFIED)?,
            port("host_port")?,
        );
        let guest_ip = addr("guest_addr", self.guest_default)?;
        if guest_ip.is_loopback() {
            return Err(format!(
                "guest_addr {guest_ip}: the namespace's loopback is not reachable through its interface; use {}",
                self.guest_default
            ));
        }
        let guest = SocketAddrV4::new(guest_ip, port("guest_port")?);
        let (fd, fproto): (OwnedFd, ForwardProto) = if proto == "tcp" {
            let l = TcpListener::bind(host).map_err(|e| format!("cannot bind {host}/tcp: {e}"))?;
            (l.into(), ForwardProto::Tcp)
        } else {
            let u = UdpSocket::bind(host).map_err(|e| format!("cannot bind {host}/udp: {e}"))?;
            (u.into(), ForwardProto::Udp)
        };
        let fwd = self
            .stack
            .add_forward(fproto, fd, guest)
            .map_err(|e| e.to_string())?;
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

    fn list(&self) -> Value {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entries: Vec<Value> =
            e.1.iter()
                .map(|(id, x)| {
                    json!({
                        "id": id,
                        "proto": x.proto,
                        "host_addr": x.host.ip().to_string(),
                        "host_port": x.host.port(),
                        "guest_addr": x.guest.ip().to_string(),
                        "guest_port": x.guest.port(),
                    })
                })
                .collect();
        json!({ "return": { "entries": entries } })
    }

    fn remove(&self, a: &Value) -> Result<Value, String> {
        let id = a
            .get("id")
            .and_then(Value::as_i64)
            .ok_or("remove_hostfwd needs an \"id\"")?;
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry =
            e.1.remove(&id)
                .ok_or_else(|| format!("no forward with id {id} (list_hostfwd lists them)"))?;
        self.stack
            .remove_forward(entry.fwd)
            .map_err(|x| x.to_string())?;
        Ok(json!({ "return": {} }))
    }
}

fn err(desc: &str) -> Value {
    json!({ "error": { "desc": desc } })
}

/// Reads until one complete JSON value has arrived (or the peer stops writing).
fn read_request(c: &mut UnixStream) -> std::io::Result<Result<Value, String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = c.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice::<Value>(&buf) {
            Ok(v) => return Ok(Ok(v)),
            Err(e) if e.is_eof() && n > 0 && buf.len() < 1 << 16 => continue,
            Err(e) => return Ok(Err(format!("bad request: {e}"))),
        }
    }
}
