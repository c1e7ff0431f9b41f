//! `login`/`logout`: the registry host a user means, credentials checked against the endpoint
//! pushes go to and then kept as Docker keeps them (see [`super::auth`]), and forgetting them.

use std::path::PathBuf;

use anyhow::Context;

use super::auth::{self, AuthError, Credentials};
use super::endpoints::registries_for;
use super::reference::DOCKER_HUB;

/// The host part of what the user typed (`https://host/v1/` → `host`; Docker Hub's names → docker.io).
pub fn server_host(server: Option<&str>) -> String {
    let s = server.unwrap_or(DOCKER_HUB);
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_owned(),
        h => h.to_owned(),
    }
}

/// Checks `creds` with the registry pushes to `host` go to (a hosts.toml may move it, e.g. to
/// plain http://), then stores them.
pub async fn login(
    host: &str,
    creds: Credentials,
    insecure: bool,
    hosts_dirs: &[PathBuf],
) -> anyhow::Result<()> {
    check(host, &creds, insecure, hosts_dirs).await?;
    let path = auth::config_path()?;
    auth::store(&path, host, &creds)?;
    Ok(())
}

/// Checks `creds` with the registry pushes to `host` go to, storing nothing (the Docker API's
/// `POST /auth`: the client keeps them).
pub async fn check(
    host: &str,
    creds: &Credentials,
    insecure: bool,
    hosts_dirs: &[PathBuf],
) -> anyhow::Result<()> {
    let reg = registries_for(host, insecure, true, hosts_dirs)?
        .remove(0)
        .with_credentials(Some(creds.clone()));
    reg.ping().await.with_context(|| format!("login to {host}"))
}

/// Forgets the credentials for `host`; false when there were none.
pub fn logout(host: &str) -> Result<bool, AuthError> {
    let path = auth::config_path()?;
    auth::erase(&path, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_docker_reads_them() {
        assert_eq!(server_host(None), DOCKER_HUB);
        assert_eq!(server_host(Some("https://index.docker.io/v1/")), DOCKER_HUB);
        assert_eq!(server_host(Some("registry-1.docker.io")), DOCKER_HUB);
        assert_eq!(
            server_host(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(server_host(Some("ghcr.io")), "ghcr.io");
    }
}
