//! Listing containers as `ps` (and the Docker API's container list) shows them: every record
//! with its state, creation and start times, command, ports and name, newest first, narrowed by
//! Docker's filters (name, id, status, label, exited, ancestor, network, before, since, health,
//! volume, publish, expose; several values of one key are alternatives, except label's, which
//! must all hold, as in Docker), with snapshot sizes on request.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::SystemTime;

use containerd_client::services::v1::Container;

use super::health::{self, HealthStatus};
use super::labels;
use super::mounts::MountRecord;
use super::record::{self, State};
use super::Ctx;
use crate::network::ports::PortMapping;

/// A creation time as containerd gives it (seconds, nanoseconds).
type Stamp = (i64, i32);

/// One `--filter KEY=VALUE` of a container list.
#[derive(Debug, Clone)]
pub enum ListFilter {
    /// The name matches this regular expression (anywhere in it, as Docker's).
    Name(regex::Regex),
    /// The id starts with this.
    Id(String),
    /// Docker's status word (created, running, paused, exited); shows stopped ones too.
    Status(String),
    /// A label, with or without a value.
    Label {
        key: String,
        value: Option<String>,
    },
    /// Exited with this code.
    Exited(u32),
    /// Made from this image (by any of the names Docker resolves it under).
    Ancestor(String),
    /// On this network.
    Network(String),
    /// Created before (or since) this container (name or id prefix).
    Before(String),
    Since(String),
    /// Health: starting, healthy, unhealthy, or none (no healthcheck).
    Health(Option<HealthStatus>),
    /// Mounts this volume (by name), this host path (a bind's source) or at this path inside.
    Volume(String),
    /// Publishes one of these container ports (`80`, `80/udp`, `8000-8080/tcp`).
    Publish(PortRange),
    /// Exposes one of these container ports (the image's, `--expose`'s and published ones).
    Expose(PortRange),
    /// Is a Swarm task (`is-task=true`): no container here is one.
    IsTask(bool),
}

impl ListFilter {
    /// The filter's key: values of one key are alternatives (labels excepted).
    fn key(&self) -> &'static str {
        match self {
            ListFilter::Name(_) => "name",
            ListFilter::Id(_) => "id",
            ListFilter::Status(_) => "status",
            ListFilter::Label { .. } => "label",
            ListFilter::IsTask(_) => "is-task",
            ListFilter::Exited(_) => "exited",
            ListFilter::Ancestor(_) => "ancestor",
            ListFilter::Network(_) => "network",
            ListFilter::Before(_) => "before",
            ListFilter::Since(_) => "since",
            ListFilter::Health(_) => "health",
            ListFilter::Volume(_) => "volume",
            ListFilter::Publish(_) => "publish",
            ListFilter::Expose(_) => "expose",
        }
    }
}

/// Container ports `first..=last` of one protocol, as publish= and expose= name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
    pub protocol: String,
}

impl PortRange {
    /// `PORT[/PROTO]` or `FIRST-LAST[/PROTO]` (tcp when not given); a host port (`:`) refused.
    fn parse(key: &str, v: &str) -> Result<PortRange, BadFilter> {
        let bad = |why: &str| BadFilter(format!("{key}={v}"), why.to_string());
        if v.contains(':') {
            return Err(bad(
                "it names a container port, without a host port or address",
            ));
        }
        let (ports, protocol) = match v.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (v, "tcp".to_string()),
        };
        if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(bad("the protocol is tcp, udp or sctp"));
        }
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("a port is a number from 1 to 65535"))
        };
        let (first, last) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        if last < first {
            return Err(bad("a range runs from the lower port to the higher"));
        }
        Ok(PortRange {
            first,
            last,
            protocol,
        })
    }

    /// Whether `port` ("80/tcp", or "80" for tcp) is in the range.
    fn holds(&self, port: &str) -> bool {
        let (n, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        n.parse::<u16>()
            .is_ok_and(|n| (self.first..=self.last).contains(&n))
            && proto.eq_ignore_ascii_case(&self.protocol)
    }
}

impl PartialEq for ListFilter {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// A filter ps does not know, or a value it cannot read (and why).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported --filter {0:?}: {1}")]
pub struct BadFilter(pub String, pub String);

/// What a filter of an unknown key is told.
const KEYS: &str = "use name=, id=, status=, label=, exited=, ancestor=, network=, before=, since=, health=, volume=, publish=, expose= or is-task=";

impl FromStr for ListFilter {
    type Err = BadFilter;

