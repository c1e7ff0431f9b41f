//! The HTTP(S) client of every download from outside (registries, a build's ADD of a URL):
//! rustls (ring) with the system's CA bundle (`/etc/ssl/certs/ca-certificates.crt`, or
//! `SSL_CERT_FILE`) and any extra CA files, HTTP/1.1, a 15 s connect timeout, and the proxy
//! the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, either case) as
//! Go's clients (Docker, containerd, BuildKit) use it: HTTPS through a CONNECT tunnel, plain
//! HTTP as absolute-form requests to the proxy, and never for localhost or loopback addresses.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A client that speaks both HTTPS and plain HTTP.
pub type HttpClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// A client trusting the system's CAs and `extra_ca`; the error says which CA file failed.
pub fn client(extra_ca: &[std::path::PathBuf]) -> Result<HttpClient, String> {
    let mut conn = HttpConnector::new();
    conn.set_connect_timeout(Some(Duration::from_secs(15)));
    conn.set_nodelay(true);
    conn.enforce_http(false);
    let proxied = ProxyConnector {
        direct: conn,
        proxies: proxies(),
    };
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(extra_ca)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(proxied);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// The `Proxy-Authorization` a plain-HTTP request to `dst` carries when the environment sends
/// it through a proxy with credentials (HTTPS requests carry none: their tunnel's CONNECT did).
pub fn proxy_authorization(dst: &Uri) -> Option<HeaderValue> {
    if dst.scheme_str() != Some("http") || !proxied(dst) {
        return None;
    }
    proxies()
        .intercept(dst)
        .and_then(|i| i.basic_auth().cloned())
}

/// The environment's proxies, read once per process (every request consults them).
fn proxies() -> Arc<Matcher> {
    static PROXIES: std::sync::OnceLock<Arc<Matcher>> = std::sync::OnceLock::new();
    PROXIES
        .get_or_init(|| Arc::new(Matcher::from_env()))
        .clone()
}

/// Whether a request to `dst` may go through a proxy: not to localhost or a loopback address.
fn proxied(dst: &Uri) -> bool {
    let host = dst.host().unwrap_or("").trim_matches(['[', ']']);
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return false;
    }
    !host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Connects directly, through a CONNECT tunnel of the environment's proxy (HTTPS), or to the
/// proxy itself (plain HTTP, marked so that requests go in absolute form).
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.direct, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let via = match proxied(&dst) {
            true => self.proxies.intercept(&dst),
            false => None,
        };
        Box::pin(async move {
            let Some(via) = via else {
                let io = direct.call(dst).await?;
                return Ok(Stream { io, proxied: false });
            };
            let proxy = via.uri().clone();
            if dst.scheme_str() == Some("https") {
                let mut tunnel = Tunnel::new(proxy.clone(), direct);
                if let Some(auth) = via.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tunnel
                    .call(dst)
                    .await
                    .map_err(|e| format!("through the proxy {proxy}: {e}"))?;
                return Ok(Stream { io, proxied: false });
            }
            let io = direct
                .call(proxy.clone())
                .await
                .map_err(|e| format!("cannot reach the proxy {proxy}: {e}"))?;
            Ok(Stream { io, proxied: true })
        })
    }
}

/// A connection, to the server or to a proxy that takes absolute-form requests.
pub struct Stream {
    io: TokioIo<tokio::net::TcpStream>,
    proxied: bool,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

fn tls_config(
    extra_ca: &[std::path::PathBuf],
) -> std::result::Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let files: Vec<std::path::PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(f) if !f.is_empty() => vec![f.into()],
        _ => vec![
            "/etc/ssl/certs/ca-certificates.crt".into(),
            "/etc/pki/tls/certs/ca-bundle.crt".into(),
        ],
    };
    for f in extra_ca {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let certs = CertificateDer::pem_file_iter(f)
            .map_err(|e| format!("cannot read the CA certificate {}: {e}", f.display()))?;
        let (added, _) = roots.add_parsable_certificates(certs.flatten());
        if added == 0 {
            return Err(format!("{} holds no usable CA certificate", f.display()));
        }
    }
    for f in files {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        match CertificateDer::pem_file_iter(&f) {
            Ok(certs) => {
                let (added, ignored) = roots.add_parsable_certificates(certs.flatten());
                tracing::debug!(file = %f.display(), added, ignored, "CA certificates");
            }
            Err(err) => tracing::debug!(file = %f.display(), %err, "no CA bundle"),
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_and_localhost_never_go_through_a_proxy() {
        for (u, want) in [
            ("http://127.0.0.1:5000/v2/", false),
            ("http://[::1]:5000/", false),
            ("https://localhost/", false),
            ("https://a.localhost/", false),
            ("https://registry.example/", true),
            ("http://192.0.2.2:8000/", true),
        ] {
            assert_eq!(super::proxied(&u.parse().unwrap()), want, "{u}");
        }
    }
}
