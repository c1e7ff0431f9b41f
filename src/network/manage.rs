//! The network commands' work on top of the config files: creating with a driver check,
//! Docker-shaped inspect JSON, and removing or pruning networks no container uses.

use serde_json::{json, Value};

use crate::images::time;

use super::{NetPaths, Network, NetworkError, DEFAULT_NETWORK};

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    /// Only "bridge" is supported.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub labels: serde_json::Map<String, Value>,
    /// `--internal`: no way out of the network.
    pub internal: bool,
    /// `-o`: the bridge driver's options.
    pub options: super::DriverOptions,
}

/// Creates the network `req` describes (see [`super::create`]).
pub fn create(paths: &NetPaths, req: CreateRequest) -> Result<Network, NetworkError> {
    if req.driver != "bridge" {
        return Err(NetworkError::Driver(req.driver));
    }
    super::create(paths, &req)
}

/// A network as `network inspect` shows it (Docker's keys).
pub fn inspect(n: &Network) -> Value {
    let config: Vec<Value> = n
        .subnets()
        .into_iter()
        .map(|(s, g)| json!({"Subnet": s, "Gateway": g.unwrap_or_default()}))
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created().map(time::rfc3339_nano).unwrap_or_else(|| time::ZERO.into()),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": n.internal(),
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Options": n.options(),
        "Labels": n.labels(),
        "ConfigFile": n.file,
    })
}

/// One `network ls --filter` (and the Docker API's): Docker's name (a substring), id (a
/// prefix), label, driver, type (builtin: the default network; custom: the others), scope and
/// dangling (no container on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFilter {
    Name(String),
    Id(String),
    Label(String, Option<String>),
    Driver(String),
    Custom(bool),
    Scope(String),
    Dangling(bool),
}

impl std::str::FromStr for ListFilter {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, NetworkError> {
        let bad = || NetworkError::Filter(s.to_string());
        Ok(match s.split_once('=').ok_or_else(bad)? {
            ("name", v) => ListFilter::Name(v.to_string()),
            ("id", v) => ListFilter::Id(v.to_string()),
            ("label", l) if !l.is_empty() => match l.split_once('=') {
                Some((k, v)) => ListFilter::Label(k.to_string(), Some(v.to_string())),
                None => ListFilter::Label(l.to_string(), None),
            },
            ("driver", v) => ListFilter::Driver(v.to_string()),
            ("type", "custom") => ListFilter::Custom(true),
            ("type", "builtin") => ListFilter::Custom(false),
            ("scope", v) => ListFilter::Scope(v.to_string()),
            ("dangling", "true" | "1") => ListFilter::Dangling(true),
            ("dangling", "false" | "0") => ListFilter::Dangling(false),
            _ => return Err(bad()),
        })
    }
}

impl ListFilter {
    fn keeps(&self, n: &Network, users: &Users) -> bool {
        match self {
            ListFilter::Name(v) => n.name.contains(v.as_str()),
            ListFilter::Id(v) => n.id.starts_with(v.as_str()),
            ListFilter::Label(k, v) => match (n.labels().get(k), v) {
                (Some(have), Some(want)) => have.as_str() == Some(want.as_str()),
                (Some(_), None) => true,
                (None, _) => false,
            },
            ListFilter::Driver(d) => d == "bridge",
            ListFilter::Custom(c) => (n.name != DEFAULT_NETWORK) == *c,
            ListFilter::Scope(s) => s == "local",
            // The default network is never dangling (Docker's builtin networks are not).
            ListFilter::Dangling(d) => {
                (n.name != DEFAULT_NETWORK && users.of(&n.name).is_none()) == *d
            }
        }
    }
}

/// The networks `filters` keep, as Docker applies them: any one of several name or id filters,
/// every other filter.
pub fn filter(all: Vec<Network>, filters: &[ListFilter], users: &Users) -> Vec<Network> {
    let any_of = |f: &ListFilter| matches!(f, ListFilter::Name(_) | ListFilter::Id(_));
    let (names, others): (Vec<&ListFilter>, Vec<&ListFilter>) =
        filters.iter().partition(|f| any_of(f));
    all.into_iter()
        .filter(|n| names.is_empty() || names.iter().any(|f| f.keeps(n, users)))
        .filter(|n| others.iter().all(|f| f.keeps(n, users)))
        .collect()
}

/// Which container uses which network: (network name, container name) pairs.
#[derive(Debug, Clone, Default)]
pub struct Users(pub Vec<(String, String)>);

impl Users {
    /// A container on the network `name`, if any.
    pub fn of(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }
}

