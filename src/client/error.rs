//! The one error of containerd calls: which call failed on what, with containerd's status, and
//! the ways a call can fail before it is sent (no connection, a name that is not metadata).

use std::fmt;
use std::path::PathBuf;

use tonic::{Code, Status};

/// A containerd call, or the connection it needed, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// containerd answered the call `op` on `target` with an error.
    #[error("containerd {op} {target}: {}{}", .status.message(), space_hint(.status.message()))]
    Rpc {
        /// The call, as messages name it ("task start", "content read").
        op: &'static str,
        /// What it was about, as messages name it (a digest, a name, "for ID").
        target: String,
        status: Status,
    },
    #[error("cannot connect to containerd at {socket}: {reason}{hint}")]
    Unreachable {
        socket: PathBuf,
        reason: String,
        /// What to check, for the kind of containerd this is (starts with a space).
        hint: String,
    },
    #[error("containerd namespace {0:?} is not a valid gRPC metadata value")]
    Namespace(String),
    #[error("containerd lease {0:?} is not a valid gRPC metadata value")]
    Lease(String),
}

impl Error {
    /// A failed call.
    pub fn rpc(op: &'static str, target: impl fmt::Display, status: Status) -> Error {
        Error::Rpc {
            op,
            target: target.to_string(),
            status,
        }
    }

    /// containerd's status code, for a call containerd answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// containerd's message, for a call containerd answered.
    pub fn message(&self) -> Option<&str> {
        match self {
            Error::Rpc { status, .. } => Some(status.message()),
            _ => None,
        }
    }

    /// containerd said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }

    /// containerd said the object exists already.
    pub fn is_already_exists(&self) -> bool {
        self.code() == Some(Code::AlreadyExists)
    }
}

/// What to do when containerd's disk is full.
fn space_hint(message: &str) -> &'static str {
    if message.contains("no space left on device") {
        " (containerd's disk is full: free space there, e.g. with `burrow image prune -a`, then run the command again; what was written so far is kept for it)"
    } else {
        ""
    }
}

/// Names the call behind a tonic result: `client.tasks().start(req).await.op("task start", id)?`.
/// The target is formatted only when the call failed.
pub trait RpcResult<T> {
    /// The result, with a failure as [`Error::Rpc`].
    fn op(self, op: &'static str, target: impl fmt::Display) -> Result<T, Error>;

    /// As [`RpcResult::op`], but `None` when containerd says the object does not exist.
    fn optional_op(self, op: &'static str, target: impl fmt::Display) -> Result<Option<T>, Error>;
}

impl<T> RpcResult<T> for Result<T, Status> {
    fn op(self, op: &'static str, target: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|status| Error::rpc(op, target, status))
    }

    fn optional_op(self, op: &'static str, target: impl fmt::Display) -> Result<Option<T>, Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(Error::rpc(op, target, status)),
        }
    }
}
