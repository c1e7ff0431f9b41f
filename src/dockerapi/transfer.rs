//! What the image endpoints share: the content store of the service's containerd, and a pull's
//! or push's progress as Docker's JSON lines.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use crate::containers::Ctx;
use crate::images::progress::Event;
use crate::images::store::Store;

/// The content store of the containerd the service drives.
pub fn store(ctx: &Ctx) -> Store {
    Store::for_endpoint(ctx.client.containerd().clone(), &ctx.ep)
}

/// Which way a transfer goes, for its progress lines' words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Pull,
    Push,
}

/// The JSON lines of a pull's or push's progress events, "Downloading" / "Pushing" at most
/// every 512 KiB a layer.
pub fn progress_lines(
    tx: tokio::sync::mpsc::UnboundedSender<hyper::body::Bytes>,
    way: Transfer,
) -> impl Fn(Event) + Send + Sync {
    let (starting, moving) = match way {
        Transfer::Pull => ("Pulling fs layer", "Downloading"),
        Transfer::Push => ("Preparing", "Pushing"),
    };
    let layers: Mutex<HashMap<String, (u64, u64, u64)>> = Mutex::new(HashMap::new());
    move |e: Event| {
        let line = match e {
            Event::Line(s) => Some(json!({ "status": s })),
            Event::Start { id, total, at } => {
                if let Ok(mut l) = layers.lock() {
                    l.insert(id.clone(), (at, total, at));
                }
                Some(json!({ "status": starting, "progressDetail": {}, "id": id }))
            }
            Event::Advance { id, n } => {
                let mut l = layers.lock().ok();
                let entry = l.as_mut().and_then(|l| l.get_mut(&id));
                entry.and_then(|(current, total, shown)| {
                    *current += n;
                    (*current - *shown >= 512 * 1024 || *current >= *total).then(|| {
                        *shown = *current;
                        json!({
                            "status": moving,
                            "progressDetail": { "current": *current, "total": *total },
                            "id": id,
                        })
                    })
                })
            }
            Event::Done { id, status } => {
                Some(json!({ "status": status, "progressDetail": {}, "id": id }))
            }
        };
        if let Some(v) = line {
            let _ = tx.send(format!("{v}\r\n").into());
        }
    }
}
