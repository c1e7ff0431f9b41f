//! burrow-bypass: hands containers host sockets in place of their own, through seccomp user
//! notification (the approach of bypass4netns): connects to the outside, and binds of published
//! ports; a bypassed socket's names are answered as the container would see them.

pub mod bind;
pub mod caller;
pub mod connect;
pub mod container;
pub mod fdstore;
pub mod handler;
pub mod names;
pub mod netinfo;
pub mod notify;
pub mod policy;
pub mod proto;
pub mod relay;
pub mod service;
mod sock;
