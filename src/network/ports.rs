//! `-p/--publish` specs as Docker parses them (`[hostIP:][hostPort[-end]:]containerPort[-end][/proto]`)
//! and the port mappings stored with a container (nerdctl's `nerdctl/ports` label shape).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One published port, as nerdctl stores it in the `nerdctl/ports` label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    #[serde(rename = "HostPort")]
    pub host_port: u16,
    #[serde(rename = "ContainerPort")]
    pub container_port: u16,
    #[serde(rename = "Protocol")]
    pub protocol: String,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
}

impl PortMapping {
    /// Docker's `ps`/`port` rendering: `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        format!(
            "{}->{}/{}",
            self.host_address(),
            self.container_port,
            self.protocol
        )
    }

    /// The host side as an address: `0.0.0.0:8080`, `[::1]:8080`.
    pub fn host_address(&self) -> String {
        match self.host_ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("[{}]:{}", self.host_ip, self.host_port),
            _ => format!("{}:{}", self.host_ip, self.host_port),
        }
    }
}

/// A `-p` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid -p {spec:?}: {why} (expected [hostIP:][hostPort:]containerPort[/tcp|udp], e.g. 8080:80)")]
pub struct BadPort {
    pub spec: String,
    pub why: String,
}

fn range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a
        .parse()
        .map_err(|_| format!("{a:?} is not a port number"))?;
    let b: u16 = b
        .parse()
        .map_err(|_| format!("{b:?} is not a port number"))?;
    if a == 0 || b < a {
        return Err(format!("bad port range {s:?}"));
    }
    Ok((a, b))
}

/// Parses one `-p` value. A missing host port means "any free port": Docker picks one; here
/// the host port is chosen by `free_port` (called once per container port).
pub fn parse(
    spec: &str,
    mut free_port: impl FnMut(&str, &str) -> Result<u16, String>,
) -> Result<Vec<PortMapping>, BadPort> {
    let bad = |why: String| BadPort {
        spec: spec.to_string(),
        why,
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(bad(format!("unsupported protocol {proto:?}")));
    }
    // An IPv6 host IP comes in brackets: [::1]:8080:80.
    let (host_ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| bad("unterminated [IPv6] address".into()))?;
        (Some(ip.to_string()), r.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(bad("too many ':'".into())),
        }
    };
    let host_ip = match host_ip.filter(|s| !s.is_empty()) {
        Some(ip) => {
            ip.parse::<IpAddr>()
                .map_err(|_| bad(format!("{ip:?} is not an IP address")))?;
            ip
        }
        None => "0.0.0.0".to_string(),
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest.as_str()),
    };
    let (c0, c1) = range(container).map_err(bad)?;
    let mut out = Vec::new();
    match host.filter(|h| !h.is_empty()) {
        Some(h) => {
            let (h0, h1) = range(h).map_err(bad)?;
            if h1 - h0 != c1 - c0 {
                return Err(bad("host and container port ranges differ in size".into()));
            }
            for i in 0..=(c1 - c0) {
                out.push(PortMapping {
                    host_port: h0 + i,
                    container_port: c0 + i,
                    protocol: proto.clone(),
                    host_ip: host_ip.clone(),
                });
            }
        }
        None => {
            for c in c0..=c1 {
                let hp = free_port(&host_ip, &proto).map_err(bad)?;
                out.push(PortMapping {
                    host_port: hp,
                    container_port: c,
                    protocol: proto.clone(),
                    host_ip: host_ip.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A port the kernel has free right now on `ip` (bind to port 0 and read it back).
pub fn kernel_free_port(ip: &str, proto: &str) -> Result<u16, String> {
    let addr = format!(
        "{}:0",
        if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        }
    );
    let port = if proto == "udp" {
        std::net::UdpSocket::bind(&addr).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(&addr).and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on {ip}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<PortMapping>, BadPort> {
        parse(s, |_, _| Ok(40000))
    }

    #[test]
    fn docker_forms() {
        let m = p("8080:80").unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].display(), "0.0.0.0:8080->80/tcp");
        assert_eq!(
            p("127.0.0.1:53:53/udp").unwrap()[0].display(),
            "127.0.0.1:53->53/udp"
        );
        assert_eq!(
            p("[::1]:8080:80").unwrap()[0].display(),
            "[::1]:8080->80/tcp"
        );
        assert_eq!(p("80").unwrap()[0].host_port, 40000);
        assert_eq!(p("127.0.0.1::80").unwrap()[0].host_port, 40000);
        let r = p("8000-8002:9000-9002").unwrap();
        assert_eq!(
            r.iter()
                .map(|m| (m.host_port, m.container_port))
                .collect::<Vec<_>>(),
            [(8000, 9000), (8001, 9001), (8002, 9002)]
        );
    }

    #[test]
    fn bad_specs_say_why() {
        for s in [
            "8080:80/sctp",
            "x:80",
            "1.2.3:8080:80",
            "8000-8001:80",
            "0",
            "a:b:c:d",
        ] {
            let e = p(s).unwrap_err().to_string();
            assert!(e.contains("invalid -p"), "{s}: {e}");
        }
    }

    #[test]
    fn label_shape_is_nerdctls() {
        let j = serde_json::to_string(&p("8080:80").unwrap()).unwrap();
        assert_eq!(
            j,
            r#"[{"HostPort":8080,"ContainerPort":80,"Protocol":"tcp","HostIP":"0.0.0.0"}]"#
        );
    }
}
