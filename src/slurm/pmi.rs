//! Slurm's PMI-2 channel into a task's container. `srun --mpi=pmi2` hands each task a socket to
//! its slurmstepd as an open fd named by `PMI_FD`; a container's process is started by
//! containerd, not by the task, so that fd never reaches it. Here the task's burrow listens on
//! 127.0.0.1 (the node's loopback, which a job's containers share by default), the container
//! gets `PMI_PORT=127.0.0.1:PORT` instead of `PMI_FD` (the PMI clients of MPICH and Slurm's
//! libpmi2 connect there when no PMI_FD is set), and the bytes are passed on both ways. Only a
//! connection from a process of this user (its uid or one of its launcher's ids) is taken.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The relay's port once it listens (the container's PMI_PORT).
static PORT: OnceLock<u16> = OnceLock::new();
/// PMI_FD is taken once per process.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Why the relay did not start.
#[derive(Debug, thiserror::Error)]
pub enum PmiError {
    #[error("PMI_FD={0} (srun --mpi=pmi2) names no open socket of this task, so its container cannot reach Slurm's PMI server; run burrow directly as the task (srun ... burrow run ...), not behind a program that closes fds")]
    NotASocket(String),
    #[error("passing srun's PMI_FD to the container: listening on 127.0.0.1: {0}")]
    Listen(std::io::Error),
}

/// The uids whose connections are taken: this user's own and the outside ids its launcher maps
/// (what a container's process is on the host).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    pub uid: u32,
    /// (first outside id, count), as /proc/PID/uid_map lists them.
    pub ranges: Vec<(u32, u32)>,
}

impl Peers {
    /// This user and the ranges of `/proc/CHILD/uid_map` of its launcher (when rootless).
    pub fn of(launcher_child: Option<i32>) -> Peers {
        let ranges = launcher_child
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/uid_map")).ok())
            .map(|m| parse_uid_map(&m))
            .unwrap_or_default();
        Peers {
            uid: nix::unistd::geteuid().as_raw(),
            ranges,
        }
    }

    fn admits(&self, uid: u32) -> bool {
        uid == self.uid
            || self
                .ranges
                .iter()
                .any(|(start, n)| uid >= *start && uid - start < *n)
    }
}

/// The outside ranges of a uid_map.
fn parse_uid_map(map: &str) -> Vec<(u32, u32)> {
    crate::containers::userns::map_lines(map)
        .into_iter()
        .filter_map(|(_, outside, n)| Some((u32::try_from(outside).ok()?, u32::try_from(n).ok()?)))
        .collect()
}

/// Starts the relay when this process is a task of a job step run with `--mpi=pmi2` (PMI_FD is
/// set) in job mode; nothing otherwise. Containers created afterwards by this process get
/// PMI_PORT in place of PMI_FD ([`rewrite`]).
pub fn start(peers: Peers) -> Result<bool, PmiError> {
    if super::Job::current().is_none() {
        return Ok(false);
    }
    let Some(fd) = std::env::var("PMI_FD").ok().filter(|v| !v.is_empty()) else {
        return Ok(false);
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(PORT.get().is_some());
    }
    let server = take_socket(&fd).ok_or_else(|| PmiError::NotASocket(fd.clone()))?;
    let listener =
        TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).map_err(PmiError::Listen)?;
    let port = listener.local_addr().map_err(PmiError::Listen)?.port();
    let _ = PORT.set(port);
    std::thread::Builder::new()
        .name("pmi-relay".into())
        .spawn(move || serve(listener, server, peers))
        .map_err(PmiError::Listen)?;
    Ok(true)
}

/// [`start`] for a foreground process of the containers of `ep` (whose launcher's ids may
/// connect too).
pub fn start_for(ep: &crate::connection::Endpoint) -> Result<bool, PmiError> {
    start(Peers::of(ep.launcher.as_ref().map(|l| l.child_pid)))
}

/// An exec's variables that pass the task's `PMI_FD` (`burrow srun --container-name`): the
/// relay started and `PMI_PORT` in its place. Nothing to do without one.
pub fn relay_exec_env(
    ep: &crate::connection::Endpoint,
    env: &mut Vec<String>,
) -> Result<(), PmiError> {
    if env.iter().any(|kv| kv.starts_with("PMI_FD=")) {
        start_for(ep)?;
        rewrite(env);
    }
    Ok(())
}