/// Removes the network `query` names unless it is the default one or a container uses it.
pub fn remove_unused(paths: &NetPaths, query: &str, users: &Users) -> Result<(), NetworkError> {
    let n = super::get(paths, query)?;
    if n.name == DEFAULT_NETWORK {
        return Err(NetworkError::Default(query.to_string()));
    }
    if let Some(c) = users.of(&n.name) {
        return Err(NetworkError::InUse {
            network: query.to_string(),
            container: c.to_string(),
        });
    }
    super::remove(&n)
}

/// The networks `network prune` removes: all but the default one that no container uses.
pub fn prunable(paths: &NetPaths, users: &Users) -> Result<Vec<Network>, NetworkError> {
    Ok(super::list(paths)?
        .into_iter()
        .filter(|n| n.name != DEFAULT_NETWORK && users.of(&n.name).is_none())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &std::path::Path) -> NetPaths {
        NetPaths {
            conf_dir: dir.join("net.d"),
            plugin_dirs: vec![],
        }
    }

    fn request(name: &str, driver: &str) -> CreateRequest {
        CreateRequest {
            name: name.into(),
            driver: driver.into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_bridge_networks_are_made() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let e = create(&p, request("a", "macvlan")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported network driver \"macvlan\": only bridge"
        );
        let n = create(&p, request("a", "bridge")).unwrap();
        let v = inspect(&n);
        assert_eq!(v["Name"], "a");
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "10.4.1.0/24");
        // Docker's fields clients read: when it was made (clients parse it as a time), the bridge.
        let made = time::parse_rfc3339(v["Created"].as_str().unwrap()).unwrap();
        assert!((time::unix_secs(std::time::SystemTime::now()) - made).abs() < 60);
        // Options are what was given (none), as Docker shows a user network's: Compose
        // refuses to reuse a network whose options differ from its file's driver_opts.
        assert_eq!(v["Options"], json!({}));
        assert_eq!(v["Scope"], "local");
        let mut o = request("b", "bridge");
        o.options = super::super::DriverOptions::parse([
            ("com.docker.network.driver.mtu", "1400"),
            ("com.docker.network.bridge.name", "br-mine"),
        ])
        .unwrap();
        let v = inspect(&create(&p, o).unwrap());
        assert_eq!(
            v["Options"],
            json!({"com.docker.network.driver.mtu": "1400", "com.docker.network.bridge.name": "br-mine"})
        );
        super::super::ensure_default(&p).unwrap();
        let d = super::super::list(&p).unwrap();
        let d = d.iter().find(|n| n.name == DEFAULT_NETWORK).unwrap();
        assert_eq!(
            inspect(d)["Options"],
            json!({"com.docker.network.bridge.name": super::super::DEFAULT_BRIDGE})
        );
    }

    #[test]
    fn list_filters_as_docker_applies_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        super::super::ensure_default(&p).unwrap();
        let mut labelled = request("front", "bridge");
        labelled.labels.insert("team".into(), "web".into());
        create(&p, labelled).unwrap();
        create(&p, request("back", "bridge")).unwrap();
        let users = Users(vec![("back".into(), "db".into())]);
        let names = |fs: &[&str]| {
            let fs: Vec<ListFilter> = fs.iter().map(|f| f.parse().unwrap()).collect();
            filter(super::super::list(&p).unwrap(), &fs, &users)
                .into_iter()
                .map(|n| n.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&["dangling=true"]), ["front"]);
        assert_eq!(names(&["type=custom", "dangling=false"]), ["back"]);
        assert_eq!(names(&["type=builtin"]), ["bridge"]);
        assert_eq!(
            names(&["label=team=web", "driver=bridge", "scope=local"]),
            ["front"]
        );
        let mut both = names(&["name=fro", "name=bac"]);
        both.sort();
        assert_eq!(both, ["back", "front"]);
        assert!("size=1".parse::<ListFilter>().is_err());
    }

    #[test]
    fn used_and_default_networks_stay() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        create(&p, request("a", "bridge")).unwrap();
        create(&p, request("b", "bridge")).unwrap();
        let users = Users(vec![("a".into(), "web".into())]);
        let e = remove_unused(&p, "a", &users).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network a is in use by container web: remove the container first"
        );
        let e = remove_unused(&p, "bridge", &users).unwrap_err();
        assert_eq!(
            e.to_string(),
            "network bridge is the default network and cannot be removed"
        );
        let names: Vec<_> = prunable(&p, &users)
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["b"]);
        remove_unused(&p, "b", &users).unwrap();
        assert!(prunable(&p, &users).unwrap().is_empty());
    }
}
