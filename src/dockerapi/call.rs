//! One request as the endpoints see it ([`Call`]: method, path without its version, query,
//! body, headers, the connection's upgrade) and the 501 answer for an endpoint burrow does not
//! implement.

use hyper::body::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper::Method;

use super::error::ApiError;
use super::http::Query;

/// One request as the endpoints see it.
#[derive(Debug)]
pub struct Call {
    pub method: Method,
    /// The path without its version prefix.
    pub path: String,
    pub query: Query,
    pub body: Bytes,
    /// The request's headers (`X-Registry-Auth`, ...).
    pub headers: hyper::HeaderMap,
    /// The client asked to take the connection over (`Connection: Upgrade`, `Upgrade: tcp`:
    /// attach, exec start).
    pub wants_upgrade: bool,
    /// The connection's upgrade, for the endpoint that hijacks it.
    pub upgrade: std::sync::Mutex<Option<OnUpgrade>>,
}

impl Call {
    /// The connection's upgrade, once (None: the client did not ask for one).
    pub fn take_upgrade(&self) -> Option<OnUpgrade> {
        if !self.wants_upgrade {
            return None;
        }
        self.upgrade.lock().ok()?.take()
    }

    /// The body as JSON (400 when it is not); `null` fields count as absent, as Docker's
    /// daemon reads them (the SDKs send many).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let mut v: serde_json::Value = if self.body.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_slice(&self.body)?
        };
        strip_nulls(&mut v);
        Ok(serde_json::from_value(v)?)
    }
}

/// Removes every `null` member of the objects in `v`.
fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The 501 for an endpoint burrow does not implement, naming it with Docker's placeholders.
pub fn unimplemented(call: &Call) -> ApiError {
    ApiError::not_implemented(format!(
        "burrow does not implement {} {} yet (see docs/docker-api.md)",
        call.method,
        endpoint_name(&call.path)
    ))
}

/// `/containers/abc/attach` as `/containers/{id}/attach`.
fn endpoint_name(path: &str) -> String {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Image names hold slashes: everything between /images/ and the action is the name.
    if let ["images", _, .., last] = segs.as_slice() {
        if matches!(*last, "push" | "history" | "get" | "tag" | "json") {
            return format!("/images/{{name}}/{last}");
        }
    }
    let named = |kind: &str| match kind {
        "containers" => "{id}",
        "exec" => "{id}",
        "images" => "{name}",
        "volumes" => "{name}",
        "networks" => "{id}",
        "plugins" => "{name}",
        _ => "{id}",
    };
    let fixed = [
        "create", "json", "prune", "load", "get", "search", "build", "df", "events",
    ];
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if i == 1 && !fixed.contains(s) && segs.len() > 1 {
            out.push(named(segs[0]).to_string());
        } else {
            out.push(s.to_string());
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_use_dockers_placeholders() {
        assert_eq!(
            endpoint_name("/containers/abc/attach"),
            "/containers/{id}/attach"
        );
        assert_eq!(endpoint_name("/containers/prune"), "/containers/prune");
        assert_eq!(endpoint_name("/exec/x/start"), "/exec/{id}/start");
        assert_eq!(endpoint_name("/build"), "/build");
        assert_eq!(endpoint_name("/events"), "/events");
        assert_eq!(
            endpoint_name("/images/127.0.0.1:5000/a/b:1/push"),
            "/images/{name}/push"
        );
    }
}
