//! Containers: the OCI runtime spec a container runs with and its lifecycle on containerd.

pub mod asked;
pub mod bypass;
pub mod caps;
pub mod capture;
pub mod commit;
pub mod commit_config;
pub mod context;
pub mod copy;
pub mod create;
pub mod defaults;
pub mod diff;
pub mod diskusage;
pub mod endpoints;
pub mod event_history;
pub mod events;
pub mod exec;
pub mod execs;
pub mod exitmonitor;
pub mod exits;
pub mod health;
pub mod held;
pub mod inspect;
pub mod ipc;
pub mod journald;
pub mod labels;
pub mod lifecycle;
pub mod limits;
pub mod links;
pub mod listing;
pub mod logdriver;
pub mod logfollow;
pub mod logopts;
pub mod logquery;
pub mod mounts;
pub mod networks;
pub mod notify;
pub mod ops;
pub mod parked;
pub mod platform;
pub mod prunefilter;
pub mod record;
pub mod request;
pub mod runtime;
pub mod shared;
pub mod spec;
pub mod start;
pub mod stats;
pub mod status;
pub mod store;
pub mod stored_images;
pub mod sysinfo;
pub mod top;
pub mod user;
pub mod userns;
pub mod utsname;
pub mod values;
pub mod volumes;

pub use context::Ctx;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod spec_runtime_tests;
