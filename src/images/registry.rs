//! A Docker Registry HTTP API v2 client: manifests and blobs (ranged, for resumed pulls), uploads
//! and cross-repository mounts for push, Basic and Bearer-token auth from 401 challenges, and
//! redirects to blob storage. HTTPS with rustls (ring) and the system's CA bundle
//! (`/etc/ssl/certs/ca-certificates.crt`, or `SSL_CERT_FILE`); localhost/127.0.0.0/8/::1 and
//! registries the user marks insecure get HTTPS first and plain HTTP when that fails, as Docker does.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode, Uri};

use super::auth::Credentials;
use super::manifest;

/// How long a registry may stay silent before the transfer is given up.
const IDLE: Duration = Duration::from_secs(60);

/// A registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry {host}: {reason} ({})", unreachable_hint(.reason))]
    Unreachable { host: String, reason: String },
    #[error("cannot set up TLS for registry {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("{what} not found on {host}: {detail} (check the name and tag)")]
    NotFound {
        host: String,
        what: String,
        detail: String,
    },
    #[error("registry {host} refused the credentials for {what} (wrong user name or password?): run `burrow login {host}`")]
    BadCredentials { host: String, what: String },
    #[error("registry {host} requires authentication for {what}: run `burrow login {host}`")]
    AuthRequired { host: String, what: String },
    #[error("access to {what} on {host} was denied ({status}): check that the repository exists and your account may use it")]
    Denied {
        host: String,
        what: String,
        status: StatusCode,
    },
    #[error("registry {host} answered {status} for {what}: {body}")]
    Status {
        host: String,
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("registry {host}: the transfer of {what} broke off: {reason} (run the command again to resume)")]
    Broken {
        host: String,
        what: String,
        reason: String,
    },
    #[error("registry {host}: bad token answer from {realm}: {reason}")]
    Token {
        host: String,
        realm: String,
        reason: String,
    },
    #[error("registry {host}: {what} has digest {got}, not {expected}")]
    Digest {
        host: String,
        what: String,
        expected: String,
        got: String,
    },
}

type Result<T> = std::result::Result<T, RegistryError>;

/// A client for one registry host.
pub struct Registry {
    /// The host as references name it (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// Where the API lives (`http://127.0.0.1:5000`, `https://registry-1.docker.io`).
    base: Mutex<String>,
    /// What replaces `/v2` in request paths (`/v2` unless a hosts.toml says otherwise).
    api_path: String,
    /// Plain HTTP may be tried when HTTPS fails (local or insecure registries), until decided.
    fallback: Mutex<bool>,
    client: super::https::HttpClient,
    creds: Option<Credentials>,
    /// The Authorization header that worked last (reused until a 401 asks again).
    auth: Mutex<Option<HeaderValue>>,
}

