//! The context container operations run in: one connection to containerd (its services as
//! burrow uses them), burrow's own store, the network paths; and finding a container by id,
//! name or id prefix.

use std::path::PathBuf;

use containerd_client::services::v1::Container;

use super::labels;
use super::lifecycle::Client;
use super::store::Store;
use crate::connection::{self, Endpoint, Globals, Mode, UserEnv};
use crate::images::runnable::ImageStore;
use crate::network::NetPaths;

/// A container query that names no container, or several.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{query} matches {count} containers: give more of the id")]
    Ambiguous { query: String, count: usize },
}

impl LookupError {
    /// Whether `e` (anywhere in its chain) says the container does not exist.
    pub fn is_not_found(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            matches!(
                c.downcast_ref::<LookupError>(),
                Some(LookupError::NotFound(_))
            )
        })
    }
}

/// Everything a container operation needs: the endpoint, containerd's services, burrow's store
/// and the network paths.
pub struct Ctx {
    pub ep: Endpoint,
    pub client: Client,
    pub images: ImageStore,
    pub store: Store,
    pub net: NetPaths,
    /// Where CDI specs are read from (see [`crate::devices::cdi::spec_dirs`]).
    pub cdi_spec_dirs: Vec<PathBuf>,
}

impl Ctx {
    pub async fn connect(g: &Globals) -> anyhow::Result<Ctx> {
        let ep = connection::resolve(g)?;
        let env = UserEnv::current();
        let containerd = crate::client::Client::connect(&ep).await?;
        tracing::debug!("connected to containerd");
        let mut net = NetPaths::for_endpoint(&ep, &env);
        if let Some(p) = std::env::var_os("NETCONFPATH") {
            net.conf_dir = PathBuf::from(p);
        }
        let cdi_spec_dirs = crate::devices::cdi::spec_dirs(
            std::env::var_os(crate::devices::cdi::SPEC_DIRS_ENV).as_deref(),
            g.cdi_spec_dirs.as_deref(),
            ep.mode == Mode::Rootless,
            env.config_home.as_deref(),
        );
        Ok(Ctx {
            cdi_spec_dirs,
            client: Client::new(containerd.clone()),
            images: ImageStore::new(containerd),
            store: Store::new(ep.data_root.clone(), ep.namespace.clone()),
            net,
            ep,
        })
    }

    pub fn rootless(&self) -> bool {
        self.ep.mode == Mode::Rootless
    }

    /// The pid of the launcher's child (whose namespaces the runtime runs in), when rootless.
    pub fn launcher_pid(&self) -> Option<i32> {
        self.ep.launcher.as_ref().map(|l| l.child_pid)
    }

    /// The container `query` names: a full id, a name, or a unique id prefix.
    pub async fn find(&self, query: &str) -> anyhow::Result<Container> {
        match self.client.get(query).await {
            Ok(c) => return Ok(c),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let all = self.client.list(vec![]).await?;
        if let Some(c) = all
            .iter()
            .find(|c| c.labels.get(labels::NAME).map(String::as_str) == Some(query))
        {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = all.iter().filter(|c| c.id.starts_with(query)).collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(LookupError::NotFound(query.to_string()).into()),
            _ => Err(LookupError::Ambiguous {
                query: query.to_string(),
                count: matches.len(),
            }
            .into()),
        }
    }
}
