//! Containers: the OCI runtime spec a container runs with (and, next, its lifecycle on containerd).

pub mod caps;
pub mod spec;
pub mod user;

#[cfg(test)]
mod spec_runtime_tests;
