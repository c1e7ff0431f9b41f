//! `events`: containerd's event stream read as Docker's events (container create, start, die,
//! destroy, pause, unpause, rename, exec and oom; image tag and delete; burrow's own network
//! and volume events, see [`super::notify`]), filtered as Docker's
//! `--filter` and bounded by `--since`/`--until`; burrow's own health_status events (published
//! by the health monitor on its topic) too, and kill, stop and restart, which burrow publishes
//! as it does them. containerd keeps no history, so only events from the subscription on are
//! seen.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, TaskExecStarted, TaskExit, TaskOom,
    TaskPaused, TaskResumed, TaskStart,
};
use containerd_client::services::v1::{Container, SubscribeRequest};
use containerd_client::types::Envelope;
use prost::Message;
use serde_json::{json, Value as Json};
use tokio_stream::StreamExt;

use super::labels;
use super::lifecycle::Client;
use crate::format::template::Value;
use crate::images::reference::{self, Reference};
use crate::images::time::rfc3339_nano;

/// A `--filter` that `events` does not take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventsError {
    #[error("invalid filter '{0}'")]
    Filter(String),
    #[error("invalid filter 'type={0}': give container, image, network or volume")]
    Type(String),
}

/// One event, as Docker's `events.Message` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `network` or `volume`.
    pub kind: String,
    /// `create`, `start`, `die`, ...
    pub action: String,
    /// The container's id, or the image's name.
    pub id: String,
    /// name, image, exitCode, the container's labels, ...
    pub attributes: BTreeMap<String, String>,
    /// When containerd published it, in nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// Docker's text line: `TIME TYPE ACTION ID (key=value, ...)`.
    pub fn text_line(&self) -> String {
        let time = UNIX_EPOCH + Duration::from_nanos(self.time_nano.max(0) as u64);
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut line = format!(
            "{} {} {} {}",
            rfc3339_nano(time),
            self.kind,
            self.action,
            self.id
        );
        if !attrs.is_empty() {
            line.push_str(&format!(" ({})", attrs.join(", ")));
        }
        line
    }

    /// The JSON Docker's API gives (`--format json`), with its field names.
    pub fn to_json(&self) -> Json {
        let (status, from) = self.legacy();
        json!({
            "status": status,
            "id": self.id,
            "from": from,
            "Type": self.kind,
            "Action": self.action,
            "Actor": {"ID": self.id, "Attributes": self.attributes},
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        })
    }

    /// What a `--format` template sees: Docker's Go fields (Attributes is a map).
    pub fn template_value(&self) -> Value {
        let (status, from) = self.legacy();
        let s = |v: &str| Value::Str(v.to_owned());
        let attrs = self
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), s(v)))
            .collect();
        let actor = Value::Struct(vec![
            ("ID".into(), s(&self.id)),
            ("Attributes".into(), Value::Map(attrs)),
        ]);
        Value::Struct(vec![
            ("Status".into(), s(&status)),
            ("ID".into(), s(&self.id)),
            ("From".into(), s(&from)),
            ("Type".into(), s(&self.kind)),
            ("Action".into(), s(&self.action)),
            ("Actor".into(), actor),
            ("Scope".into(), s("local")),
            ("Time".into(), Value::Int(self.time_nano / 1_000_000_000)),
            ("TimeNano".into(), Value::Int(self.time_nano)),
        ])
    }

    /// Docker's deprecated `status` and `from` (the action, and a container's image).
    fn legacy(&self) -> (String, String) {
        let from = match self.kind.as_str() {
            "container" => self.attributes.get("image").cloned().unwrap_or_default(),
            _ => String::new(),
        };
        (self.action.clone(), from)
    }
}

