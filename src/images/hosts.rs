//! Per-registry settings in containerd's `certs.d/<host>/hosts.toml` format (as nerdctl reads
//! them): mirrors tried in file order, the upstream `server` (plain `http://` there makes a
//! registry insecure), capabilities, extra CA files and `override_path`. Searched in
//! `$XDG_CONFIG_HOME/containerd/certs.d` (not as root), `/etc/containerd/certs.d`, `/etc/docker/certs.d`.

use std::path::{Path, PathBuf};

use super::auth::Credentials;
use super::registry::{Registry, RegistryError};

/// A hosts.toml that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {err}")]
    Toml { path: PathBuf, err: String },
    #[error("{path}: {what} {url:?} is not an http:// or https:// URL")]
    BadUrl {
        path: PathBuf,
        what: &'static str,
        url: String,
    },
    #[error("{path}: skip_verify is not supported by burrow: add the registry's CA with `ca = \"/path/ca.crt\"` instead")]
    SkipVerify { path: PathBuf },
}

/// One endpoint: a mirror or the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEndpoint {
    /// `scheme://authority`.
    pub origin: String,
    /// What replaces `/v2` in request paths.
    pub api_path: String,
    pub pull: bool,
    pub push: bool,
    pub ca: Vec<PathBuf>,
}

/// The endpoints for one registry host, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// The file these came from.
    pub path: PathBuf,
    /// Mirrors first (file order), then the server.
    pub endpoints: Vec<HostEndpoint>,
}

/// Where hosts.toml directories are looked for, most specific first.
pub fn search_dirs(euid: u32, config_home: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if euid != 0 {
        if let Some(c) = config_home {
            v.push(c.join("containerd/certs.d"));
        }
        if let Some(c) = crate::slurm::user_config_home() {
            v.push(c.join("containerd/certs.d"));
        }
    }
    v.push("/etc/containerd/certs.d".into());
    v.push("/etc/docker/certs.d".into());
    v
}

/// The hosts.toml for `host` in the first directory that has one.
pub fn find(host: &str, dirs: &[PathBuf]) -> Result<Option<Hosts>, HostsError> {
    // containerd spells a port as host:port in the directory name; "_default" applies to all.
    for dir in dirs {
        for name in [host, "_default"] {
            let path = dir.join(name).join("hosts.toml");
            match std::fs::read_to_string(&path) {
                Ok(text) => return parse(host, &path, &text).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(HostsError::Read { path, source }),
            }
        }
    }
    Ok(None)
}

fn default_server(host: &str) -> String {
    if host == super::reference::DOCKER_HUB {
        "https://registry-1.docker.io".into()
    } else {
        format!("https://{host}")
    }
}