/// The inherited socket `fd` (a decimal fd number), if it is one, taken over by this process.
#[allow(unsafe_code)]
fn take_socket(fd: &str) -> Option<UnixStream> {
    let n: i32 = fd.parse().ok().filter(|n| *n > 2)?;
    let link = std::fs::read_link(format!("/proc/self/fd/{n}")).ok()?;
    if !link.to_string_lossy().starts_with("socket:") {
        return None;
    }
    // SAFETY: /proc says fd `n` is an open socket of this process. It came from slurmstepd
    // (PMI_FD); nothing else in burrow opened or owns it, and TAKEN makes this the one place
    // that takes it, once.
    let owned = unsafe { OwnedFd::from_raw_fd(n) };
    Some(UnixStream::from(owned))
}

/// Takes the first connection of this user's and passes bytes between it and the PMI server
/// until either side ends.
fn serve(listener: TcpListener, server: UnixStream, peers: Peers) {
    let client = loop {
        let Ok((conn, peer)) = listener.accept() else {
            return;
        };
        let local = listener.local_addr().ok();
        match (peer, local) {
            (std::net::SocketAddr::V4(p), Some(std::net::SocketAddr::V4(l)))
                if socket_uid(&p, &l).is_some_and(|u| peers.admits(u)) =>
            {
                break conn
            }
            _ => tracing::warn!(%peer, "PMI relay: refused a connection of another user"),
        }
    };
    drop(listener);
    let _ = client.set_nodelay(true);
    let (Ok(mut c_read), Ok(mut s_write)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = pass_on(&mut c_read, &mut s_write);
        let _ = s_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let _ = std::io::copy(&mut s_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// The client's bytes to the server, but for PMI-1's handshake over a port (`cmd=initack`),
/// which a server that gave out an fd does not expect: answered here from the task's
/// PMI_RANK/PMI_SIZE, as MPICH's process managers answer it.
fn pass_on(client: &mut TcpStream, server: &mut UnixStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let first = reader.fill_buf()?.to_vec();
    if first.starts_with(b"cmd=initack") {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "0".into());
        let size = std::env::var("PMI_SIZE").unwrap_or_else(|_| var("SLURM_NTASKS"));
        let rank = std::env::var("PMI_RANK").unwrap_or_else(|_| var("SLURM_PROCID"));
        write!(
            client,
            "cmd=initack\ncmd=set size={size}\ncmd=set rank={rank}\ncmd=set debug=0\n"
        )?;
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        server.write_all(&buf[..n])?;
    }
}

/// The uid owning the TCP socket at `peer` connected to `local` (/proc/net/tcp, this network
/// namespace's).
fn socket_uid(peer: &SocketAddrV4, local: &SocketAddrV4) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    uid_in_table(&table, peer, local)
}

fn uid_in_table(table: &str, peer: &SocketAddrV4, local: &SocketAddrV4) -> Option<u32> {
    let hex = |a: &SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(a.ip().octets()),
            a.port()
        )
    };
    let (want_local, want_remote) = (hex(peer), hex(local));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 7 && f[1] == want_local && f[2] == want_remote)
            .then(|| f[7].parse().ok())
            .flatten()
    })
}

/// `env` with `PMI_FD=N` replaced by the relay's `PMI_PORT` once it runs, else left out (an
/// fd number the container does not have, baked into a container made with `-d`, would only
/// mislead its later execs).
pub fn rewrite(env: &mut Vec<String>) {
    let had = env.len();
    env.retain(|kv| !kv.starts_with("PMI_FD="));
    if env.len() == had {
        return;
    }
    if let Some(port) = PORT.get() {
        env.retain(|kv| !kv.starts_with("PMI_PORT="));
        env.push(format!("PMI_PORT=127.0.0.1:{port}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connecting_sockets_owner_is_found() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 123\n   1: 0100007F:1F90 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1002        0 124\n";
        let peer = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0xA1B2);
        let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0x1F90);
        assert_eq!(uid_in_table(table, &peer, &local), Some(1001));
        assert_eq!(uid_in_table(table, &local, &peer), Some(1002));
    }

    #[test]
    fn peers_are_the_user_and_its_mapped_ids() {
        let p = Peers {
            uid: 1001,
            ranges: parse_uid_map(
                "         0       1001          1\n         1     100000      65536\n",
            ),
        };
        assert!(p.admits(1001) && p.admits(100000) && p.admits(165535));
        assert!(!p.admits(1002) && !p.admits(165536) && !p.admits(0));
    }

    #[test]
    fn pmi_fd_becomes_the_relays_port() {
        let mut env = vec!["PMI_RANK=1".to_string(), "PMI_FD=7".to_string()];
        let _ = PORT.set(4242);
        rewrite(&mut env);
        assert_eq!(env, ["PMI_RANK=1", "PMI_PORT=127.0.0.1:4242"]);
        let mut none = vec!["A=b".to_string()];
        rewrite(&mut none);
        assert_eq!(none, ["A=b"]);
    }
}
