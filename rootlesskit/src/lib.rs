//! burrow-rootlesskit: runs a command in new user, mount and network namespaces, the way
//! RootlessKit does, with RootlessKit's flags, state directory and v1 REST API.

pub mod api;
pub mod cidr;
pub mod goflags;
pub mod launcher;
pub mod port;
pub mod subid;
