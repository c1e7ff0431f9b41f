//! burrow-seccomp: the default seccomp profile containers get (Docker-compatible JSON shipped as
//! `seccomp/default.json`) and its conversion to an OCI `LinuxSeccomp` for one container.

pub mod convert;
pub mod profile;

pub use convert::{to_oci, Context};
pub use profile::{default_profile, Profile, ProfileError, DEFAULT_PROFILE_JSON};