    fn from_str(f: &str) -> Result<Self, BadFilter> {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        let bad = |why: &str| BadFilter(f.to_string(), why.to_string());
        let v = v.to_string();
        Ok(match k {
            "name" => ListFilter::Name(
                regex::Regex::new(&v)
                    .map_err(|e| bad(&format!("not a regular expression: {e}")))?,
            ),
            "exited" => ListFilter::Exited(v.parse().map_err(|_| bad("an exit code is a number"))?),
            "volume" => ListFilter::Volume(v),
            "publish" => ListFilter::Publish(PortRange::parse(k, &v)?),
            "expose" => ListFilter::Expose(PortRange::parse(k, &v)?),
            "ancestor" => ListFilter::Ancestor(v),
            "is-task" => ListFilter::IsTask(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(bad("is-task is true or false")),
            }),
            "network" => ListFilter::Network(v),
            "before" => ListFilter::Before(v),
            "since" => ListFilter::Since(v),
            "id" => ListFilter::Id(v),
            "status" => ListFilter::Status(v),
            "health" => ListFilter::Health(match v.as_str() {
                "starting" => Some(HealthStatus::Starting),
                "healthy" => Some(HealthStatus::Healthy),
                "unhealthy" => Some(HealthStatus::Unhealthy),
                "none" => None,
                _ => return Err(bad("health is starting, healthy, unhealthy or none")),
            }),
            "label" => match v.split_once('=') {
                Some((lk, lv)) => ListFilter::Label {
                    key: lk.to_string(),
                    value: Some(lv.to_string()),
                },
                None => ListFilter::Label {
                    key: v,
                    value: None,
                },
            },
            _ => return Err(bad(KEYS)),
        })
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too (`-a`; a status filter implies it).
    pub all: bool,
    /// Read each container's snapshot sizes (`-s`).
    pub size: bool,
    /// Only the N newest that match, stopped ones too (`-n`/`--last`, `-l`/`--latest`).
    pub last: Option<usize>,
    pub filters: Vec<ListFilter>,
}

/// One container as a list shows it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub container: Container,
    pub name: String,
    pub state: State,
    pub created: Option<SystemTime>,
    /// When its task last started, while it runs (its "Up" time).
    pub started: Option<SystemTime>,
    /// The process's arguments, joined by spaces.
    pub command: String,
    pub ports: Vec<PortMapping>,
    /// (own, with the image's) snapshot sizes in bytes, when asked for and readable.
    pub size: Option<(u64, u64)>,
    /// Its health status, with a healthcheck.
    pub health: Option<HealthStatus>,
}

impl Summary {
    /// Its ports as Docker lists them (see [`record::shown_ports`]): none once stopped.
    pub fn shown_ports(&self) -> Vec<record::ShownPort> {
        if !self.state.is_running() {
            return Vec::new();
        }
        let exposed = self
            .container
            .labels
            .get(super::labels::STATE_DIR)
            .and_then(|d| super::asked::Asked::read(std::path::Path::new(d)))
            .map(|a| a.exposed_ports)
            .unwrap_or_default();
        record::shown_ports(&self.container, &self.state, &exposed)
    }

