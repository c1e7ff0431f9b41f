//! Port driver `slirp4netns`: ports published by slirp4netns itself (its API's add_hostfwd), as
//! RootlessKit's driver of that name does; connections reach the child with slirp's address.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::{PortDriver, PortDriverInfo, PortError, PortSpec, PortStatus, PortTable, Proto};

/// Publishes ports through slirp4netns's API socket.
pub struct Slirp4netnsDriver {
    api: PathBuf,
    /// The namespace's tap address: where forwarded connections go unless the spec names one.
    child_ip: Ipv4Addr,
    /// slirp4netns runs with --disable-host-loopback, so it drops the child's UDP replies.
    no_host_loopback: bool,
    ports: Mutex<PortTable<i64>>,
}

impl Slirp4netnsDriver {
    pub fn new(api: PathBuf, child_ip: Ipv4Addr, no_host_loopback: bool) -> Slirp4netnsDriver {
        Slirp4netnsDriver {
            api,
            child_ip,
            no_host_loopback,
            ports: Mutex::new(PortTable::default()),
        }
    }

    /// One request on the API socket; the `return` value or slirp4netns's error.
    fn call(&self, req: &Value) -> Result<Value, PortError> {
        let fail = |e: std::io::Error| {
            PortError::Driver(format!("slirp4netns API {}: {e}", self.api.display()))
        };
        let mut s = UnixStream::connect(&self.api).map_err(fail)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(fail)?;
        s.write_all(req.to_string().as_bytes()).map_err(fail)?;
        s.shutdown(std::net::Shutdown::Write).map_err(fail)?;
        let mut body = String::new();
        s.read_to_string(&mut body).map_err(fail)?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| PortError::Driver(format!("slirp4netns answered {body:?}: {e}")))?;
        if let Some(err) = v.get("error") {
            let desc = err
                .get("desc")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            return Err(PortError::Driver(format!("slirp4netns: {desc}")));
        }
        Ok(v.get("return").cloned().unwrap_or(Value::Null))
    }
}

impl PortDriver for Slirp4netnsDriver {
    fn info(&self) -> PortDriverInfo {
        PortDriverInfo {
            driver: "slirp4netns".into(),
            protos: ["tcp", "tcp4", "udp", "udp4"].map(String::from).to_vec(),
            disallow_loopback_child_ip: true,
        }
    }

    fn add(&self, spec: PortSpec) -> Result<PortStatus, PortError> {
        spec.validate()?;
        let proto = match spec.proto {
            Proto::Tcp | Proto::Tcp4 => "tcp",
            Proto::Udp | Proto::Udp4 => "udp",
            Proto::Tcp6 | Proto::Udp6 => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp4netns port driver publishes IPv4 only; use --port-driver=builtin for {}",
                    spec.proto
                )))
            }
        };
        let host_addr = match spec.parent_ip {
            None => Ipv4Addr::UNSPECIFIED,
            Some(IpAddr::V4(a)) => a,
            Some(IpAddr::V6(_)) => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp4netns port driver publishes IPv4 only"
                )))
            }
        };
        let guest = match spec.child_ip {
            None => self.child_ip,
            Some(IpAddr::V4(a)) if a.is_loopback() => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp4netns port driver cannot reach the child's loopback; leave childIP out (it then goes to {})",
                    self.child_ip
                )))
            }
            Some(IpAddr::V4(a)) => a,
            Some(IpAddr::V6(_)) => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp4netns port driver publishes IPv4 only"
                )))
            }
        };
        if proto == "udp" && self.no_host_loopback {
            // slirp4netns shows host clients to the child as 10.0.2.2 and, with
            // --disable-host-loopback, drops whatever the child sends there (RootlessKit's
            // driver has the same limit): datagrams arrive, answers do not.
            tracing::warn!(
                %spec,
                "slirp4netns drops this UDP port's replies while --disable-host-loopback is on; \
                 use --port-driver=builtin for UDP services that answer"
            );
        }
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.check_conflict(&spec)?;
        let ret = self.call(&json!({
            "execute": "add_hostfwd",
            "arguments": {
                "proto": proto,
                "host_addr": host_addr.to_string(),
                "host_port": spec.parent_port,
                "guest_addr": guest.to_string(),
                "guest_port": spec.child_port,
            }
        }));
        let ret = match ret {
            Ok(r) => r,
            Err(PortError::Driver(msg)) if msg.contains("bind") || msg.contains("in use") => {
                return Err(PortError::AddrInUse {
                    addr: format!("{host_addr}:{}", spec.parent_port),
                    spec: spec.to_string(),
                })
            }
            Err(e) => return Err(e),
        };
        let slirp_id = ret
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| PortError::Driver(format!("slirp4netns gave no hostfwd id ({ret})")))?;
        Ok(ports.insert(spec, slirp_id))
    }

    fn list(&self) -> Vec<PortStatus> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.list()
    }

    fn remove(&self, id: u64) -> Result<(), PortError> {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let slirp_id = ports.key(id)?;
        self.call(&json!({"execute": "remove_hostfwd", "arguments": {"id": slirp_id}}))?;
        ports.remove(id);
        Ok(())
    }
}
