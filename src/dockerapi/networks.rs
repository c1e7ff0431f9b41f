//! The network endpoints: list, create, inspect and remove, through the library's CNI
//! networks (`network::manage`) and the containers on them.

use hyper::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::call::{unimplemented, Call};
use super::error::ApiError;
use super::http::{self, Body};
use crate::containers::endpoints::Endpoint;
use crate::containers::networks::ConnectError;
use crate::containers::{networks, Ctx};
use crate::network::{self as net, manage, Network};

/// Docker's NetworkCreate body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamBody>,
    options: Option<Map<String, Value>>,
    labels: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamBody {
    driver: String,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    gateway: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
}

pub async fn route(ctx: &Ctx, call: &Call, segs: &[&str]) -> Result<Response<Body>, ApiError> {
    match (call.method.as_str(), segs) {
        ("GET", [] | [""]) => list(ctx, call).await,
        ("POST", ["create"]) => create(ctx, call).await,
        ("GET", [id]) => {
            let n = get(ctx, id)?;
            Ok(http::json(200, &inspect(ctx, &n).await?))
        }
        ("POST", ["prune"]) => super::space::prune_networks(ctx, &call.query).await,
        ("POST", [id, "connect"]) => connect(ctx, call, id).await,
        ("POST", [id, "disconnect"]) => disconnect(ctx, call, id).await,
        ("DELETE", [id]) => {
            let n = get(ctx, id)?;
            let users = networks::users(ctx).await?;
            networks::remove(ctx, &n.name, &users)
                .await
                .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
            Ok(http::empty(204))
        }
        _ => Err(unimplemented(call)),
    }
}

/// Docker's NetworkConnect body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointConfig>,
}

/// The EndpointSettings fields a client sets (the others are outputs, read and not used).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EndpointConfig {
    #[serde(rename = "Aliases")]
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam: Option<IpamRequest>,
    #[serde(rename = "MacAddress")]
    mac_address: String,
    #[serde(rename = "Links")]
    links: Option<Vec<String>>,
    #[serde(rename = "DriverOpts")]
    driver_opts: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpamRequest {
    #[serde(rename = "IPv4Address")]
    ipv4: String,
    #[serde(rename = "IPv6Address")]
    ipv6: String,
    #[serde(rename = "LinkLocalIPs")]
    link_local: Option<Vec<String>>,
}

/// The container `q` names, or Docker's 404 (its id).
async fn container_id(ctx: &Ctx, q: &str) -> Result<String, ApiError> {
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "give the container in the body's Container",
        ));
    }
    Ok(super::lookup::find(ctx, q).await?.id)
}

/// A connect error with Docker's status: 403 for what Docker forbids, 400 for bad settings.
fn connect_error(e: ConnectError) -> ApiError {
    match e {
        ConnectError::Network(e) => ApiError::from(anyhow::Error::from(e)),
        ConnectError::Already { .. }
        | ConnectError::NotConnected { .. }
        | ConnectError::Mode { .. }
        | ConnectError::Special(_) => ApiError::new(403, e.to_string()),
        ConnectError::Endpoint(_) | ConnectError::NoMac { .. } | ConnectError::Ip(_) => {
            ApiError::bad_request(e.to_string())
        }
        ConnectError::Helper { .. } => ApiError::new(500, e.to_string()),
        ConnectError::Other(e) => ApiError::from(e),
    }
}

/// `POST /networks/{id}/connect`: `{Container, EndpointConfig: {IPAMConfig.IPv4Address,
/// Aliases, MacAddress}}`, live for a running container, at its next start otherwise.
async fn connect(ctx: &Ctx, call: &Call, id: &str) -> Result<Response<Body>, ApiError> {
    let body: ConnectBody = call.json()?;
    let n = get(ctx, id)?;
    let c = container_id(ctx, &body.container).await?;
    let e = body.endpoint_config.unwrap_or_default();
    let ipam = e.ipam.unwrap_or_default();
    let refused = [
        ("Links", e.links.is_some_and(|l| !l.is_empty())),
        ("DriverOpts", e.driver_opts.is_some_and(|o| !o.is_empty())),
        ("IPAMConfig.IPv6Address", !ipam.ipv6.is_empty()),
        (
            "IPAMConfig.LinkLocalIPs",
            ipam.link_local.is_some_and(|l| !l.is_empty()),
        ),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, given)| *given) {
        return Err(ApiError::not_implemented(format!(
            "burrow's Docker API does not implement EndpointConfig.{field} on network connect"
        )));
    }
    let bad =
        |f: &str, v: &str, why: String| ApiError::bad_request(format!("invalid {f} {v:?}: {why}"));
    let endpoint = Endpoint {
        network: n.name.clone(),
        aliases: e.aliases.unwrap_or_default(),
        ipv4_address: match ipam.ipv4.as_str() {
            "" => None,
            ip => Some(ip.parse().map_err(|err: std::net::AddrParseError| {
                bad("IPv4Address", ip, err.to_string())
            })?),
        },
        mac_address: match e.mac_address.as_str() {
            "" => None,
            m => Some(
                m.parse()
                    .map_err(|err| bad("MacAddress", m, format!("{err}")))?,
            ),
        },
    };
    networks::connect(ctx, &c, &endpoint)
        .await
        .map_err(connect_error)?;
    Ok(http::empty(200))
}

