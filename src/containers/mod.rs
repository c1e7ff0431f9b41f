//! Containers: the OCI runtime spec a container runs with and its lifecycle on containerd.

pub mod bypass;
pub mod caps;
pub mod copy;
pub mod image;
pub mod lifecycle;
pub mod logdriver;
pub mod logfollow;
pub mod spec;
pub mod store;
pub mod user;

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod spec_runtime_tests;
