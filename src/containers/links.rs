//! Docker's legacy links (`run --link NAME[:ALIAS]`): the linked container's alias in /etc/hosts
//! (on its line, kept up to date with its address as peers' lines are), and its ports and
//! environment as `ALIAS_*` variables, read from the running container when this one is made.

use super::request::ContainerRequest;
use super::{record, Ctx};

/// A link that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid --link {0:?}: give CONTAINER or CONTAINER:ALIAS")]
    Syntax(String),
    #[error("--link {0}: no such container")]
    NotFound(String),
    #[error("--link {0}: cannot link to a container that is not running: start it first")]
    NotRunning(String),
    #[error("--link {name}: it is on none of this container's networks ({networks}): links need a network both are on")]
    NoSharedNetwork { name: String, networks: String },
}

/// One `--link`: the container and the alias it is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub container: String,
    pub alias: String,
}

impl std::str::FromStr for Link {
    type Err = LinkError;

    fn from_str(s: &str) -> Result<Link, LinkError> {
        let (container, alias) = s.split_once(':').unwrap_or((s, s));
        let container = container.trim_start_matches('/');
        // The daemon's stored form, /NAME:/OWN/ALIAS.
        let alias = match alias.strip_prefix('/') {
            Some(path) => path.rsplit('/').next().unwrap_or_default(),
            None => alias,
        };
        if container.is_empty() || alias.is_empty() || alias.contains([':', '/', ' ']) {
            return Err(LinkError::Syntax(s.to_string()));
        }
        Ok(Link {
            container: container.to_string(),
            alias: alias.to_string(),
        })
    }
}

/// A request with its links made.
pub struct Linked {
    /// The request with Docker's link variables before its own environment (which wins).
    pub req: ContainerRequest,
    /// (linked container's id, alias) for the network hook's /etc/hosts.
    pub links: Vec<(String, String)>,
}

/// `req` with its links made; `own` is the new container's name, `networks` those it joins.
pub async fn apply(
    ctx: &Ctx,
    req: &ContainerRequest,
    own: &str,
    networks: &[String],
) -> Result<Linked, anyhow::Error> {
    let mut out = req.clone();
    let mut links = Vec::new();
    let mut env = Vec::new();
    for text in &req.host_config.links {
        let link: Link = text.parse()?;
        let c = ctx
            .find(&link.container)
            .await
            .map_err(|_| LinkError::NotFound(link.container.clone()))?;
        if !record::state(ctx, &c.id).await?.is_running() {
            return Err(LinkError::NotRunning(link.container.clone()).into());
        }
        let dir = ctx.store.container_dir(&c.id);
        let state = crate::network::hook::read_state(&dir).unwrap_or_default();
        let ip = state
            .attachments
            .iter()
            .filter(|(net, _, _)| networks.contains(net))
            .find_map(|(_, _, r)| crate::network::cni::first_ipv4(r))
            .map(|(addr, _)| addr.split('/').next().unwrap_or_default().to_string())
            .ok_or_else(|| LinkError::NoSharedNetwork {
                name: link.container.clone(),
                networks: networks.join(", "),
            })?;
        links.push((c.id.clone(), link.alias.clone()));
        let ports = super::asked::Asked::read(&dir)
            .map(|a| a.exposed_ports.into_iter().collect::<Vec<_>>())
            .unwrap_or_default();
        let their_env: Vec<String> = record::spec_of(&c)
            .and_then(|s| s.process().as_ref().and_then(|p| p.env().clone()))
            .unwrap_or_default();
        env.extend(variables(own, &link.alias, &ip, &ports, &their_env));
    }
    env.append(&mut out.config.env);
    out.config.env = env;
    Ok(Linked { req: out, links })
}

/// Docker's link variables for a container linked as `alias` at `ip` with `ports`
/// (`80/tcp`) and environment `env`, seen from the container `own`.
pub fn variables(
    own: &str,
    alias: &str,
    ip: &str,
    ports: &[String],
    env: &[String],
) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace(['-', '.'], "_");
    let mut out = vec![format!("{prefix}_NAME=/{own}/{alias}")];
    let mut ports: Vec<(u16, String)> = ports
        .iter()
        .filter_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((n.parse().ok()?, proto.to_string()))
        })
        .collect();
    ports.sort();
    if let Some((n, proto)) = ports.first() {
        out.push(format!("{prefix}_PORT={proto}://{ip}:{n}"));
    }
    for (n, proto) in &ports {
        let p = format!("{prefix}_PORT_{n}_{}", proto.to_ascii_uppercase());
        out.push(format!("{p}={proto}://{ip}:{n}"));
        out.push(format!("{p}_ADDR={ip}"));
        out.push(format!("{p}_PORT={n}"));
        out.push(format!("{p}_PROTO={proto}"));
    }
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            // As Docker: what every image has is not passed on.
            if k != "HOME" && k != "PATH" && k != "HOSTNAME" {
                out.push(format!("{prefix}_ENV_{k}={v}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_and_make_dockers_variables() {
        let l: Link = "db:mysql".parse().unwrap();
        assert_eq!((l.container.as_str(), l.alias.as_str()), ("db", "mysql"));
        let l: Link = "/db".parse().unwrap();
        assert_eq!(l.alias, "db");
        assert!("db:".parse::<Link>().is_err());
        let l: Link = "/db:/web/mysql".parse().unwrap();
        assert_eq!((l.container.as_str(), l.alias.as_str()), ("db", "mysql"));
        let v = variables(
            "web",
            "my-db",
            "10.4.0.5",
            &["5432/tcp".into(), "53/udp".into()],
            &["PATH=/bin".into(), "POSTGRES_DB=app".into()],
        );
        for want in [
            "MY_DB_NAME=/web/my-db",
            "MY_DB_PORT=udp://10.4.0.5:53",
            "MY_DB_PORT_5432_TCP=tcp://10.4.0.5:5432",
            "MY_DB_PORT_5432_TCP_ADDR=10.4.0.5",
            "MY_DB_PORT_5432_TCP_PORT=5432",
            "MY_DB_PORT_5432_TCP_PROTO=tcp",
            "MY_DB_PORT_53_UDP_PROTO=udp",
            "MY_DB_ENV_POSTGRES_DB=app",
        ] {
            assert!(v.contains(&want.to_string()), "{want}: {v:?}");
        }
        assert!(!v.iter().any(|x| x.starts_with("MY_DB_ENV_PATH")));
    }
}