/// Docker's `--filter` for events: values of one key are alternatives, keys all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    by: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// From `key=value` flags: type, event, container, image, label, network, volume.
    pub fn parse(flags: &[String]) -> Result<EventFilter, EventsError> {
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in flags {
            let Some((k, v)) = f.split_once('=') else {
                return Err(EventsError::Filter(f.clone()));
            };
            match k {
                "type" if !matches!(v, "container" | "image" | "network" | "volume") => {
                    return Err(EventsError::Type(v.to_owned()))
                }
                "type" | "event" | "container" | "image" | "label" | "network" | "volume" => {}
                _ => return Err(EventsError::Filter(f.clone())),
            }
            by.entry(k.to_owned()).or_default().push(v.to_owned());
        }
        Ok(EventFilter { by })
    }

    /// Whether `e` passes every key given.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.attributes.get(k).map(String::as_str);
        self.by.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "type" => e.kind == *v,
                // As Docker: health_status alone matches every health_status: STATUS.
                "event" => {
                    e.action == *v
                        || (v == "health_status" && e.action.starts_with("health_status: "))
                }
                "container" => {
                    e.kind == "container"
                        && (e.id.starts_with(v.as_str()) || attr("name") == Some(v))
                }
                "image" => match e.kind.as_str() {
                    "image" => same_image(&e.id, v),
                    _ => attr("image").is_some_and(|i| same_image(i, v)),
                },
                // As Docker: the actor's id (a prefix) or name.
                "network" => {
                    e.kind == "network" && (e.id.starts_with(v.as_str()) || attr("name") == Some(v))
                }
                "volume" => e.kind == "volume" && e.id.starts_with(v.as_str()),
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => attr(lk) == Some(lv),
                    None => attr(v).is_some(),
                },
                _ => false,
            })
        })
    }
}

/// Whether two image names are the same reference (`busybox` is `docker.io/library/busybox:latest`).
fn same_image(a: &str, b: &str) -> bool {
    let full = |s: &str| {
        Reference::parse(s)
            .map(|r| format!("{}:{}", r.repository(), r.object()))
            .unwrap_or_else(|_| s.to_owned())
    };
    a == b || full(a) == full(b)
}

/// Which events to give: the filter, and the time window.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub filter: EventFilter,
    /// Events at or after this time (containerd has no history: earlier ones are not seen).
    pub since: Option<SystemTime>,
    /// Stop at this time; without it, stream until the caller stops.
    pub until: Option<SystemTime>,
}

/// What is known of a container, for events that no longer carry it (die, destroy).
#[derive(Debug, Clone, Default)]
struct Known {
    name: String,
    image: String,
    labels: BTreeMap<String, String>,
}

impl Known {
    fn of(c: &Container) -> Known {
        Known {
            name: c.labels.get(labels::NAME).cloned().unwrap_or_default(),
            image: reference::familiar(&c.image),
            labels: user_labels(&c.labels),
        }
    }
}

