//! What the containerd server says about itself (for `version` and `info`): its version and
//! revision, and the snapshotter plugins it loaded.

use std::path::PathBuf;

use containerd_client::services::v1::PluginsRequest;

use super::{Client, Error};
use crate::connection::Endpoint;

/// containerd could not be asked, or refused to answer.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Client(#[from] Error),
    #[error("containerd at {socket} refused {call}: {message}")]
    Refused {
        socket: PathBuf,
        call: &'static str,
        message: String,
    },
}

/// containerd's Version answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: String,
    pub revision: String,
}

/// A connection to the endpoint's containerd for asking about itself.
#[derive(Debug, Clone)]
pub struct Server {
    client: Client,
    socket: PathBuf,
}

impl Server {
    pub async fn connect(ep: &Endpoint) -> Result<Server, ServerError> {
        Ok(Server {
            client: Client::connect(ep).await?,
            socket: ep.socket.clone(),
        })
    }

    fn refused(&self, call: &'static str, s: tonic::Status) -> ServerError {
        ServerError::Refused {
            socket: self.socket.clone(),
            call,
            message: s.message().to_owned(),
        }
    }

    /// The Version service's answer.
    pub async fn version(&self) -> Result<Version, ServerError> {
        let v = self
            .client
            .version()
            .version(())
            .await
            .map_err(|s| self.refused("Version", s))?
            .into_inner();
        Ok(Version {
            version: v.version,
            revision: v.revision,
        })
    }

    /// The snapshotter plugins that loaded without error, sorted by id.
    pub async fn snapshotters(&self) -> Result<Vec<String>, ServerError> {
        let plugins = self
            .client
            .introspection()
            .plugins(PluginsRequest {
                filters: vec!["type==io.containerd.snapshotter.v1".to_owned()],
            })
            .await
            .map_err(|s| self.refused("Introspection.Plugins", s))?
            .into_inner();
        let mut snaps: Vec<String> = plugins
            .plugins
            .into_iter()
            .filter(|p| p.init_err.is_none())
            .map(|p| p.id)
            .collect();
        snaps.sort();
        Ok(snaps)
    }
}