/// Docker's NetworkDisconnect body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
    force: bool,
}

/// `POST /networks/{id}/disconnect`: `{Container, Force}`.
async fn disconnect(ctx: &Ctx, call: &Call, id: &str) -> Result<Response<Body>, ApiError> {
    let body: DisconnectBody = call.json()?;
    let c = container_id(ctx, &body.container).await?;
    let name = match get(ctx, id) {
        Ok(n) => n.name,
        Err(e) if e.status == 404 && body.force => id.to_string(),
        Err(e) => return Err(e),
    };
    networks::disconnect(ctx, &name, &c, body.force)
        .await
        .map_err(connect_error)?;
    Ok(http::empty(200))
}

/// The network `q` names (name, id or id prefix), or Docker's 404.
fn get(ctx: &Ctx, q: &str) -> Result<Network, ApiError> {
    net::ensure_default(&ctx.net).map_err(anyhow::Error::from)?;
    net::get(&ctx.net, q).map_err(|e| match e {
        net::NetworkError::NotFound(_) => ApiError::not_found(format!("network {q} not found")),
        e => anyhow::Error::from(e).into(),
    })
}

async fn inspect(ctx: &Ctx, n: &Network) -> Result<Value, ApiError> {
    let mut v = manage::inspect(n);
    v["Containers"] = Value::Object(networks::members(ctx, &n.name).await?);
    Ok(v)
}

/// `GET /networks?filters=`: name, id, label, driver, type, scope, dangling.
async fn list(ctx: &Ctx, call: &Call) -> Result<Response<Body>, ApiError> {
    let filters = call.query.parsed_filters::<manage::ListFilter>()?;
    let mut out = Vec::new();
    for n in networks::list_matching(ctx, &filters).await? {
        out.push(inspect(ctx, &n).await?);
    }
    Ok(http::json(200, &Value::Array(out)))
}

/// `POST /networks/create`: 201 `{"Id", "Warning"}`.
async fn create(ctx: &Ctx, call: &Call) -> Result<Response<Body>, ApiError> {
    let b: CreateBody = call.json()?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("give the network's Name"));
    }
    let refused = [
        // Attachable is about swarm networks: a bridge network is always attachable.
        (
            "Attachable",
            b.attachable && !matches!(b.driver.as_str(), "" | "bridge"),
        ),
        ("EnableIPv6", b.enable_ipv6.unwrap_or(false)),
        (
            "IPAM.Driver",
            b.ipam
                .as_ref()
                .is_some_and(|i| !matches!(i.driver.as_str(), "" | "default")),
        ),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        return Err(ApiError::not_implemented(format!(
            "burrow does not implement {field} on POST /networks/create yet"
        )));
    }
    let configs = b.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::not_implemented(
            "burrow does not implement more than one IPAM config per network yet",
        ));
    }
    let c = configs.into_iter().next().unwrap_or_default();
    let text: Vec<(String, String)> = b
        .options
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    let options =
        crate::network::DriverOptions::parse(text.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let some = |s: String| (!s.is_empty()).then_some(s);
    let n = networks::create(
        ctx,
        manage::CreateRequest {
            name: b.name,
            driver: if b.driver.is_empty() {
                "bridge".into()
            } else {
                b.driver
            },
            subnet: some(c.subnet),
            gateway: some(c.gateway),
            ip_range: some(c.ip_range),
            labels: b.labels.unwrap_or_default(),
            internal: b.internal,
            options,
        },
    )
    .await
    .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    Ok(http::json(201, &json!({ "Id": n.id, "Warning": "" })))
}
