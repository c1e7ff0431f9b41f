//! The one containerd client: a tonic channel over the endpoint's unix socket and the namespace
//! (and lease) every request carries, with an accessor per containerd service and one error type.

mod error;
pub mod server;
#[cfg(test)]
mod tests;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient, diff_client::DiffClient,
    events_client::EventsClient, images_client::ImagesClient,
    introspection_client::IntrospectionClient, leases_client::LeasesClient,
    snapshots::snapshots_client::SnapshotsClient, tasks_client::TasksClient,
    version_client::VersionClient,
};
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;

use crate::connection::{Endpoint, Mode};
pub use error::{Error, RpcResult};

/// The metadata key containerd reads the namespace of a request from.
const NAMESPACE_KEY: &str = "containerd-namespace";
/// The metadata key containerd reads the lease of a request from.
const LEASE_KEY: &str = "containerd-lease";
/// The largest content message either side may send (containerd accepts up to 16 MiB).
const CONTENT_MESSAGE_LIMIT: usize = 32 << 20;

/// What every request of a [`Client`] carries: its namespace, and its lease when it has one.
/// Both were checked to be valid metadata when the client was made, so adding them cannot fail.
#[derive(Debug, Clone)]
pub struct Namespaced {
    namespace: AsciiMetadataValue,
    lease: Option<AsciiMetadataValue>,
}

impl Interceptor for Namespaced {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let md = req.metadata_mut();
        md.insert(NAMESPACE_KEY, self.namespace.clone());
        if let Some(lease) = &self.lease {
            md.insert(LEASE_KEY, lease.clone());
        }
        Ok(req)
    }
}

/// The transport of every service client: the channel, with the namespace added to each request.
pub type Service = InterceptedService<Channel, Namespaced>;

/// containerd in one namespace (and optionally under one lease). Clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    meta: Namespaced,
}

impl Client {
    /// Connects to the endpoint's containerd, in its namespace.
    pub async fn connect(ep: &Endpoint) -> Result<Client, Error> {
        let channel = containerd_client::connect(&ep.socket)
            .await
            .map_err(|e| unreachable(ep, &e))?;
        Client::new(channel, &ep.namespace)
    }

    /// A client on an open channel; fails when `namespace` cannot be gRPC metadata.
    pub fn new(channel: Channel, namespace: &str) -> Result<Client, Error> {
        let namespace = namespace
            .parse()
            .map_err(|_| Error::Namespace(namespace.to_owned()))?;
        Ok(Client {
            channel,
            meta: Namespaced {
                namespace,
                lease: None,
            },
        })
    }

    /// This client with every request under the lease `id` (what it makes is kept from garbage
    /// collection until the lease ends).
    pub fn with_lease(&self, id: &str) -> Result<Client, Error> {
        let lease = id.parse().map_err(|_| Error::Lease(id.to_owned()))?;
        let mut c = self.clone();
        c.meta.lease = Some(lease);
        Ok(c)
    }

    /// This client with requests under no lease.
    pub fn without_lease(&self) -> Client {
        let mut c = self.clone();
        c.meta.lease = None;
        c
    }

    /// The namespace requests are made in.
    pub fn namespace(&self) -> &str {
        // Made from a &str, so always printable.
        self.meta.namespace.to_str().unwrap_or_default()
    }

    /// The lease requests are made under, if any.
    pub fn lease(&self) -> Option<&str> {
        self.meta.lease.as_ref().and_then(|l| l.to_str().ok())
    }

    fn service(&self) -> Service {
        InterceptedService::new(self.channel.clone(), self.meta.clone())
    }

    pub fn containers(&self) -> ContainersClient<Service> {
        ContainersClient::new(self.service())
    }

    pub fn tasks(&self) -> TasksClient<Service> {
        TasksClient::new(self.service())
    }

    pub fn snapshots(&self) -> SnapshotsClient<Service> {
        SnapshotsClient::new(self.service())
    }

    /// The content store, taking and sending messages of up to 32 MiB.
    pub fn content(&self) -> ContentClient<Service> {
        ContentClient::new(self.service())
            .max_decoding_message_size(CONTENT_MESSAGE_LIMIT)
            .max_encoding_message_size(CONTENT_MESSAGE_LIMIT)
    }

    pub fn images(&self) -> ImagesClient<Service> {
        ImagesClient::new(self.service())
    }

    pub fn leases(&self) -> LeasesClient<Service> {
        LeasesClient::new(self.service())
    }

    pub fn events(&self) -> EventsClient<Service> {
        EventsClient::new(self.service())
    }

    pub fn introspection(&self) -> IntrospectionClient<Service> {
        IntrospectionClient::new(self.service())
    }

    pub fn diff(&self) -> DiffClient<Service> {
        DiffClient::new(self.service())
    }

    pub fn version(&self) -> VersionClient<Service> {
        VersionClient::new(self.service())
    }
}

/// Why the endpoint's socket took no connection, with its sources, and what to check.
fn unreachable(ep: &Endpoint, e: &tonic::transport::Error) -> Error {
    let mut reason = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !reason.contains(&text) {
            reason = format!("{reason}: {text}");
        }
        src = s.source();
    }
    let hint = match ep.mode {
        Mode::Rootless => " (see `burrow setup status`; `burrow setup install` restarts it)",
        Mode::Rootful => " (is the system containerd running? `systemctl start containerd`)",
    };
    Error::Unreachable {
        socket: ep.socket.clone(),
        reason,
        hint: hint.to_owned(),
    }
}