/// Whether Docker talks plain HTTP to this host without being told.
pub fn is_local(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1") || h.starts_with("127.")
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn parse(h: &str) -> Option<Challenge> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let mut params = Vec::new();
        let mut s = rest.trim();
        while !s.is_empty() {
            let (k, after) = s.split_once('=')?;
            let after = after.trim_start();
            let (v, tail) = if let Some(q) = after.strip_prefix('"') {
                let end = q.find('"')?;
                (q[..end].to_owned(), &q[end + 1..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            };
            params.push((k.trim().to_lowercase(), v));
            s = tail.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge {
            scheme: scheme.to_lowercase(),
            params,
        })
    }

    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes a query value.
pub(crate) fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Registry {
    /// A client for `host`; `insecure` allows plain HTTP for a non-local host.
    pub fn new(host: &str, creds: Option<Credentials>, insecure: bool) -> Result<Registry> {
        let api = if host == super::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            host
        };
        Registry::build(
            host,
            &format!("https://{api}"),
            "/v2",
            is_local(host) || insecure,
            creds,
            &[],
        )
    }

    /// A client for one endpoint of `host` from a hosts.toml (a mirror, or the server itself):
    /// `origin` is `scheme://authority`, `api_path` replaces `/v2` in every request path.
    pub fn endpoint(
        host: &str,
        origin: &str,
        api_path: &str,
        creds: Option<Credentials>,
        extra_ca: &[std::path::PathBuf],
    ) -> Result<Registry> {
        Registry::build(host, origin, api_path, false, creds, extra_ca)
    }

    fn build(
        host: &str,
        origin: &str,
        api_path: &str,
        fallback: bool,
        creds: Option<Credentials>,
        extra_ca: &[std::path::PathBuf],
    ) -> Result<Registry> {
        let client = super::https::client(extra_ca).map_err(|reason| RegistryError::Tls {
            host: host.to_owned(),
            reason,
        })?;
        Ok(Registry {
            host: host.to_owned(),
            base: Mutex::new(origin.trim_end_matches('/').to_owned()),
            api_path: api_path.trim_end_matches('/').to_owned(),
            fallback: Mutex::new(fallback),
            client,
            creds,
            auth: Mutex::new(None),
        })
    }

    /// The same endpoint with other credentials (for `login`, before they are stored).
    pub fn with_credentials(mut self, creds: Option<Credentials>) -> Registry {
        self.creds = creds;
        self.auth = Mutex::new(None);
        self
    }

    /// Where this client sends requests (for messages).
    pub fn origin(&self) -> String {
        self.base()
    }

    fn base(&self) -> String {
        self.base.lock().map(|b| b.clone()).unwrap_or_default()
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Unreachable {
            host: self.host.clone(),
            reason: e.to_string(),
        }
    }

    /// The first request to a registry that may speak plain HTTP: HTTPS, else HTTP for good.
    async fn decide_scheme(&self) {
        let maybe = self.fallback.lock().map(|f| *f).unwrap_or(false);
        if !maybe {
            return;
        }
        let base = self.base();
        let probe: Option<Uri> = format!("{base}{}/", self.api_path).parse().ok();
        // A server that speaks TLS with an untrusted certificate stays on HTTPS, so the user
        // sees the certificate problem rather than an HTTP-to-HTTPS error.
        let https_works = match probe {
            Some(uri) => match self
                .send_once(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new(), None)
                .await
            {
                Ok(_) => true,
                Err(RegistryError::Unreachable { reason, .. }) => reason.contains("certificate"),
                Err(_) => false,
            },
            None => false,
        };
        if !https_works {
            tracing::debug!(host = %self.host, "no HTTPS; using plain HTTP");
            if let Ok(mut b) = self.base.lock() {
                *b = base.replacen("https://", "http://", 1);
            }
        }
        if let Ok(mut f) = self.fallback.lock() {
            *f = false;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder().method(method.clone()).uri(uri.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        if let Some(p) = super::https::proxy_authorization(uri) {
            req = req.header(hyper::header::PROXY_AUTHORIZATION, p);
        }
        let req = req
            .body(Full::new(body.clone()))
            .map_err(|e| self.unreachable(e))?;
        match tokio::time::timeout(IDLE, self.client.request(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.unreachable(error_chain(&e))),
            Err(_) => Err(self.unreachable("no answer within a minute")),
        }
    }

    /// Sends a request to `path` (relative to /v2/ or absolute), answering auth challenges and
    /// following redirects.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        what: &str,
    ) -> Result<Response<Incoming>> {
        self.decide_scheme().await;
        let mut uri: Uri = if path.starts_with("http://") || path.starts_with("https://") {
            path.parse().map_err(|e| self.unreachable(e))?
        } else {
            let rest = path.strip_prefix("/v2").unwrap_or(path);
            format!("{}{}{rest}", self.base(), self.api_path)
                .parse()
                .map_err(|e| self.unreachable(e))?
        };
        let mut tried_auth = false;
        let mut same_host = true;
        for _ in 0..10 {
            let auth = if same_host {
                self.auth.lock().map(|a| a.clone()).unwrap_or(None)
            } else {
                None
            };
            let resp = self
                .send_once(&method, &uri, &headers, &body, auth.as_ref())
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && same_host {
                if tried_auth {
                    return Err(if self.creds.is_some() {
                        RegistryError::BadCredentials {
                            host: self.host.clone(),
                            what: what.to_owned(),
                        }
                    } else {
                        RegistryError::AuthRequired {
                            host: self.host.clone(),
                            what: what.to_owned(),
                        }
                    });
                }
                tried_auth = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(Challenge::parse);
                self.authenticate(challenge, what).await?;
                continue;
            }
            if status.is_redirection() {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                    let next: Uri = if loc.starts_with('/') {
                        format!(
                            "{}://{}{loc}",
                            uri.scheme_str().unwrap_or("http"),
                            uri.authority().map(|a| a.as_str()).unwrap_or("")
                        )
                        .parse()
                        .map_err(|e| self.unreachable(e))?
                    } else {
                        loc.parse().map_err(|e| self.unreachable(e))?
                    };
                    // Credentials never follow a redirect to another host (blob storage).
                    same_host = same_host && next.authority() == uri.authority();
                    uri = next;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(self.unreachable(format!("too many redirects or auth rounds for {what}")))
    }

    /// Answers a 401 challenge: Basic with the stored credentials, or a Bearer token.
    async fn authenticate(&self, challenge: Option<Challenge>, what: &str) -> Result<()> {
        let basic = self.creds.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        let header = match challenge {
            Some(c) if c.scheme == "bearer" => {
                let realm = c.param("realm").unwrap_or_default().to_owned();
                let mut url = realm.clone();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                for key in ["service", "scope"] {
                    if let Some(v) = c.param(key) {
                        url.push_str(&format!("{sep}{key}={}", query_escape(v)));
                        sep = '&';
                    }
                }
                let token = self
                    .fetch_token(&url, &realm, basic.as_deref(), what)
                    .await?;
                format!("Bearer {token}")
            }
            _ => match basic {
                Some(b) => b,
                None => {
                    return Err(RegistryError::AuthRequired {
                        host: self.host.clone(),
                        what: what.to_owned(),
                    })
                }
            },
        };
        let value = HeaderValue::from_str(&header).map_err(|e| RegistryError::Token {
            host: self.host.clone(),
            realm: String::new(),
            reason: e.to_string(),
        })?;
        if let Ok(mut a) = self.auth.lock() {
            *a = Some(value);
        }
        Ok(())
    }

    async fn fetch_token(
        &self,
        url: &str,
        realm: &str,
        basic: Option<&str>,
        what: &str,
    ) -> Result<String> {
        let bad = |reason: String| RegistryError::Token {
            host: self.host.clone(),
            realm: realm.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|e| bad(format!("bad realm: {e}")))?;
        let auth = basic.and_then(|b| HeaderValue::from_str(b).ok());
        let resp = self
            .send_once(
                &Method::GET,
                &uri,
                &HeaderMap::new(),
                &Bytes::new(),
                auth.as_ref(),
            )
            .await?;
        let status = resp.status();
        let body = collect(resp, IDLE).await.map_err(|e| bad(e.to_string()))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(if basic.is_some() {
                RegistryError::BadCredentials {
                    host: self.host.clone(),
                    what: what.to_owned(),
                }
            } else {
                RegistryError::AuthRequired {
                    host: self.host.clone(),
                    what: what.to_owned(),
                }
            });
        }
        if !status.is_success() {
            return Err(bad(format!("{status}")));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| bad("no token in the answer".into()))
    }

    /// Turns an unsuccessful answer into an error (reading its body for the message).
    pub async fn fail(&self, resp: Response<Incoming>, what: &str) -> RegistryError {
        let status = resp.status();
        let raw = collect(resp, Duration::from_secs(10))
            .await
            .unwrap_or_default();
        let body = registry_message(&raw);
        match status {
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                host: self.host.clone(),
                what: what.to_owned(),
                detail: if body.is_empty() { "404".into() } else { body },
            },
            StatusCode::FORBIDDEN => RegistryError::Denied {
                host: self.host.clone(),
                what: what.to_owned(),
                status,
            },
            _ => RegistryError::Status {
                host: self.host.clone(),
                what: what.to_owned(),
                status,
                body,
            },
        }
    }

    /// Fetches a manifest or index by tag or digest; returns its descriptor and bytes.
    pub async fn manifest(
        &self,
        repo: &str,
        object: &str,
        what: &str,
    ) -> Result<(manifest::Descriptor, Vec<u8>)> {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::ACCEPT,
            HeaderValue::from_static(manifest::ACCEPT),
        );
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{object}"),
                h,
                Bytes::new(),
                what,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, what).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let body = self.body(resp, what).await?;
        let digest = manifest::sha256(&body);
        if super::reference::is_digest(object) && digest != object {
            return Err(RegistryError::Digest {
                host: self.host.clone(),
                what: what.to_owned(),
                expected: object.to_owned(),
                got: digest,
            });
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            // Old registries: take the document's own mediaType.
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or(media_type)
        } else {
            media_type
        };
        Ok((
            manifest::Descriptor {
                media_type,
                digest,
                size: body.len() as i64,
                platform: None,
                annotations: Default::default(),
            },
            body.to_vec(),
        ))
    }

    /// Starts a blob download at `offset`; returns the body and whether it starts at `offset`
    /// (false: the registry ignored the range and sends everything).
    pub async fn blob(
        &self,
        repo: &str,
        digest: &str,
        offset: i64,
        what: &str,
    ) -> Result<(Incoming, bool)> {
        let mut h = HeaderMap::new();
        if offset > 0 {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes={offset}-")) {
                h.insert(hyper::header::RANGE, v);
            }
        }
        let resp = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/blobs/{digest}"),
                h,
                Bytes::new(),
                what,
            )
            .await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => Ok((resp.into_body(), true)),
            StatusCode::OK => Ok((resp.into_body(), offset == 0)),
            _ => Err(self.fail(resp, what).await),
        }
    }

    /// The next chunk of a body (None at its end); errors name the transfer.
    pub async fn next_chunk(&self, body: &mut Incoming, what: &str) -> Result<Option<Bytes>> {
        loop {
            let frame = match tokio::time::timeout(IDLE, body.frame()).await {
                Err(_) => {
                    return Err(RegistryError::Broken {
                        host: self.host.clone(),
                        what: what.to_owned(),
                        reason: "no data for a minute".into(),
                    })
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(RegistryError::Broken {
                        host: self.host.clone(),
                        what: what.to_owned(),
                        reason: error_chain(&e),
                    })
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
    }

    /// Whether the registry has a blob in `repo`.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool> {
        let what = format!("blob {digest}");
        let resp = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                HeaderMap::new(),
                Bytes::new(),
                &what,
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(resp, &what).await),
        }
    }

    /// Tries a cross-repository mount; true when the registry mounted the blob.
    pub async fn mount_blob(&self, repo: &str, digest: &str, from: &str) -> Result<bool> {
        let what = format!("mount of {digest} from {from}");
        let resp = self
            .send(
                Method::POST,
                &format!(
                    "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                    query_escape(digest),
                    query_escape(from)
                ),
                HeaderMap::new(),
                Bytes::new(),
                &what,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            // 202: an upload was started instead; it is abandoned (the registry expires it).
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(self.fail(resp, &what).await),
        }
    }

    /// The absolute URL in a Location header (registries may answer with a path).
    fn location(&self, resp: &Response<Incoming>) -> String {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        // Relative to the registry's origin (not to the API path).
        if loc.starts_with('/') {
            format!("{}{loc}", self.base())
        } else {
            loc
        }
    }

    /// Starts a blob upload; returns where to send its data.
    pub async fn upload_start(&self, repo: &str, digest: &str) -> Result<String> {
        let what = format!("upload of {digest}");
        let resp = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                HeaderMap::new(),
                Bytes::new(),
                &what,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(resp, &what).await);
        }
        Ok(self.location(&resp))
    }

    /// Sends the piece of an upload that starts at `offset`; returns where the next one goes.
    pub async fn upload_chunk(
        &self,
        location: &str,
        digest: &str,
        offset: u64,
        data: Bytes,
    ) -> Result<String> {
        let what = format!("upload of {digest}");
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let end = offset + (data.len() as u64).max(1) - 1;
        if let Ok(v) = HeaderValue::from_str(&format!("{offset}-{end}")) {
            h.insert(hyper::header::CONTENT_RANGE, v);
        }
        let resp = self.send(Method::PATCH, location, h, data, &what).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.fail(resp, &what).await);
        }
        Ok(self.location(&resp))
    }

    /// Completes an upload: the registry checks the digest of what it received.
    pub async fn upload_finish(&self, location: &str, digest: &str) -> Result<()> {
        let what = format!("upload of {digest}");
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", query_escape(digest));
        let resp = self
            .send(Method::PUT, &url, HeaderMap::new(), Bytes::new(), &what)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &what).await);
        }
        Ok(())
    }

    /// Puts a manifest under a tag or digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        object: &str,
        media_type: &str,
        data: Bytes,
    ) -> Result<()> {
        let what = format!("manifest {repo}:{object}");
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(media_type) {
            h.insert(CONTENT_TYPE, v);
        }
        let resp = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{object}"),
                h,
                data,
                &what,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.fail(resp, &what).await);
        }
        Ok(())
    }

    /// Every tag of `repo` (the registry's tags list, following its `Link` pages), in the
    /// registry's order.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        let what = format!("the tags of {repo}");
        self.pages(&format!("/v2/{repo}/tags/list"), "tags", &what)
            .await
    }

    /// Every repository the registry lists (`/v2/_catalog`, following its `Link` pages).
    pub async fn catalog(&self) -> Result<Vec<String>> {
        self.pages(
            "/v2/_catalog",
            "repositories",
            "the repository catalog (/v2/_catalog)",
        )
        .await
    }

    /// The whole body of `resp` (an answer about `what`); a transfer that breaks off says so.
    async fn body(&self, resp: Response<Incoming>, what: &str) -> Result<Bytes> {
        collect(resp, IDLE)
            .await
            .map_err(|e| RegistryError::Broken {
                host: self.host.clone(),
                what: what.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The JSON document at `path` (relative to /v2/, or an absolute URL).
    pub async fn get_json(&self, path: &str, what: &str) -> Result<serde_json::Value> {
        let resp = self
            .send(Method::GET, path, HeaderMap::new(), Bytes::new(), what)
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, what).await);
        }
        let body = self.body(resp, what).await?;
        serde_json::from_slice(&body).map_err(|e| RegistryError::Broken {
            host: self.host.clone(),
            what: what.to_owned(),
            reason: format!("not JSON: {e}"),
        })
    }

    /// The strings under `key` of each page of a paged list from `path` (the tags list and the
    /// catalog), following `Link: <...>; rel="next"`.
    async fn pages(&self, path: &str, key: &str, what: &str) -> Result<Vec<String>> {
        let mut path = path.to_string();
        let mut out = Vec::new();
        for _ in 0..1000 {
            let resp = self
                .send(Method::GET, &path, HeaderMap::new(), Bytes::new(), what)
                .await?;
            if !resp.status().is_success() {
                return Err(self.fail(resp, what).await);
            }
            let next = resp
                .headers()
                .get(hyper::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let broken = |reason: String| RegistryError::Broken {
                host: self.host.clone(),
                what: what.to_owned(),
                reason,
            };
            let body = self.body(resp, what).await?;
            let page: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| broken(e.to_string()))?;
            out.extend(
                page[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string)),
            );
            match next {
                Some(n) => path = n,
                None => return Ok(out),
            }
        }
        Ok(out)
    }

    /// Checks the credentials: GET /v2/ and answer its challenge.
    pub async fn ping(&self) -> Result<()> {
        let what = "the registry API (/v2/)";
        let resp = self
            .send(Method::GET, "/v2/", HeaderMap::new(), Bytes::new(), what)
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, what).await);
        }
        Ok(())
    }
}

