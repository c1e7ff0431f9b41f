//! Port driver `slirp`: host listeners whose connections and datagrams enter the namespace
//! through the embedded stack (--net=builtin), so services inside see each client's own address.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use burrow_netstack::{ForwardProto, StackHandle};

use super::builtin::bind_host;
use super::{PortDriver, PortDriverInfo, PortError, PortSpec, PortStatus, PortTable, Proto};

/// Publishes ports through the embedded stack's forwards.
pub struct SlirpDriver {
    stack: Arc<StackHandle>,
    /// The namespace's tap address: where forwarded traffic goes unless the spec names one.
    child_ip: Ipv4Addr,
    ports: Mutex<PortTable<u64>>,
}

impl SlirpDriver {
    pub fn new(stack: Arc<StackHandle>, child_ip: Ipv4Addr) -> SlirpDriver {
        SlirpDriver {
            stack,
            child_ip,
            ports: Mutex::new(PortTable::default()),
        }
    }

    fn guest(&self, spec: &PortSpec) -> Result<SocketAddrV4, PortError> {
        let ip = match spec.child_ip {
            None => self.child_ip,
            Some(IpAddr::V4(a)) if a.is_loopback() => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp port driver enters the namespace through its interface and cannot reach its loopback; leave childIP out (it then goes to {}) or use --port-driver=builtin",
                    self.child_ip
                )))
            }
            Some(IpAddr::V4(a)) => a,
            Some(IpAddr::V6(_)) => {
                return Err(PortError::Invalid(format!(
                    "{spec}: the slirp port driver reaches the namespace over IPv4 only; use --port-driver=builtin for an IPv6 child address"
                )))
            }
        };
        Ok(SocketAddrV4::new(ip, spec.child_port))
    }
}

impl PortDriver for SlirpDriver {
    fn info(&self) -> PortDriverInfo {
        PortDriverInfo {
            driver: "slirp".into(),
            protos: Proto::ALL.iter().map(|p| p.as_str().to_owned()).collect(),
            disallow_loopback_child_ip: true,
        }
    }

    fn add(&self, spec: PortSpec) -> Result<PortStatus, PortError> {
        spec.validate()?;
        let guest = self.guest(&spec)?;
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.check_conflict(&spec)?;
        let listener = bind_host(&spec)?;
        let proto = if spec.proto.is_tcp() {
            ForwardProto::Tcp
        } else {
            ForwardProto::Udp
        };
        let fwd = self
            .stack
            .add_forward(proto, listener, guest)
            .map_err(|e| PortError::Driver(e.to_string()))?;
        Ok(ports.insert(spec, fwd))
    }

    fn list(&self) -> Vec<PortStatus> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        ports.list()
    }

    fn remove(&self, id: u64) -> Result<(), PortError> {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let fwd = ports.key(id)?;
        self.stack
            .remove_forward(fwd)
            .map_err(|e| PortError::Driver(e.to_string()))?;
        ports.remove(id);
        Ok(())
    }
}
