//! What runc sends to the seccomp listener socket: the container's state as JSON and the listener fd.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde::Deserialize;

/// runc's `ContainerProcessState` (OCI runtime spec, "seccomp listener").
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessState {
    /// What each passed fd is, in order ("seccompFd").
    #[serde(default)]
    pub fds: Vec<String>,
    /// The container's init pid.
    #[serde(default)]
    pub pid: i64,
    /// The spec's listenerMetadata.
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub state: Option<State>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct State {
    #[serde(default)]
    pub id: String,
}

/// Why a connection from runc was not usable.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("reading the container state: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the container state: {0}")]
    Recv(#[from] nix::Error),
    #[error("the container state is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no seccompFd among the passed fds ({0:?})")]
    NoListener(Vec<String>),
    /// A connection that sent nothing: `burrow run --bypass` checking that the service is up.
    #[error("an empty connection (a liveness check)")]
    Empty,
}

/// Reads the state and the fds runc passes, then returns the state and the seccomp listener fd.
pub fn receive(mut conn: UnixStream) -> Result<(ProcessState, OwnedFd), ProtoError> {
    let mut body = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // The fds come with the first bytes; the rest of the JSON may follow in more reads.
    {
        let mut cmsg = nix::cmsg_space!([RawFd; 8]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    fds.push(owned(fd));
                }
            }
        }
        let n = msg.bytes;
        body.extend_from_slice(&buf[..n]);
    }
    conn.read_to_end(&mut body)?;
    if body.is_empty() && fds.is_empty() {
        return Err(ProtoError::Empty);
    }
    let state: ProcessState = serde_json::from_slice(&body)?;
    let idx = state
        .fds
        .iter()
        .position(|f| f == "seccompFd")
        .ok_or_else(|| ProtoError::NoListener(state.fds.clone()))?;
    if idx >= fds.len() {
        return Err(ProtoError::NoListener(state.fds.clone()));
    }
    let listener = fds.swap_remove(idx);
    Ok((state, listener))
}

fn owned(fd: RawFd) -> OwnedFd {
    crate::notify::own_fd(fd)
}
