//! burrow's library: everything under the `burrow` command line. The ways in (the CLI's
//! commands, and later compose, the Docker API and Slurm jobs) build typed requests and call
//! these modules; nothing here parses a command line or prints for a command.
//!
//! - [`connection`]: which containerd to talk to (rootless or rootful), its paths and namespaces.
//! - [`client`]: the one containerd client (namespaced requests, a client per service, one error).
//! - [`containers`]: the container records, specs, lifecycle, logs, copies and volumes.
//! - [`devices`]: host device nodes, device cgroup rules, CDI devices and GPUs for containers.
//! - [`images`]: references, registries, the content store, pulls, pushes, archives, and the
//!   image a container runs (resolved for this platform, with its users and groups).
//! - [`network`]: CNI networks, published ports and the OCI hook that attaches containers.
//! - [`session`]: an attached task or exec: stdio, terminal, resize, detach keys, signals.
//! - [`setup`]: `burrow setup`: checks, the per-user layout, install, the services.
//! - [`selfexec`]: the helpers burrow, containerd and runc run the burrow binary as.
//! - [`config`]: burrow.toml, the user's and the site's defaults.
//! - [`fsutil`]: private directories and files replaced whole.
//! - [`errors`]: an error and its causes as one line.
//! - [`compose`]: Compose files loaded into the Compose specification's model (the project).
//! - [`dockerapi`]: the Docker Engine API on a unix socket (`burrow system service`).
//! - [`slurm`]: Slurm jobs: the job's own containerd on node-local disk, ended with the job.
//! - [`format`]: Go templates with Docker's functions, `--format` tables and JSON, the tabwriter.

pub mod build;
pub mod client;
pub mod compose;
pub mod config;
pub mod connection;
pub mod containers;
pub mod devices;
pub mod dockerapi;
pub mod dockerfile;
pub mod errors;
pub mod format;
pub mod fsutil;
pub mod images;
pub mod network;
pub mod selfexec;
pub mod session;
pub mod setup;
pub mod slurm;
