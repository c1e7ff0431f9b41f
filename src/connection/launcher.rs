//! What the rootless launcher's REST API reports about itself: its network and port drivers and
//! the child's address (for `info`).

use super::LauncherInfo;

/// The launcher's drivers; each `None` when its API did not answer (or has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drivers {
    pub network: Option<String>,
    pub port: Option<String>,
    pub child_ip: Option<String>,
}

impl LauncherInfo {
    /// Asks the launcher's API; a launcher that does not answer is logged and reads as unknown.
    pub fn drivers(&self) -> Drivers {
        match burrow_rootlesskit::api::client::Client::new(&self.api_socket).info() {
            Ok(i) => Drivers {
                network: i.network_driver.as_ref().map(|n| n.driver.clone()),
                port: i.port_driver.as_ref().map(|p| p.driver.clone()),
                child_ip: i
                    .network_driver
                    .and_then(|n| n.child_ip)
                    .map(|ip| ip.to_string()),
            },
            Err(err) => {
                tracing::warn!(%err, "launcher API did not answer; drivers unknown");
                Drivers::default()
            }
        }
    }
}