/// Splits a URL into origin and API path (`/v2` appended unless `override_path`).
fn endpoint_url(
    path: &Path,
    what: &'static str,
    url: &str,
    override_path: bool,
) -> Result<(String, String), HostsError> {
    let bad = || HostsError::BadUrl {
        path: path.to_owned(),
        what,
        url: url.to_owned(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let (authority, p) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    let api = if override_path || p.ends_with("/v2") {
        p.to_owned()
    } else {
        format!("{p}/v2")
    };
    Ok((format!("{scheme}://{authority}"), api))
}

fn string_list(v: Option<&toml::Value>) -> Vec<String> {
    match v {
        Some(toml::Value::String(s)) => vec![s.clone()],
        Some(toml::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// Parses a hosts.toml (mirror order is the order of the `[host."..."]` tables in the text).
pub fn parse(host: &str, path: &Path, text: &str) -> Result<Hosts, HostsError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| HostsError::Toml {
            path: path.to_owned(),
            err: e.to_string(),
        })?;
    let mut order: Vec<String> = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("[host.") {
            let name = rest
                .trim_end_matches(']')
                .trim()
                .trim_matches('"')
                .trim_matches('\'')
                .to_owned();
            if !order.contains(&name) {
                order.push(name);
            }
        }
    }
    let mut endpoints = Vec::new();
    let empty = toml::Table::new();
    let hosts = table
        .get("host")
        .and_then(|h| h.as_table())
        .unwrap_or(&empty);
    for (name, _) in hosts {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    for name in &order {
        let Some(h) = hosts.get(name).and_then(|h| h.as_table()) else {
            continue;
        };
        if h.get("skip_verify").and_then(|v| v.as_bool()) == Some(true) {
            return Err(HostsError::SkipVerify {
                path: path.to_owned(),
            });
        }
        let caps = match h.get("capabilities") {
            Some(v) => string_list(Some(v)),
            None => vec!["pull".into(), "resolve".into(), "push".into()],
        };
        let override_path = h.get("override_path").and_then(|v| v.as_bool()) == Some(true);
        let (origin, api_path) = endpoint_url(path, "host", name, override_path)?;
        endpoints.push(HostEndpoint {
            origin,
            api_path,
            pull: caps.iter().any(|c| c == "pull") && caps.iter().any(|c| c == "resolve"),
            push: caps.iter().any(|c| c == "push"),
            ca: string_list(h.get("ca"))
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        });
    }
    if table.get("skip_verify").and_then(|v| v.as_bool()) == Some(true) {
        return Err(HostsError::SkipVerify {
            path: path.to_owned(),
        });
    }
    let server = table
        .get("server")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| default_server(host));
    let override_path = table.get("override_path").and_then(|v| v.as_bool()) == Some(true);
    let (origin, api_path) = endpoint_url(path, "server", &server, override_path)?;
    endpoints.push(HostEndpoint {
        origin,
        api_path,
        pull: true,
        push: true,
        ca: string_list(table.get("ca"))
            .into_iter()
            .map(PathBuf::from)
            .collect(),
    });
    Ok(Hosts {
        path: path.to_owned(),
        endpoints,
    })
}

/// Clients for the endpoints that can do `push` (else pull), in order; credentials are looked
/// up per endpoint host by `creds`.
pub fn clients(
    host: &str,
    hosts: &Hosts,
    push: bool,
    creds: &dyn Fn(&str) -> Option<Credentials>,
) -> Result<Vec<Registry>, RegistryError> {
    hosts
        .endpoints
        .iter()
        .filter(|e| if push { e.push } else { e.pull })
        .map(|e| {
            let authority = e
                .origin
                .split_once("://")
                .map(|(_, a)| a)
                .unwrap_or(&e.origin);
            // The server's own credentials are stored under the registry's name.
            let key = if e.origin == default_server(host) {
                host
            } else {
                authority
            };
            Registry::endpoint(host, &e.origin, &e.api_path, creds(key), &e.ca)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_in_file_order_then_the_server() {
        let text = r#"
server = "http://reg.local:5000"

[host."https://zz-mirror.example/v2/proxy"]
  capabilities = ["pull", "resolve"]
  override_path = true
  ca = "/etc/ca.pem"

[host."http://aa-mirror:5000"]
  capabilities = ["pull", "resolve"]
"#;
        let h = parse("reg.local:5000", Path::new("x/hosts.toml"), text).unwrap();
        let e = &h.endpoints;
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].origin, "https://zz-mirror.example");
        assert_eq!(e[0].api_path, "/v2/proxy");
        assert_eq!(e[0].ca, vec![PathBuf::from("/etc/ca.pem")]);
        assert!(e[0].pull && !e[0].push);
        assert_eq!(e[1].origin, "http://aa-mirror:5000");
        assert_eq!(e[1].api_path, "/v2");
        assert_eq!(e[2].origin, "http://reg.local:5000");
        assert!(e[2].pull && e[2].push);
    }

    #[test]
    fn defaults_and_refusals() {
        let h = parse("docker.io", Path::new("h"), "").unwrap();
        assert_eq!(h.endpoints[0].origin, "https://registry-1.docker.io");
        assert!(parse("x", Path::new("h"), "server = \"ftp://x\"").is_err());
        assert!(matches!(
            parse(
                "x",
                Path::new("h"),
                "[host.\"https://m\"]\nskip_verify = true\n"
            ),
            Err(HostsError::SkipVerify { .. })
        ));
        assert!(parse("x", Path::new("h"), "server = [").is_err());
    }
}
