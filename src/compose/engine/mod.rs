//! The Compose engine: images of `build:` services built ([`build`]), services become container requests ([`convert`]), named and labelled
//! as Docker Compose does ([`naming`]); the project's state is read back from containerd's
//! labels alone ([`state`], no state file and no global lock, so projects run side by side);
//! [`registry`] pulls and pushes the services' images, [`up`] converges it, [`down`] removes what `up` made, [`logs`] prints prefixed output.

pub mod build;
pub mod convert;
pub mod deps;
pub mod down;
pub mod hooks;
pub mod logs;
pub mod mounts;
pub mod naming;
pub mod registry;
pub mod resources;
pub mod service;
pub mod state;
pub mod up;
pub mod watch;

pub use state::ProjectState;
