//! burrow's own events for what containerd never sees (networks, volumes, and what Docker's
//! daemon itself does to containers): published on containerd's event stream under burrow's
//! topic, so that `events` and the API's /events report them as Docker does (network create,
//! destroy, connect, disconnect; volume create, destroy; container kill, stop, restart).
//! Publishing is best effort: a failure is logged, the operation stands.

use std::collections::BTreeMap;

use containerd_client::services::v1::PublishRequest;
use prost::Message;

use super::Ctx;
use crate::network::Network;

/// The containerd topic of burrow's own events.
pub const TOPIC: &str = "/burrow/events";
/// The type URL of [`OwnEvent`] in the envelope.
pub const TYPE_URL: &str = "burrow.events.v1.Event";

/// One event as Docker's events.Message carries it: type, action, actor.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OwnEvent {
    /// `network`, `volume` or `container`.
    #[prost(string, tag = "1")]
    pub kind: String,
    #[prost(string, tag = "2")]
    pub action: String,
    /// The network's id, the volume's name, the container's id.
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(btree_map = "string, string", tag = "4")]
    pub attributes: BTreeMap<String, String>,
}

/// Publishes `e` on [`TOPIC`].
pub async fn publish(ctx: &Ctx, e: OwnEvent) {
    let req = PublishRequest {
        topic: TOPIC.to_string(),
        event: Some(prost_types::Any {
            type_url: TYPE_URL.to_string(),
            value: e.encode_to_vec(),
        }),
    };
    if let Err(err) = ctx.client.containerd().events().publish(req).await {
        tracing::warn!(%err, kind = e.kind, action = e.action, "publishing an event");
    }
}

/// A network event (`container`: the container connected or disconnected).
pub async fn network(ctx: &Ctx, action: &str, n: &Network, container: Option<&str>) {
    let mut attributes = BTreeMap::from([
        ("name".to_string(), n.name.clone()),
        ("type".to_string(), "bridge".to_string()),
    ]);
    if let Some(c) = container {
        attributes.insert("container".into(), c.to_string());
    }
    let e = OwnEvent {
        kind: "network".into(),
        action: action.into(),
        id: n.id.clone(),
        attributes,
    };
    publish(ctx, e).await;
}

/// A container event of what burrow did to it (`kill` with its `signal`, `stop`, `restart`);
/// `events` adds the container's name, image and labels, as to containerd's.
pub async fn container(ctx: &Ctx, action: &str, id: &str, signal: Option<u32>) {
    let e = OwnEvent {
        kind: "container".into(),
        action: action.into(),
        id: id.to_string(),
        attributes: signal
            .map(|s| BTreeMap::from([("signal".to_string(), s.to_string())]))
            .unwrap_or_default(),
    };
    publish(ctx, e).await;
}

/// A volume event.
pub async fn volume(ctx: &Ctx, action: &str, name: &str) {
    let e = OwnEvent {
        kind: "volume".into(),
        action: action.into(),
        id: name.to_string(),
        attributes: BTreeMap::from([("driver".to_string(), "local".to_string())]),
    };
    publish(ctx, e).await;
}
