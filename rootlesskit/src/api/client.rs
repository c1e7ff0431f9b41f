//! A blocking client of the v1 API (HTTP/1.1 over the unix socket, one connection per call).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ErrorBody, Info};
use crate::port::{PortSpec, PortStatus};

/// How long one call may take before it fails.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the launcher API at {path}: {source} (is burrow-rootlesskit running with this state dir?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the launcher API at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the launcher API at {path} sent a malformed response: {why}")]
    Protocol { path: PathBuf, why: String },
    #[error("{message}")]
    Api { status: u16, message: String },
}

/// A client for one API socket.
#[derive(Debug, Clone)]
pub struct Client {
    sock: PathBuf,
}

impl Client {
    pub fn new(sock: &Path) -> Self {
        Client {
            sock: sock.to_path_buf(),
        }
    }

    /// `GET /v1/info`.
    pub fn info(&self) -> Result<Info, ClientError> {
        let body = self.call("GET", "/v1/info", None)?;
        self.decode(&body)
    }

    /// `GET /v1/ports`.
    pub fn list_ports(&self) -> Result<Vec<PortStatus>, ClientError> {
        let body = self.call("GET", "/v1/ports", None)?;
        self.decode(&body)
    }

    /// `POST /v1/ports`: publishes a port and returns it with its id.
    pub fn add_port(&self, spec: &PortSpec) -> Result<PortStatus, ClientError> {
        let req = serde_json::to_vec(spec)
            .map_err(|e| self.protocol(format!("cannot encode the spec: {e}")))?;
        let body = self.call("POST", "/v1/ports", Some(&req))?;
        self.decode(&body)
    }

    /// `DELETE /v1/ports/{id}`.
    pub fn remove_port(&self, id: u64) -> Result<(), ClientError> {
        self.call("DELETE", &format!("/v1/ports/{id}"), None)
            .map(drop)
    }

    fn protocol(&self, why: String) -> ClientError {
        ClientError::Protocol {
            path: self.sock.clone(),
            why,
        }
    }

    fn io(&self, source: std::io::Error) -> ClientError {
        ClientError::Io {
            path: self.sock.clone(),
            source,
        }
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| self.protocol(e.to_string()))
    }

    /// One request; returns the body of a 2xx response, or the API's error message.
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Vec<u8>, ClientError> {
        let mut s = UnixStream::connect(&self.sock).map_err(|source| ClientError::Connect {
            path: self.sock.clone(),
            source,
        })?;
        s.set_read_timeout(Some(TIMEOUT)).map_err(|e| self.io(e))?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(|e| self.io(e))?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        let mut out = req.into_bytes();
        out.extend_from_slice(body.unwrap_or_default());
        s.write_all(&out).map_err(|e| self.io(e))?;

        let mut r = BufReader::new(s.take(MAX_RESPONSE));
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| self.io(e))?;
        let status: u16 = line
            .strip_prefix("HTTP/1.")
            .and_then(|l| l.get(2..5))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| self.protocol(format!("bad status line {:?}", line.trim_end())))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| self.io(e))? == 0 {
                return Err(self.protocol("headers cut short".into()));
            }
            let h = line.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = Some(
                        v.parse::<u64>()
                            .map_err(|_| self.protocol(format!("bad content-length {v:?}")))?,
                    );
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line).map_err(|e| self.io(e))?;
                let size = line.trim_end().split(';').next().unwrap_or_default();
                let n = usize::from_str_radix(size, 16)
                    .map_err(|_| self.protocol(format!("bad chunk size {size:?}")))?;
                let start = data.len();
                data.resize(start + n + 2, 0);
                r.read_exact(&mut data[start..]).map_err(|e| self.io(e))?;
                data.truncate(start + n);
                if n == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            (&mut r)
                .take(n)
                .read_to_end(&mut data)
                .map_err(|e| self.io(e))?;
        } else {
            r.read_to_end(&mut data).map_err(|e| self.io(e))?;
        }
        if (200..300).contains(&status) {
            return Ok(data);
        }
        let message = serde_json::from_slice::<ErrorBody>(&data)
            .map(|e| e.message)
            .unwrap_or_else(|_| {
                format!("HTTP {status}: {}", String::from_utf8_lossy(&data).trim())
            });
        Err(ClientError::Api { status, message })
    }
}