    /// Whether it passes the filters: one value of each key (every label); `created_of` gives
    /// the creation time of the container a before/since filter names.
    fn matches(
        &self,
        filters: &[ListFilter],
        created_of: &dyn Fn(&str) -> Option<(i64, i32)>,
    ) -> bool {
        let c = &self.container;
        let labels: &HashMap<String, String> = &record::labels_of(c);
        let created = c.created_at.as_ref().map(|t| (t.seconds, t.nanos));
        // What only some filters need, read once when one does.
        let dir = c
            .labels
            .get(super::labels::STATE_DIR)
            .map(std::path::PathBuf::from);
        let mounts = std::cell::OnceCell::new();
        let mounts = || {
            mounts.get_or_init(|| match &dir {
                Some(d) => MountRecord::read(d, record::spec_of(c).as_ref()).mounts,
                None => Vec::new(),
            })
        };
        let exposed = std::cell::OnceCell::new();
        let exposed = || {
            exposed.get_or_init(|| {
                let mut ports: Vec<String> = dir
                    .as_deref()
                    .and_then(super::asked::Asked::read)
                    .map(|a| a.exposed_ports.into_iter().collect())
                    .unwrap_or_default();
                ports.extend(
                    self.ports
                        .iter()
                        .map(|p| format!("{}/{}", p.container_port, p.protocol)),
                );
                ports
            })
        };
        let one = |f: &ListFilter| match f {
            // Docker matches the name with its leading slash (`^/web$`); nerdctl without.
            ListFilter::Name(re) => {
                re.is_match(&self.name) || re.is_match(&format!("/{}", self.name))
            }
            ListFilter::Id(v) => c.id.starts_with(v.as_str()),
            ListFilter::Status(v) => self.state.word() == v,
            ListFilter::Label {
                key,
                value: Some(v),
            } => labels.get(key) == Some(v),
            ListFilter::Label { key, value: None } => labels.contains_key(key),
            ListFilter::Exited(code) => {
                matches!(self.state, State::Exited { code: got, .. } if got == *code)
            }
            ListFilter::Ancestor(image) => {
                crate::images::runnable::candidate_names(image).contains(&c.image)
            }
            ListFilter::Network(n) => record::networks_of(c).contains(n),
            ListFilter::Before(other) => created_of(other).is_some_and(|t| created < Some(t)),
            ListFilter::Since(other) => created_of(other).is_some_and(|t| created > Some(t)),
            ListFilter::Health(h) => self.health == *h,
            // Docker: a volume's name, a bind's source, or the path it is mounted at.
            ListFilter::Volume(v) => mounts().iter().any(|m| {
                (!m.name.is_empty() && m.name == *v)
                    || (m.name.is_empty() && m.source == std::path::Path::new(v))
                    || m.destination == *v
            }),
            ListFilter::Publish(r) => self
                .ports
                .iter()
                .any(|p| r.holds(&format!("{}/{}", p.container_port, p.protocol))),
            ListFilter::Expose(r) => exposed().iter().any(|p| r.holds(p)),
            ListFilter::IsTask(t) => !*t,
        };
        let mut keys: Vec<&str> = filters.iter().map(ListFilter::key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.iter().all(|&k| {
            let mut of_key = filters.iter().filter(|f| f.key() == k);
            if k == "label" {
                of_key.all(one)
            } else {
                of_key.any(one)
            }
        })
    }
}

/// The containers `opts` asks for, newest first.
pub async fn list(ctx: &Ctx, opts: &ListOptions) -> anyhow::Result<Vec<Summary>> {
    let (containers, tasks) = tokio::join!(ctx.client.list(vec![]), ctx.client.list_tasks());
    let mut containers = containers?;
    let tasks: HashMap<String, _> = tasks?
        .into_iter()
        .map(|t| {
            // containerd fills `id` with the container's id in task lists.
            let key = if t.container_id.is_empty() {
                t.id.clone()
            } else {
                t.container_id.clone()
            };
            (key, t)
        })
        .collect();
    containers
        .sort_by_key(|c| std::cmp::Reverse(c.created_at.as_ref().map(|t| (t.seconds, t.nanos))));
    let all = opts.all
        || opts.last.is_some()
        || opts
            .filters
            .iter()
            .any(|f| matches!(f, ListFilter::Status(_) | ListFilter::Exited(_)));
    // before= and since= name a container: by name, full id or id prefix.
    let created: Vec<(String, String, Option<Stamp>)> = containers
        .iter()
        .map(|c| {
            let t = c.created_at.as_ref().map(|t| (t.seconds, t.nanos));
            (record::name_of(c), c.id.clone(), t)
        })
        .collect();
    let created_of = |q: &str| {
        created
            .iter()
            .find(|(name, id, _)| name == q || id.starts_with(q))
            .and_then(|(_, _, t)| *t)
    };
    // ancestor= names an image (by name, ID or ID prefix): a container of that image passes
    // whatever name it was run by (any one of several ancestor filters, as Docker's).
    let (ancestors, filters): (Vec<ListFilter>, Vec<ListFilter>) = opts
        .filters
        .iter()
        .cloned()
        .partition(|f| matches!(f, ListFilter::Ancestor(_)));
    let mut ancestor_ids = Vec::new();
    for f in &ancestors {
        if let ListFilter::Ancestor(v) = f {
            let id = ctx.images.resolve(v).await.ok().map(|i| i.config_digest);
            ancestor_ids.push((v.clone(), id));
        }
    }
    let of_ancestor = |c: &Container| {
        ancestor_ids.is_empty()
            || ancestor_ids.iter().any(|(name, id)| {
                let by_id = id.is_some() && c.labels.get(labels::IMAGE_ID) == id.as_ref();
                by_id || crate::images::runnable::candidate_names(name).contains(&c.image)
            })
    };
    let mut out = Vec::new();
    for c in containers {
        if opts.last.is_some_and(|n| out.len() >= n) {
            break;
        }
        let state = record::with_recorded_exit(ctx, &c.id, State::from_task(tasks.get(&c.id)));
        if !all && !state.is_running() {
            continue;
        }
        if !of_ancestor(&c) {
            continue;
        }
        let summary = summarize(ctx, c, state, opts.size).await;
        if summary.matches(&filters, &created_of) {
            out.push(summary);
        }
    }
    Ok(out)
}

async fn summarize(ctx: &Ctx, c: Container, state: State, size: bool) -> Summary {
    let created = c.created_at.as_ref().map(record::timestamp);
    // Only a running container's start time is shown (its "Up" time).
    let started = if state.is_running() {
        ctx.store
            .started_at(&c.id)
            .or_else(|| c.updated_at.as_ref().map(record::timestamp))
            .or(created)
    } else {
        None
    };
    let size = if size {
        ctx.client
            .snapshot_sizes(&c.snapshotter, &c.snapshot_key)
            .await
            .ok()
    } else {
        None
    };
    Summary {
        health: health::status_of(ctx, &c),
        name: record::name_of(&c),
        command: record::process_of(&c).args.join(" "),
        ports: record::ports_of(&c),
        container: c,
        state,
        created,
        started,
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_match() {
        let f = |s: &str| s.parse::<ListFilter>().unwrap();
        assert_eq!(
            f("label=a=b"),
            ListFilter::Label {
                key: "a".into(),
                value: Some("b".into())
            }
        );
        let err = "size=x".parse::<ListFilter>().unwrap_err();
        assert!(err.to_string().contains("name=, id="), "{err}");
        let mut c = Container {
            id: "abcdef".into(),
            ..Default::default()
        };
        c.labels.insert("a".into(), "b".into());
        let s = Summary {
            container: c,
            name: "web-1".into(),
            state: State::Running { pid: 1 },
            created: None,
            started: None,
            command: String::new(),
            ports: vec![],
            size: None,
            health: Some(HealthStatus::Healthy),
        };
        let none = |_: &str| None;
        assert!(s.matches(&[f("name=web"), f("id=abc"), f("status=running")], &none));
        assert!(s.matches(&[f("label=a"), f("label=a=b")], &none));
        assert!(!s.matches(&[f("label=a=c")], &none));
        assert!(!s.matches(&[f("status=exited")], &none));
        assert!(!s.matches(&[f("name=db")], &none));
        assert!(
            s.matches(&[f("name=^web-[0-9]$")], &none),
            "names are regular expressions"
        );
        assert!(!s.matches(&[f("name=^eb")], &none));
        assert!(!s.matches(&[f("exited=0")], &none));
        assert!(
            !s.matches(&[f("before=x")], &none),
            "an unknown container matches nothing"
        );
        assert!("exited=x".parse::<ListFilter>().is_err());
        assert!(s.matches(&[f("health=healthy")], &none));
        assert!(
            !s.matches(&[f("health=none")], &none) && !s.matches(&[f("health=starting")], &none)
        );
        assert!("health=sick".parse::<ListFilter>().is_err());
        assert!("name=[".parse::<ListFilter>().is_err());
        // Values of one key are alternatives; labels must all hold.
        assert!(s.matches(&[f("status=exited"), f("status=running")], &none));
        assert!(s.matches(&[f("name=db"), f("name=web")], &none));
        assert!(!s.matches(&[f("label=a"), f("label=zz")], &none));
        // No container is a Swarm task.
        assert!(s.matches(&[f("is-task=false")], &none));
        assert!(!s.matches(&[f("is-task=true")], &none));
        assert!("is-task=maybe".parse::<ListFilter>().is_err());
    }

    #[test]
    fn port_filters() {
        let r = |s: &str| match s.parse::<ListFilter>().unwrap() {
            ListFilter::Publish(r) | ListFilter::Expose(r) => r,
            other => panic!("{other:?}"),
        };
        assert!(r("publish=80").holds("80/tcp") && r("publish=80").holds("80"));
        assert!(!r("publish=80").holds("80/udp") && r("expose=80/UDP").holds("80/udp"));
        assert!(r("expose=8000-8080").holds("8042/tcp") && !r("expose=8000-8080").holds("79/tcp"));
        for bad in [
            "publish=8080:80",
            "publish=x",
            "expose=0",
            "expose=90-80",
            "publish=80/icmp",
        ] {
            let err = bad.parse::<ListFilter>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let mut s = Summary {
            container: Container::default(),
            name: "web".into(),
            state: State::Running { pid: 1 },
            created: None,
            started: None,
            command: String::new(),
            ports: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "0.0.0.0".into(),
            }],
            size: None,
            health: None,
        };
        let f = |s: &str| s.parse::<ListFilter>().unwrap();
        let none = |_: &str| None;
        assert!(s.matches(&[f("publish=80")], &none), "the container port");
        assert!(!s.matches(&[f("publish=8080")], &none), "not the host port");
        assert!(
            s.matches(&[f("expose=80/tcp")], &none),
            "published ports are exposed"
        );
        assert!(!s.matches(&[f("volume=/data")], &none));
        s.ports.clear();
        assert!(!s.matches(&[f("publish=80")], &none));
    }
}
