//! UDP forwarding: one host socket per port, one connected socket in the child's namespace per
//! client address (a flow), closed after the flow has been idle for a while. Datagrams move in
//! batches both ways (recvmmsg, then UDP GSO or sendmmsg, see [`burrow_netstack::mmsg`]) through sockets
//! with buffers sized for a few Gbit/s, and the forwarder yields its CPU after each burst.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::PortCtx;
use burrow_netstack::mmsg::{self, let_receiver_run, Batch, Gso};

/// A flow with no datagram in either direction for this long is closed (the default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Datagrams taken off a port's host socket per call, and so at most sent on to the child in
/// one burst. Smaller than [`mmsg::BATCH`]: a burst lands in the receiver's socket at once, and
/// the receiver's default buffer (208 KiB) holds about 90 datagrams of 1400 bytes. With 32 a
/// 2 Gbit/s stream lost up to 11% there whenever the receiver waited for a CPU (the launcher
/// and the client in different sessions, as a service and a terminal are); with 8, under 3%
/// in every layout, at the same throughput up to 5 Gbit/s offered.
const INBOUND_SLOTS: usize = 8;
/// Flows one port keeps at once; datagrams from further new clients are dropped until some idle
/// out (each flow holds an fd).
const MAX_FLOWS: usize = 4096;

struct Flow {
    sock: Arc<UdpSocket>,
    /// Whether sends to the child may use UDP GSO, and replies to the client.
    gso_in: Gso,
    gso_out: Gso,
    /// Milliseconds since `epoch` of the last datagram in either direction.
    last: AtomicU64,
}

type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<Flow>>>>;

/// Serves one UDP port until it is removed. Datagrams are taken off the host socket in batches
/// (recvmmsg) and each client's run of them goes to its flow in one sendmmsg.
pub(crate) async fn serve(host: Arc<UdpSocket>, mut ctx: PortCtx) {
    mmsg::size_buffers(&host);
    let epoch = Instant::now();
    let flows: Flows = Arc::default();
    let mut batch = Batch::with_slots(INBOUND_SLOTS);
    loop {
        tokio::select! {
            _ = ctx.stopped() => break,
            r = host.readable() => if let Err(e) = r {
                tracing::debug!(?e, "udp receive failed on a published port");
                continue;
            },
        }
        let n = match host.try_io(Interest::READABLE, || batch.recv(host.as_raw_fd())) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!(?e, "udp receive failed on a published port");
                continue;
            }
        };
        let mut i = 0;
        while i < n {
            let client = batch.from(i);
            let end = (i + 1..n).find(|&j| batch.from(j) != client).unwrap_or(n);
            let run = i..end;
            i = end;
            let Some(client) = client else { continue };
            let Some(flow) = flow_for(&host, client, &ctx, &flows, epoch).await else {
                continue;
            };
            flow.last
                .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            let datagrams: Vec<&[u8]> = run.map(|k| batch.datagram(k)).collect();
            send_all(&flow.sock, &datagrams, None, client, &flow.gso_in).await;
        }
    }
}

/// The flow of `client`, opened when it has none (None: the datagrams are dropped).
async fn flow_for(
    host: &Arc<UdpSocket>,
    client: SocketAddr,
    ctx: &PortCtx,
    flows: &Flows,
    epoch: Instant,
) -> Option<Arc<Flow>> {
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
    match existing {
        Some(f) => Some(f),
        None if flows.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_FLOWS => {
            tracing::debug!(%client, "too many udp flows on this port; dropping the datagram");
            None
        }
        None => match open_flow(host, client, ctx, flows, epoch).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::debug!(?e, %client, target = %ctx.target, "cannot open a udp flow to the child; dropping the datagram");
                None
            }
        },
    }
}

/// Sends `datagrams` on `sock` (to `to`, or to its peer when connected), waiting only while its
/// send buffer is full (a fresh socket is not yet known to be writable, so a plain try would drop
/// the first datagram), then yields (see [`let_receiver_run`]). A datagram the kernel refuses
/// (an ICMP error pending on the socket) is dropped. `client` names the flow in logs.
async fn send_all(
    sock: &UdpSocket,
    datagrams: &[&[u8]],
    to: Option<SocketAddr>,
    client: SocketAddr,
    gso: &Gso,
) {
    let mut done = 0;
    while done < datagrams.len() {
        if let Err(e) = sock.writable().await {
            tracing::debug!(?e, %client, "udp send failed");
            return;
        }
        match sock.try_io(Interest::WRITABLE, || {
            mmsg::send_to(sock.as_raw_fd(), &datagrams[done..], to, gso)
        }) {
            Ok(n) => done += n.max(1),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                tracing::debug!(?e, %client, "udp send failed");
                done += 1;
            }
        }
    }
    let_receiver_run();
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
    mmsg::size_buffers(&std_sock);
    std_sock.connect(ctx.target)?;
    let sock = Arc::new(UdpSocket::from_std(std_sock)?);
    let flow = Arc::new(Flow {
        sock,
        gso_in: Gso::new(),
        gso_out: Gso::new(),
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
    let mut batch = Batch::new();
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
            r = flow.sock.readable() => {
                if let Err(e) = r {
                    tracing::debug!(?e, %client, "udp flow receive failed");
                    continue;
                }
                let sock = &flow.sock;
                match sock.try_io(Interest::READABLE, || batch.recv(sock.as_raw_fd())) {
                    Ok(n) => {
                        flow.last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                        let replies: Vec<&[u8]> = (0..n).map(|i| batch.datagram(i)).collect();
                        send_all(&host, &replies, Some(client), client, &flow.gso_out).await;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    // ECONNREFUSED from an ICMP port-unreachable: nothing listens yet; keep the
                    // flow.
                    Err(e) => tracing::debug!(?e, %client, "udp flow receive failed"),
                }
            }
        }
    }
    let mut map = flows.lock().unwrap_or_else(|e| e.into_inner());
    if map.get(&client).is_some_and(|f| Arc::ptr_eq(f, &flow)) {
        map.remove(&client);
    }
}
