//! Listing containers as `ps` (and the Docker API's container list) shows them: every record
//! with its state, creation and start times, command, ports and name, newest first, narrowed by
//! Docker's filters (name, id, status, label, exited, ancestor, network, before, since, health), with
//! snapshot sizes on request.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::SystemTime;

use containerd_client::services::v1::Container;

use super::health::{self, HealthStatus};
use super::labels;
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
}

impl PartialEq for ListFilter {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// A filter ps does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported --filter {0:?}: use name=, id=, status=, label=, exited=, ancestor=, network=, before=, since= or health=")]
pub struct BadFilter(pub String);

impl FromStr for ListFilter {
    type Err = BadFilter;

    fn from_str(f: &str) -> Result<Self, BadFilter> {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        let v = v.to_string();
        Ok(match k {
            "name" => {
                ListFilter::Name(regex::Regex::new(&v).map_err(|_| BadFilter(f.to_string()))?)
            }
            "exited" => ListFilter::Exited(v.parse().map_err(|_| BadFilter(f.to_string()))?),
            "ancestor" => ListFilter::Ancestor(v),
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
                _ => return Err(BadFilter(f.to_string())),
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
            _ => return Err(BadFilter(f.to_string())),
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
    /// Whether it passes every filter; `created_of` gives the creation time of the container a
    /// before/since filter names.
    fn matches(
        &self,
        filters: &[ListFilter],
        created_of: &dyn Fn(&str) -> Option<(i64, i32)>,
    ) -> bool {
        let c = &self.container;
        let labels: &HashMap<String, String> = &record::labels_of(c);
        let created = c.created_at.as_ref().map(|t| (t.seconds, t.nanos));
        filters.iter().all(|f| match f {
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
        let err = "volume=x".parse::<ListFilter>().unwrap_err();
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
    }
}
