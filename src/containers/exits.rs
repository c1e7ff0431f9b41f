//! The next exit of containers' tasks as one long-lived process (the Docker API's service) sees
//! them: a waiter started with each task it starts publishes the exit status, so a `wait` asked
//! before the start gets it even when the task ended (and an auto-removed container went)
//! before anyone looked.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tokio::sync::watch;

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
