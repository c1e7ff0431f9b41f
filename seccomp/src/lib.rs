//! burrow-seccomp: the default seccomp profile containers get (Docker-compatible JSON shipped as
//! `seccomp/default.json`), its conversion to an OCI `LinuxSeccomp` for one container, and the
//! socket-bypass variant that sends the socket calls it handles to burrow-bypass.

pub mod bypass;
pub mod convert;
pub mod profile;

pub use convert::{to_oci, Context};
pub use profile::{default_profile, Profile, ProfileError, DEFAULT_PROFILE_JSON};
