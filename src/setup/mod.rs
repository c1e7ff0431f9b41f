//! The per-user rootless containerd: its checks, files, service, launcher child and (un)install.
//!
//! Dependencies go one way, from the leaves up:
//! - [`systemd`], [`spawn`], [`programs`]: `systemctl --user`, child processes, burrow's own
//!   programs on disk (leaves); [`change`]: what an operation changed, one line each.
//! - [`files`]: the files the setup writes, each write or removal a [`change::Change`].
//! - [`layout`] (every path of one user's setup) <- [`render`] (the files rendered from it).
//! - [`check`]: the prerequisites and what install would choose (layout, programs, systemd).
//! - [`supervise`] (the supervised service's control) <- [`supervisor`] (its restart loop).
//! - [`service`]: the installed service whichever way it runs (layout, systemd, supervise).
//! - [`install`], [`uninstall`], [`status`]: the tool's operations, over all of the above.
//! - [`child`], [`nsenter`], [`logs`]: inside the launcher, inside its namespaces, and its log.

pub mod change;
pub mod check;
pub mod child;
pub mod files;
pub mod install;
pub mod layout;
pub mod logs;
pub mod nsenter;
mod nsparent;
pub mod programs;
pub mod render;
pub mod service;
pub mod spawn;
pub mod status;
pub mod supervise;
pub mod supervisor;
pub mod systemd;
pub mod uninstall;
pub mod usertoml;