/// A page of the registry's tags list.
/// The target of a `Link: </v2/...?last=x&n=y>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The message of a registry error body (`{"errors":[{"code":..,"message":..}]}`), else its text.
fn registry_message(raw: &[u8]) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array().map(|errs| {
                errs.iter()
                    .filter_map(|e| e.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                    .collect()
            })
        });
    match parsed {
        Some(msgs) if !msgs.is_empty() => msgs.join("; "),
        _ => String::from_utf8_lossy(raw)
            .trim()
            .chars()
            .take(300)
            .collect(),
    }
}

fn unreachable_hint(reason: &str) -> &'static str {
    if reason.contains("certificate") || reason.contains("Certificate") {
        "its TLS certificate is not trusted here: add its CA to /etc/ssl/certs, or point SSL_CERT_FILE at a bundle that has it"
    } else {
        "is it running and reachable from here?"
    }
}

/// rustls with the ring provider and the system's CA bundle (or `SSL_CERT_FILE`).
/// Reads a whole (small) body.
async fn collect(
    resp: Response<Incoming>,
    limit: Duration,
) -> std::result::Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let body = tokio::time::timeout(limit, resp.into_body().collect())
        .await
        .map_err(|_| "timed out")??;
    Ok(body.to_bytes())
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        src = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_list_pages_follow_the_next_link() {
        assert_eq!(
            super::next_link(r#"</v2/a/tags/list?last=b&n=100>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=100")
        );
        assert_eq!(super::next_link(r#"</x>; rel="prev""#), None);
    }

    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("scope"), Some("repository:library/busybox:pull"));
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn local_hosts_and_escapes() {
        assert!(is_local("127.0.0.1:5000"));
        assert!(is_local("localhost"));
        assert!(!is_local("docker.io"));
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
