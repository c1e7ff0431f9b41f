//! UDP forwarding: one host socket per port, one connected socket in the child's namespace per
//! client address (a flow), closed after the flow has been idle for a while.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::PortCtx;

/// A flow with no datagram in either direction for this long is closed (the default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The buffer one read takes (the largest UDP payload).
const BUF: usize = 65536;
/// Flows one port keeps at once; datagrams from further new clients are dropped until some idle
/// out (each flow holds an fd).
const MAX_FLOWS: usize = 4096;

struct Flow {
    sock: Arc<UdpSocket>,
    /// Milliseconds since `epoch` of the last datagram in either direction.
    last: AtomicU64,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

/// Serves one UDP port until it is removed.
pub(crate) async fn serve(host: Arc<UdpSocket>, mut ctx: PortCtx) {
    let epoch = Instant::now();
    let flows: Flows = Arc::default();
    let mut buf = vec![0u8; BUF];
    loop {
        let (n, client) = tokio::select! {
            _ = ctx.stopped() => break,
            r = host.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(?e, "udp receive failed on a published port");
                    continue;
                }
            },
        };
        let now = epoch.elapsed().as_millis() as u64;
        let idle_ms = ctx.udp_idle_timeout.as_millis() as u64;
        let existing = {
            let mut map = flows.lock().unwrap_or_else(|e| e.into_inner());
            // A flow past its idle time is never reused, even if its task has not run yet.
            if map
                .get(&client)
                .is_some_and(|f| now.saturating_sub(f.last.load(Ordering::Relaxed)) >= idle_ms)
            {
                map.remove(&client);
            }
            map.get(&client).cloned()
        };
        let flow = match existing {
            Some(f) => f,
            None if flows.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_FLOWS => {
                tracing::debug!(%client, "too many udp flows on this port; dropping the datagram");
                continue;
            }
            None => match open_flow(&host, client, &ctx, &flows, epoch).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(?e, %client, target = %ctx.target, "cannot open a udp flow to the child; dropping the datagram");
                    continue;
                }
            },
        };
        flow.last
            .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        // Waits only while the flow's send buffer is full (a fresh socket is not yet known to
        // be writable, so try_send would drop the first datagram).
        if let Err(e) = flow.sock.send(&buf[..n]).await {
            tracing::debug!(?e, %client, "udp send to the child failed");
        }
    }
}

async fn open_flow(
    host: &Arc<UdpSocket>,
    client: SocketAddr,
    ctx: &PortCtx,
    flows: &Flows,
    epoch: Instant,
) -> std::io::Result<Arc<Flow>> {
    let fd = ctx.child_socket(libc::SOCK_DGRAM).await?;
    let std_sock = std::net::UdpSocket::from(fd);
    std_sock.connect(ctx.target)?;
    let sock = Arc::new(UdpSocket::from_std(std_sock)?);
    let flow = Arc::new(Flow {
        sock,
        last: AtomicU64::new(epoch.elapsed().as_millis() as u64),
    });
    flows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(client, flow.clone());
    tokio::spawn(flow_task(
        host.clone(),
        client,
        flow.clone(),
        ctx.clone(),
        flows.clone(),
        epoch,
    ));
    Ok(flow)
}

/// Carries replies from the child back to `client` until the flow idles out or the port goes.
async fn flow_task(
    host: Arc<UdpSocket>,
    client: SocketAddr,
    flow: Arc<Flow>,
    mut ctx: PortCtx,
    flows: Flows,
    epoch: Instant,
) {
    let mut buf = vec![0u8; BUF];
    let idle_timeout = ctx.udp_idle_timeout;
    loop {
        let idle_for = Duration::from_millis(
            // Saturating: the receive loop may store a time newer than the `now` taken here.
            (epoch.elapsed().as_millis() as u64).saturating_sub(flow.last.load(Ordering::Relaxed)),
        );
        if idle_for >= idle_timeout {
            break;
        }
        tokio::select! {
            _ = ctx.stopped() => break,
            _ = tokio::time::sleep(idle_timeout - idle_for) => {}
            r = flow.sock.recv(&mut buf) => match r {
                Ok(n) => {
                    flow.last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                    let _ = host.send_to(&buf[..n], client).await;
                }
                // ECONNREFUSED from an ICMP port-unreachable: nothing listens yet; keep the flow.
                Err(e) => tracing::debug!(?e, %client, "udp flow receive failed"),
            },
        }
    }
    let mut map = flows.lock().unwrap_or_else(|e| e.into_inner());
    if map.get(&client).is_some_and(|f| Arc::ptr_eq(f, &flow)) {
        map.remove(&client);
    }
}
