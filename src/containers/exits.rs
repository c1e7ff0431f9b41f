//! The next exit of containers' tasks as one long-lived process (the Docker API's service) sees
//! them: a waiter started with each task it starts publishes the exit status, so a `wait` asked
//! before the start gets it even when the task ended (and an auto-removed container went)
//! before anyone looked; and containerd's `/tasks/exit` events for tasks others start (a
//! background reader's, whose container may be gone before a waiter looks again).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use containerd_client::events::{ContainerDelete, TaskExit};
use containerd_client::services::v1::SubscribeRequest;
use containerd_client::types::Envelope;
use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::StreamExt;

use super::lifecycle::Client;

type Board = Mutex<HashMap<String, watch::Sender<Option<u32>>>>;

fn board() -> &'static Board {
    static BOARD: OnceLock<Board> = OnceLock::new();
    BOARD.get_or_init(Board::default)
}

/// Subscribes to the next exit of container `id`'s task that [`watch_task`] sees.
pub fn subscribe(id: &str) -> watch::Receiver<Option<u32>> {
    let mut all = board().lock().unwrap_or_else(|e| e.into_inner());
    all.entry(id.to_string())
        .or_insert_with(|| watch::channel(None).0)
        .subscribe()
}

/// Waits in the background for the exit of container `id`'s task (started now) and tells the
/// subscribers its status. A failed wait tells them nothing (they look at the container).
pub fn watch_task(client: Client, id: &str) {
    let id = id.to_string();
    tokio::spawn(async move {
        let code = client.wait_task(&id).await;
        let tx = board()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let (Ok(code), Some(tx)) = (code, tx) {
            tx.send_replace(Some(code));
        }
    });
}

/// Tells container `id`'s subscribers an exit status that no task will give: its start
/// failed (Docker's 127, 126 or 128), so a `wait` for its removal has its answer.
pub fn publish(id: &str, code: u32) {
    let tx = board().lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    if let Some(tx) = tx {
        tx.send_replace(Some(code));
    }
}

/// containerd's events in `namespace` from now on, through a channel fed by a task of their
/// own. containerd answers a subscription only with its first event, so the subscription is not
/// awaited here: it is sent at once and given a moment to be in place.
async fn events_from_now(client: &Client, namespace: &str) -> mpsc::UnboundedReceiver<Envelope> {
    let req = SubscribeRequest {
        filters: vec![format!("namespace=={namespace}")],
    };
    let client = client.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let (sent, in_place) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut service = client.containerd().events();
        let call = service.subscribe(req);
        tokio::pin!(call);
        // The request goes out on the first poll; its answer comes with the first event.
        let first = tokio::time::timeout(Duration::from_millis(20), &mut call).await;
        let _ = sent.send(());
        let answered = match first {
            Ok(r) => r,
            Err(_) => call.await,
        };
        let Ok(answer) = answered else { return };
        let mut events = answer.into_inner();
        while let Some(Ok(env)) = events.next().await {
            if tx.send(env).is_err() {
                return;
            }
        }
    });
    let _ = in_place.await;
    rx
}

/// The exit status of container `id`'s next task exit as containerd reports it (its init
/// process, not an exec's), from events after this call; the receiver fails if containerd's
/// event stream ends first.
pub async fn next_task_exit(client: &Client, namespace: &str, id: &str) -> oneshot::Receiver<u32> {
    let mut events = events_from_now(client, namespace).await;
    let (tx, rx) = oneshot::channel();
    let id = id.to_string();
    tokio::spawn(async move {
        while let Some(env) = events.recv().await {
            if tx.is_closed() {
                return;
            }
            let Some(any) = env.event.filter(|_| env.topic == "/tasks/exit") else {
                continue;
            };
            let Ok(exit) = TaskExit::decode(any.value.as_slice()) else {
                continue;
            };
            if exit.container_id == id && (exit.id == id || exit.id.is_empty()) {
                let _ = tx.send(exit.exit_status);
                return;
            }
        }
    });
    rx
}

/// Waits until container `id` is gone (containerd's `/containers/delete` event, or a look every
/// half second in case the stream misses it).
pub async fn removed(client: &Client, namespace: &str, id: &str) {
    if client.get(id).await.is_err() {
        // Gone already: no subscription (whose set-up waits for an event that may not come).
        return;
    }
    let mut events = events_from_now(client, namespace).await;
    while client.get(id).await.is_ok() {
        let deleted = async {
            while let Some(env) = events.recv().await {
                let about = env
                    .event
                    .as_ref()
                    .and_then(|a| ContainerDelete::decode(a.value.as_slice()).ok());
                if env.topic == "/containers/delete" && about.is_some_and(|d| d.id == id) {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), deleted).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_share_one_channel_per_container() {
        let a = subscribe("c1");
        let tx = board().lock().unwrap().remove("c1").unwrap();
        tx.send_replace(Some(3));
        assert_eq!(*a.borrow(), Some(3));
        // The next subscriber waits for the next exit.
        assert_eq!(*subscribe("c1").borrow(), None);
    }
}
