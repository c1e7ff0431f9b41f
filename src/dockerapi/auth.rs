//! Registry credentials from clients: the `X-Registry-Auth` header (base64url JSON of Docker's
//! AuthConfig) that pulls and pushes carry, and `POST /auth` (`docker login`), which checks
//! credentials with the registry as `burrow login` does and stores nothing: as with Docker, the
//! client keeps them in its own config and sends them with each pull and push.

use base64::Engine as _;
use hyper::{HeaderMap, Response};
use serde::Deserialize;
use serde_json::json;

use super::call::Call;
use super::error::ApiError;
use super::http::{self, Body};
use crate::images::auth::Credentials;
use crate::images::login;
use crate::images::registry::RegistryError;

/// Docker's AuthConfig, as clients send it (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// base64("user:password"), as config.json stores it.
    pub auth: String,
    pub serveraddress: String,
    pub identitytoken: String,
    pub registrytoken: String,
}

impl AuthConfig {
    /// The user name and password it holds; None when it holds none (anonymous). Tokens are
    /// refused: burrow's registry client speaks Basic auth and the token flow that starts from
    /// it, not OAuth refresh tokens.
    pub fn credentials(&self) -> Result<Option<Credentials>, ApiError> {
        if !self.identitytoken.is_empty() || !self.registrytoken.is_empty() {
            return Err(ApiError::not_implemented(
                "burrow does not support identity or registry tokens in X-Registry-Auth yet: \
                 log in with a user name and password",
            ));
        }
        let (username, password) = if !self.username.is_empty() || !self.password.is_empty() {
            (self.username.clone(), self.password.clone())
        } else if !self.auth.is_empty() {
            let raw = decode_base64(&self.auth).ok_or_else(|| {
                ApiError::bad_request("invalid auth in X-Registry-Auth: not base64")
            })?;
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (u, p) = text.split_once(':').ok_or_else(|| {
                ApiError::bad_request("invalid auth in X-Registry-Auth: not user:password")
            })?;
            (u.to_owned(), p.to_owned())
        } else {
            return Ok(None);
        };
        Ok(Some(Credentials { username, password }))
    }
}

/// base64 as clients write it: URL-safe (Docker's), or standard, padded or not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The credentials of a request's `X-Registry-Auth` header: None when absent or empty (the
/// service then uses `burrow login`'s stored ones); 400 when it is not base64 of a JSON object.
pub fn registry_auth(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let Some(v) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("invalid X-Registry-Auth header: not text"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    let raw = decode_base64(text).ok_or_else(|| {
        ApiError::bad_request("invalid X-Registry-Auth header: not base64url-encoded JSON")
    })?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let cfg: AuthConfig = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid X-Registry-Auth header: not an AuthConfig: {e}"
        ))
    })?;
    cfg.credentials()
}

/// The credentials of a `/build` request's `X-Registry-Config` header (base64url JSON of
/// registry address → AuthConfig, all the client's config holds) by registry host; entries
/// without a user name and password (tokens, empty ones) are left out, the others' hosts then
/// use `burrow login`'s. A header that is not base64 of such an object answers 400.
pub fn registry_config(
    headers: &HeaderMap,
) -> Result<std::collections::BTreeMap<String, Credentials>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    let Some(v) = headers.get("X-Registry-Config") else {
        return Ok(out);
    };
    let bad =
        |why: String| ApiError::bad_request(format!("invalid X-Registry-Config header: {why}"));
    let text = v.to_str().map_err(|_| bad("not text".into()))?.trim();
    if text.is_empty() {
        return Ok(out);
    }
    let raw = decode_base64(text).ok_or_else(|| bad("not base64url-encoded JSON".into()))?;
    let cfgs: std::collections::BTreeMap<String, AuthConfig> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("not a map of AuthConfigs: {e}")))?;
    for (server, cfg) in cfgs {
        if let Ok(Some(c)) = cfg.credentials() {
            out.insert(login::server_host(Some(&server)), c);
        }
    }
    Ok(out)
}

/// `POST /auth`: checks the body's credentials with its `serveraddress`'s registry (Docker
/// Hub when empty); 200 `{"Status": "Login Succeeded"}`, or 401 with the registry's refusal.
pub async fn login(call: &Call) -> Result<Response<Body>, ApiError> {
    let cfg: AuthConfig = call.json()?;
    let host = login::server_host(Some(cfg.serveraddress.as_str()).filter(|s| !s.is_empty()));
    let creds = cfg
        .credentials()?
        .ok_or_else(|| ApiError::bad_request("give username and password to log in"))?;
    if let Err(e) = login::check(&host, &creds, false, &[]).await {
        let unauthorized = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<RegistryError>(),
                Some(RegistryError::BadCredentials { .. } | RegistryError::AuthRequired { .. })
            )
        });
        return Err(if unauthorized {
            ApiError::new(401, format!("{e:#}"))
        } else {
            e.into()
        });
    }
    Ok(http::json(
        200,
        &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Registry-Auth", v.parse().unwrap());
        h
    }

    #[test]
    fn registry_auth_reads_what_clients_send() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        assert!(registry_auth(&HeaderMap::new()).unwrap().is_none());
        // docker-py sends "e30=" ({}) and some clients an empty header when anonymous.
        assert!(registry_auth(&header("e30=")).unwrap().is_none());
        assert!(registry_auth(&header("")).unwrap().is_none());
        let body = r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5001"}"#;
        let c = registry_auth(&header(&URL_SAFE.encode(body)))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
        let c = registry_auth(&header(&STANDARD.encode(body)))
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "u");
        let auth = format!(r#"{{"auth":"{}"}}"#, STANDARD.encode("v:w:x"));
        let c = registry_auth(&header(&URL_SAFE.encode(auth)))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("v", "w:x"));
        assert_eq!(
            registry_auth(&header("not base64!")).unwrap_err().status,
            400
        );
        assert_eq!(
            registry_auth(&header(&URL_SAFE.encode("[1]")))
                .unwrap_err()
                .status,
            400
        );
        let token = URL_SAFE.encode(r#"{"identitytoken":"t"}"#);
        assert_eq!(registry_auth(&header(&token)).unwrap_err().status, 501);
    }

    #[test]
    fn registry_config_gives_credentials_by_host() {
        use base64::engine::general_purpose::URL_SAFE;
        let mut h = HeaderMap::new();
        let cfg = r#"{"127.0.0.1:5001":{"username":"u","password":"p"},"https://index.docker.io/v1/":{"identitytoken":"t"},"other:1":{}}"#;
        h.insert("X-Registry-Config", URL_SAFE.encode(cfg).parse().unwrap());
        let m = registry_config(&h).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["127.0.0.1:5001"]);
        assert_eq!(m["127.0.0.1:5001"].username, "u");
        h.insert("X-Registry-Config", "!!".parse().unwrap());
        assert_eq!(registry_config(&h).unwrap_err().status, 400);
        assert!(registry_config(&HeaderMap::new()).unwrap().is_empty());
    }
}
