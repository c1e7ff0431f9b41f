//! The recent events a long-running process (the Docker API service) keeps, so that `since`
//! and `until` in the past are answered from them as Docker's daemon answers from its own
//! in-memory buffer: containerd keeps no history.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use super::events::{self, Event, EventQuery};
use super::lifecycle::Client;

/// How many events are kept (Docker's daemon keeps 256).
const KEPT: usize = 1024;

/// Recent events, and the ones that follow them.
#[derive(Clone)]
pub struct History {
    kept: Arc<Mutex<VecDeque<Event>>>,
    after: broadcast::Sender<Event>,
}

impl Default for History {
    fn default() -> History {
        History {
            kept: Arc::default(),
            after: broadcast::channel(4096).0,
        }
    }
}

impl History {
    /// Keeps `e` and hands it to those following (under one lock: see [`Self::follow`]).
    pub fn push(&self, e: Event) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        kept.push_back(e.clone());
        while kept.len() > KEPT {
            kept.pop_front();
        }
        let _ = self.after.send(e);
    }

    /// The kept events and a receiver of every later one, none missed or given twice.
    fn follow(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let kept = self.kept.lock().map(|k| k.iter().cloned().collect());
        (kept.unwrap_or_default(), self.after.subscribe())
    }

    /// Records every event of `namespace` for as long as the process runs, subscribing again
    /// (after a second) when containerd ends the stream (it restarted).
    pub async fn record(&self, client: Client, namespace: String) {
        loop {
            let q = EventQuery::default();
            if let Err(err) =
                events::stream(&client, &namespace, &q, |e| self.push(e.clone())).await
            {
                tracing::debug!(error = %format!("{err:#}"), "recording events; subscribing again");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Gives `emit` the events `q` selects: the kept ones when `q` has a since or until (from
    /// since, up to until), then new ones as they come until `q.until` (at once when it has
    /// passed; never without one).
    pub async fn replay(&self, q: &EventQuery, mut emit: impl FnMut(&Event)) {
        let (kept, mut after) = self.follow();
        let since = q.since.map(events::nanos).unwrap_or(i64::MIN);
        let until = q.until.map(events::nanos).unwrap_or(i64::MAX);
        if q.since.is_some() || q.until.is_some() {
            for e in kept
                .iter()
                .filter(|e| (since..=until).contains(&e.time_nano) && q.filter.matches(e))
            {
                emit(e);
            }
        }
        let deadline = q.until.map(|u| {
            let left = u.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, after.recv()).await {
                    Ok(n) => n,
                    Err(_) => return,
                },
                None => after.recv().await,
            };
            match next {
                Ok(e) if e.time_nano >= since && q.filter.matches(&e) => emit(&e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, at: i64) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            id: "c".into(),
            attributes: Default::default(),
            time_nano: at,
        }
    }

    #[tokio::test]
    async fn past_events_are_replayed_between_since_and_until() {
        let h = History::default();
        let now = events::nanos(SystemTime::now());
        for (i, a) in ["create", "start", "die"].iter().enumerate() {
            h.push(event(a, now - 3_000_000_000 + i as i64 * 1_000_000_000));
        }
        let seen = |q: EventQuery| {
            let h = h.clone();
            async move {
                let mut out = Vec::new();
                h.replay(&q, |e| out.push(e.action.clone())).await;
                out
            }
        };
        let at = |n: i64| SystemTime::UNIX_EPOCH + Duration::from_nanos(n as u64);
        let q = |since: Option<i64>, until: Option<i64>| EventQuery {
            filter: Default::default(),
            since: since.map(at),
            until: until.map(at),
        };
        assert_eq!(
            seen(q(Some(now - 10_000_000_000), Some(now))).await,
            ["create", "start", "die"]
        );
        assert_eq!(
            seen(q(Some(now - 2_500_000_000), Some(now))).await,
            ["start", "die"]
        );
        assert_eq!(
            seen(q(None, Some(now - 1_500_000_000))).await,
            ["create", "start"]
        );
        let filtered = EventQuery {
            filter: events::EventFilter::parse(&["event=die".to_string()]).unwrap(),
            ..q(Some(now - 10_000_000_000), Some(now))
        };
        assert_eq!(seen(filtered).await, ["die"]);
        // Live: what comes after the call, until `until`.
        let live = {
            let h = h.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                let q = EventQuery {
                    until: Some(SystemTime::now() + Duration::from_millis(300)),
                    ..Default::default()
                };
                h.replay(&q, |e| out.push(e.action.clone())).await;
                out
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        h.push(event("destroy", events::nanos(SystemTime::now())));
        let got = live.await.unwrap();
        assert_eq!(got.last().map(String::as_str), Some("destroy"));
    }
}
