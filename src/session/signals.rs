//! The signals the CLI receives while attached: passed on to the container (Docker's
//! `--sig-proxy`), or, with a terminal, taken as the terminal going away (detach).

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::Target;
use crate::containers::lifecycle::LifecycleError;

/// A set of caught signals, each with the number it stands for. Installed before the process
/// starts, so no early signal is missed.
#[derive(Debug)]
pub struct Signals {
    streams: Vec<(Signal, u32)>,
}

impl Signals {
    /// What an attached CLI passes on to its container: INT, TERM, HUP, QUIT, USR1, USR2.
    pub fn proxied() -> Option<Signals> {
        Signals::install(&[
            (SignalKind::interrupt(), 2),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
            (SignalKind::quit(), 3),
            (SignalKind::user_defined1(), 10),
            (SignalKind::user_defined2(), 12),
        ])
    }

    /// With a terminal: TERM and HUP (the terminal went away) detach the CLI instead of killing
    /// it, so the container keeps its output logged and `--rm` still happens (Docker's daemon
    /// would do both).
    pub fn hangup() -> Option<Signals> {
        Signals::install(&[(SignalKind::terminate(), 15), (SignalKind::hangup(), 1)])
    }

    fn install(kinds: &[(SignalKind, u32)]) -> Option<Signals> {
        let mut streams = Vec::new();
        for &(k, n) in kinds {
            streams.push((signal(k).ok()?, n));
        }
        Some(Signals { streams })
    }

    /// The next signal received.
    pub async fn next(&mut self) -> u32 {
        let mut futs: Vec<_> = self
            .streams
            .iter_mut()
            .map(|(s, n)| {
                let n = *n;
                Box::pin(async move {
                    s.recv().await;
                    n
                })
            })
            .collect();
        // The first to arrive (a small select_all, to avoid a dependency).
        std::future::poll_fn(move |cx| {
            for f in futs.iter_mut() {
                if let std::task::Poll::Ready(n) = std::future::Future::poll(f.as_mut(), cx) {
                    return std::task::Poll::Ready(n);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// The next of `signals`, or never without any.
pub(crate) async fn next_of(signals: Option<&mut Signals>) -> u32 {
    match signals {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Waits for the process's exit, passing the signals `proxy` catches on to the container's
/// task, so `kill CLI` stops the container and `--rm` still cleans up.
pub async fn wait_proxying(target: &Target, proxy: Option<Signals>) -> Result<u32, LifecycleError> {
    let wait = target.wait();
    tokio::pin!(wait);
    let Some(mut proxy) = proxy else {
        return wait.await;
    };
    loop {
        let sig = tokio::select! {
            r = &mut wait => return r,
            n = proxy.next() => n,
        };
        target.signal_task(sig).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_the_next() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // USR2 only: the test harness does not send it.
            let mut s = Signals::install(&[(SignalKind::user_defined2(), 12)]).unwrap();
            nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR2).unwrap();
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.next()).await;
            assert_eq!(n.unwrap(), 12);
        });
    }
}
