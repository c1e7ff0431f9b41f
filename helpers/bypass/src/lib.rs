//! burrow-bypass: hands containers host sockets in place of their own for connections to the
//! outside, through seccomp user notification (the approach of bypass4netns).

pub mod handler;
pub mod notify;
pub mod policy;
pub mod proto;
pub mod service;