/// A container's labels without burrow's (and nerdctl's) own.
fn user_labels(all: &HashMap<String, String>) -> BTreeMap<String, String> {
    all.iter()
        .filter(|(k, _)| !super::labels::is_internal(k) && !k.starts_with("io.containerd."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The image messages containerd publishes (not in containerd_client's event types).
#[derive(Clone, PartialEq, prost::Message)]
struct ImageEvent {
    #[prost(string, tag = "1")]
    name: String,
}

/// Gives `emit` the events in `namespace` that `q` selects, as they happen, until `q.until`
/// (or forever). Ends with an error if containerd closes the stream.
pub async fn stream(
    client: &Client,
    namespace: &str,
    q: &EventQuery,
    mut emit: impl FnMut(&Event),
) -> anyhow::Result<()> {
    let until = q.until.map(|u| {
        let left = u.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    if until.is_some_and(|u| u <= tokio::time::Instant::now()) {
        return Ok(());
    }
    let req = SubscribeRequest {
        filters: vec![format!("namespace=={namespace}")],
    };
    let mut events = client
        .containerd()
        .events()
        .subscribe(req)
        .await?
        .into_inner();
    let mut known: HashMap<String, Known> = client
        .list(vec![])
        .await?
        .iter()
        .map(|c| (c.id.clone(), Known::of(c)))
        .collect();
    let since = q.since.map(nanos).unwrap_or(i64::MIN);
    loop {
        let next = match until {
            Some(u) => match tokio::time::timeout_at(u, events.next()).await {
                Ok(n) => n,
                Err(_) => return Ok(()),
            },
            None => events.next().await,
        };
        let Some(envelope) = next.transpose()? else {
            anyhow::bail!("containerd closed the event stream");
        };
        let fresh = lookup(client, &envelope).await;
        for e in map(&envelope, &mut known, fresh) {
            if e.time_nano >= since && q.filter.matches(&e) {
                emit(&e);
            }
        }
    }
}

/// The container a create or update event is about, looked up (its labels are not in the event).
async fn lookup(client: &Client, env: &Envelope) -> Option<Known> {
    let any = env.event.as_ref()?;
    let id = match env.topic.as_str() {
        "/containers/create" => ContainerCreate::decode(any.value.as_slice()).ok()?.id,
        "/containers/update" => ContainerUpdate::decode(any.value.as_slice()).ok()?.id,
        _ => return None,
    };
    client.get(&id).await.ok().map(|c| Known::of(&c))
}

pub(crate) fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The Docker events one containerd envelope is (none for what Docker does not report).
/// `fresh` is the container a create or update is about, as it is now.
fn map(env: &Envelope, known: &mut HashMap<String, Known>, fresh: Option<Known>) -> Vec<Event> {
    let Some(any) = &env.event else {
        return vec![];
    };
    let time_nano = env
        .timestamp
        .as_ref()
        .map(|t| t.seconds * 1_000_000_000 + i64::from(t.nanos))
        .unwrap_or_else(|| nanos(SystemTime::now()));
    let raw = any.value.as_slice();
    let container = |id: &str, action: &str, known: &HashMap<String, Known>| {
        let k = known.get(id).cloned().unwrap_or_default();
        let mut attributes = k.labels;
        attributes.insert("name".into(), k.name);
        attributes.insert("image".into(), k.image);
        Event {
            kind: "container".into(),
            action: action.into(),
            id: id.into(),
            attributes,
            time_nano,
        }
    };
    let with = |mut e: Event, k: &str, v: String| {
        e.attributes.insert(k.into(), v);
        e
    };
    let one = |e: Option<Event>| e.into_iter().collect();
    match env.topic.as_str() {
        "/containers/create" => {
            let Ok(c) = ContainerCreate::decode(raw) else {
                return vec![];
            };
            known.insert(c.id.clone(), fresh.unwrap_or_default());
            vec![container(&c.id, "create", known)]
        }
        "/containers/update" => {
            let (Ok(c), Some(now)) = (ContainerUpdate::decode(raw), fresh) else {
                return vec![];
            };
            let old = known.insert(c.id.clone(), now.clone()).unwrap_or_default();
            if old.name == now.name {
                return vec![];
            }
            vec![with(container(&c.id, "rename", known), "oldName", old.name)]
        }
        "/containers/delete" => {
            let Ok(c) = ContainerDelete::decode(raw) else {
                return vec![];
            };
            let e = container(&c.id, "destroy", known);
            known.remove(&c.id);
            vec![e]
        }
        "/tasks/start" => one(TaskStart::decode(raw)
            .ok()
            .map(|t| container(&t.container_id, "start", known))),
        "/tasks/exit" => one(TaskExit::decode(raw).ok().map(|t| {
            let code = t.exit_status.to_string();
            if t.id == t.container_id || t.id.is_empty() {
                with(container(&t.container_id, "die", known), "exitCode", code)
            } else {
                let e = with(
                    container(&t.container_id, "exec_die", known),
                    "execID",
                    t.id,
                );
                with(e, "exitCode", code)
            }
        })),
        "/tasks/exec-started" => one(TaskExecStarted::decode(raw).ok().map(|t| {
            with(
                container(&t.container_id, "exec_start", known),
                "execID",
                t.exec_id,
            )
        })),
        super::health::EVENT_TOPIC => {
            one(super::health::HealthStatusEvent::decode(raw).ok().map(|h| {
                container(
                    &h.container_id,
                    &format!("health_status: {}", h.status),
                    known,
                )
            }))
        }
        super::notify::TOPIC => one(super::notify::OwnEvent::decode(raw).ok().map(|o| {
            if o.kind == "container" {
                let mut e = container(&o.id, &o.action, known);
                e.attributes.extend(o.attributes);
                return e;
            }
            Event {
                kind: o.kind,
                action: o.action,
                id: o.id,
                attributes: o.attributes,
                time_nano,
            }
        })),
        "/tasks/oom" => one(TaskOom::decode(raw)
            .ok()
            .map(|t| container(&t.container_id, "oom", known))),
        "/tasks/paused" => one(TaskPaused::decode(raw)
            .ok()
            .map(|t| container(&t.container_id, "pause", known))),
        "/tasks/resumed" => one(TaskResumed::decode(raw)
            .ok()
            .map(|t| container(&t.container_id, "unpause", known))),
        topic @ ("/images/create" | "/images/update" | "/images/delete") => {
            let action = if topic == "/images/delete" {
                "delete"
            } else {
                "tag"
            };
            one(ImageEvent::decode(raw).ok().map(|i| Event {
                kind: "image".into(),
                action: action.into(),
                attributes: BTreeMap::from([("name".to_owned(), reference::familiar(&i.name))]),
                id: reference::familiar(&i.name),
                time_nano,
            }))
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{Any, Timestamp};

    fn envelope(topic: &str, msg: &impl Message) -> Envelope {
        Envelope {
            timestamp: Some(Timestamp {
                seconds: 1_764_658_800,
                nanos: 5,
            }),
            namespace: "default".into(),
            topic: topic.into(),
            event: Some(Any {
                type_url: String::new(),
                value: msg.encode_to_vec(),
            }),
        }
    }

    fn known() -> HashMap<String, Known> {
        HashMap::from([(
            "abc".to_owned(),
            Known {
                name: "web".into(),
                image: "busybox:latest".into(),
                labels: BTreeMap::from([("tier".to_owned(), "front".to_owned())]),
            },
        )])
    }

    #[test]
    fn a_containers_life_in_dockers_words() {
        let mut k = known();
        let exit = TaskExit {
            container_id: "abc".into(),
            id: "abc".into(),
            exit_status: 3,
            ..TaskExit::default()
        };
        let die = map(&envelope("/tasks/exit", &exit), &mut k, None);
        assert_eq!(
            die[0].text_line(),
            "2025-12-02T07:00:00.000000005Z container die abc \
             (exitCode=3, image=busybox:latest, name=web, tier=front)"
        );
        let start = TaskStart {
            container_id: "abc".into(),
            pid: 1,
        };
        assert_eq!(
            map(&envelope("/tasks/start", &start), &mut k, None)[0].action,
            "start"
        );
        let gone = ContainerDelete { id: "abc".into() };
        let destroy = map(&envelope("/containers/delete", &gone), &mut k, None);
        assert_eq!(destroy[0].attributes["name"], "web");
        assert!(k.is_empty(), "forgotten once destroyed");
        let exec_exit = TaskExit {
            container_id: "abc".into(),
            id: "exec1".into(),
            ..TaskExit::default()
        };
        let e = map(&envelope("/tasks/exit", &exec_exit), &mut known(), None);
        assert_eq!(
            (e[0].action.as_str(), e[0].attributes["execID"].as_str()),
            ("exec_die", "exec1")
        );
        let img = ImageEvent {
            name: "docker.io/library/alpine:latest".into(),
        };
        let e = map(&envelope("/images/delete", &img), &mut k, None);
        assert_eq!(
            (e[0].kind.as_str(), e[0].action.as_str()),
            ("image", "delete")
        );
        assert!(map(&envelope("/snapshot/prepare", &img), &mut k, None).is_empty());
        let health = super::super::health::HealthStatusEvent {
            container_id: "abc".into(),
            status: "healthy".into(),
        };
        let e = map(
            &envelope("/burrow/health-status", &health),
            &mut known(),
            None,
        );
        assert_eq!(
            e[0].text_line(),
            "2025-12-02T07:00:00.000000005Z container health_status: healthy abc \
             (image=busybox:latest, name=web, tier=front)"
        );
        let f = EventFilter::parse(&["event=health_status".to_owned()]).unwrap();
        assert!(f.matches(&e[0]));
    }

    #[test]
    fn json_and_templates_see_dockers_fields() {
        let mut k = known();
        let start = TaskStart {
            container_id: "abc".into(),
            pid: 1,
        };
        let e = &map(&envelope("/tasks/start", &start), &mut k, None)[0];
        let j = e.to_json();
        assert_eq!(j["Actor"]["Attributes"]["name"], "web");
        assert_eq!(j["timeNano"], 1_764_658_800_000_000_005i64);
        assert_eq!(j["time"], 1_764_658_800i64);
        assert_eq!(j["from"], "busybox:latest");
        let t = crate::format::template::Template::parse(
            "",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.nope}}",
        )
        .unwrap();
        assert_eq!(
            t.execute(&e.template_value()).unwrap(),
            "container start web <no value>"
        );
    }

    #[test]
    fn filters_as_docker_reads_them() {
        let e = Event {
            kind: "container".into(),
            action: "die".into(),
            id: "abcdef".into(),
            attributes: BTreeMap::from([
                ("name".to_owned(), "web".to_owned()),
                ("image".to_owned(), "busybox".to_owned()),
                ("tier".to_owned(), "front".to_owned()),
            ]),
            time_nano: 0,
        };
        let f = |flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            EventFilter::parse(&flags).unwrap().matches(&e)
        };
        assert!(f(&[]));
        assert!(f(&["type=container", "event=start", "event=die"]));
        assert!(!f(&["type=image"]));
        assert!(f(&["container=web"]) && f(&["container=abc"]) && !f(&["container=db"]));
        assert!(f(&["image=busybox", "label=tier", "label=tier=front"]));
        assert!(f(&["image=docker.io/library/busybox:latest"]) && !f(&["image=alpine"]));
        assert!(!f(&["label=tier=back"]));
        assert_eq!(
            EventFilter::parse(&["color=red".to_owned()])
                .unwrap_err()
                .to_string(),
            "invalid filter 'color=red'"
        );
        assert!(EventFilter::parse(&["type=plugin".to_owned()]).is_err());
        assert!(!f(&["network=web"]) && !f(&["type=volume"]));
    }

    #[test]
    fn burrows_own_network_and_volume_events() {
        let own = crate::containers::notify::OwnEvent {
            kind: "network".into(),
            action: "connect".into(),
            id: "n1234".into(),
            attributes: BTreeMap::from([
                ("name".to_owned(), "front".to_owned()),
                ("container".to_owned(), "abc".to_owned()),
            ]),
        };
        let e = &map(
            &envelope(crate::containers::notify::TOPIC, &own),
            &mut known(),
            None,
        )[0];
        assert_eq!((e.kind.as_str(), e.action.as_str()), ("network", "connect"));
        let j = e.to_json();
        assert_eq!(j["Actor"]["Attributes"]["container"], "abc");
        let f = |flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            EventFilter::parse(&flags).unwrap().matches(e)
        };
        assert!(f(&["type=network", "network=front"]) && f(&["network=n12"]));
        assert!(!f(&["network=back"]) && !f(&["volume=front"]) && !f(&["type=volume"]));
    }

    #[test]
    fn burrows_container_events_carry_the_containers_attributes() {
        let own = crate::containers::notify::OwnEvent {
            kind: "container".into(),
            action: "kill".into(),
            id: "abc".into(),
            attributes: BTreeMap::from([("signal".to_owned(), "15".to_owned())]),
        };
        let e = &map(
            &envelope(crate::containers::notify::TOPIC, &own),
            &mut known(),
            None,
        )[0];
        let j = e.to_json();
        assert_eq!(
            (j["Type"].as_str(), j["Action"].as_str()),
            (Some("container"), Some("kill"))
        );
        let a = &j["Actor"]["Attributes"];
        assert_eq!(
            (&a["name"], &a["signal"], &a["tier"]),
            (&json!("web"), &json!("15"), &json!("front"))
        );
    }
}
