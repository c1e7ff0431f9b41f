//! What stops a build: Ctrl-C (`burrow build`), or a token its caller cancels (the Docker
//! API's `/build` when the client goes away); and whether a step container exists now, so
//! that the stop is the step's to carry out (it kills the command and removes the container).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// How a build is stopped; clones share the token and the step flag.
#[derive(Debug, Clone)]
pub struct Cancel {
    /// None: Ctrl-C stops the build.
    token: Option<Arc<watch::Sender<bool>>>,
    in_step: Arc<AtomicBool>,
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel::ctrl_c()
    }
}

impl Cancel {
    /// Ctrl-C (SIGINT) stops the build.
    pub fn ctrl_c() -> Cancel {
        Cancel {
            token: None,
            in_step: Arc::new(AtomicBool::new(false)),
        }
    }

    /// [`Cancel::cancel`] stops the build (signals are left alone).
    pub fn token() -> Cancel {
        Cancel {
            token: Some(Arc::new(watch::channel(false).0)),
            in_step: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Stops a build made with [`Cancel::token`].
    pub fn cancel(&self) {
        if let Some(t) = &self.token {
            t.send_replace(true);
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.token.as_ref().is_some_and(|t| *t.borrow())
    }

    /// Returns when the build is to stop.
    pub async fn stopped(&self) {
        match &self.token {
            None => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Some(t) => {
                let mut rx = t.subscribe();
                let _ = rx.wait_for(|c| *c).await;
            }
        }
    }

    /// Marks whether a step container exists now.
    pub fn set_in_step(&self, on: bool) {
        self.in_step.store(on, Ordering::SeqCst);
    }

    /// Whether a step container exists now.
    pub fn in_step(&self) -> bool {
        self.in_step.load(Ordering::SeqCst)
    }
}

/// Cancels its token when dropped (the API's response body going away with its client),
/// unless disarmed once the build is over.
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    pub fn new(c: Cancel) -> CancelOnDrop {
        CancelOnDrop(Some(c))
    }

    /// The build is over: nothing to stop.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            tracing::debug!("the build's caller went away: stopping the build");
            c.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_stops_its_clones() {
        let c = Cancel::token();
        let other = c.clone();
        assert!(!other.is_cancelled());
        CancelOnDrop::new(c.clone()).disarm();
        assert!(!other.is_cancelled());
        drop(CancelOnDrop::new(c));
        assert!(other.is_cancelled());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(other.stopped());
        other.set_in_step(true);
        assert!(other.in_step());
    }
}
