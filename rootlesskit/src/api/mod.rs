//! The launcher's REST API on `api.sock`: RootlessKit's v1 shapes over HTTP/1.1 on a unix socket,
//! served on a thread of its own; and a blocking client for it.

pub mod client;
pub mod ctl;
mod server;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::port::{PortDriver, PortDriverInfo};

pub use server::{serve, ApiServer};

/// The REST API version we implement (RootlessKit's `api.Version`).
pub const API_VERSION: &str = "1.1.1";

/// What `GET /v1/info` says about the network driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDriverInfo {
    pub driver: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    #[serde(rename = "childIP", default, skip_serializing_if = "Option::is_none")]
    pub child_ip: Option<IpAddr>,
}

/// What the server needs to answer: fixed facts and the port driver (None: `--port-driver=none`).
pub struct ApiInfo {
    pub version: String,
    pub state_dir: PathBuf,
    pub child_pid: i32,
    pub network_driver: NetworkDriverInfo,
    pub port_driver: Option<Arc<dyn PortDriver>>,
}

/// The body of `GET /v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub version: String,
    #[serde(rename = "stateDir")]
    pub state_dir: PathBuf,
    #[serde(rename = "childPID")]
    pub child_pid: i32,
    #[serde(
        rename = "networkDriver",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_driver: Option<NetworkDriverInfo>,
    #[serde(
        rename = "portDriver",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub port_driver: Option<PortDriverInfo>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}

/// Why the API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot serve the API on {path}: another process is already serving it; stop it or use another --state-dir")]
    InUse { path: PathBuf },
    #[error("cannot remove the stale API socket {path}: {source}")]
    Stale {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bind the API socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the API server thread: {0}")]
    Thread(std::io::Error),
}
