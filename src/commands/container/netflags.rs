//! `run`/`create`'s network flags: `--network` (repeatable, short and long form),
//! `--network-alias` and `--mac-address`, put into the request's endpoints.

use burrow::containers::endpoints::Endpoint;
use burrow::containers::request::ContainerRequest;
use burrow::containers::values::{parse_all, parse_flag, FlagError};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetFlags {
    /// Connect to a network: bridge (default; burrow.toml's `network`, or host inside a Slurm
    /// job), host, none,
    /// container:NAME (share that running container's network), a network's name or name=NET[,alias=A][,ip=IP][,mac-address=MAC].
    /// Repeat to join several; the first is the primary (default route).
    #[arg(long, alias = "net", value_name = "NETWORK")]
    pub network: Vec<String>,
    /// Add a network-scoped alias on the first network (user-defined networks only).
    #[arg(long, alias = "net-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// The MAC address of the container's interface on the first network (e.g.
    /// 02:42:ac:11:00:02).
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,
}

impl NetFlags {
    /// Sets the request's network mode (the first network), endpoints and MAC.
    pub fn apply(&self, r: &mut ContainerRequest) -> Result<(), FlagError> {
        let mut endpoints: Vec<Endpoint> = parse_all("--network", &self.network)?;
        if endpoints.is_empty() {
            // burrow.toml's, or in a Slurm job the node's own (for MPI), else bridge.
            endpoints.push(Endpoint {
                network: burrow::config::default_network(),
                ..Endpoint::default()
            });
        }
        endpoints[0]
            .aliases
            .extend(self.network_alias.iter().cloned());
        r.host_config.network_mode = endpoints[0].network.clone();
        r.networking_config.endpoints = endpoints;
        r.config.mac_address = self
            .mac_address
            .as_deref()
            .map(|m| parse_flag("--mac-address", m))
            .transpose()?;
        Ok(())
    }
}
