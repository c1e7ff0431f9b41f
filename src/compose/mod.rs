//! `burrow compose`: Compose files loaded into a project (read, interpolate, merge, extend,
//! check keys, deserialise into the `compose_spec` model, normalise) and run on containerd by
//! the engine ([`engine`]), named and labelled as Docker Compose does.
//!
//! - [`project`]: the contract with the commands: [`project::LoadOptions`], [`project::Project`].
//! - [`error`]: [`error::ComposeError`], naming the file, the key path and the line where known.
//! - [`engine`]: services to containers, networks and volumes; up, down and the rest.
//! - `files`: which files a project reads and how each becomes YAML.
//! - `envfile`: `.env` and `env_file:` files.
//! - `interpolate`: `${VAR}` and friends in every string value.
//! - `merge`: several files into one, as the Compose specification's merge rules say.
//! - `extends`: `extends:` (same file and `file:`).
//! - `keys`: the specification's known keys per level; unknown ones become warnings.
//! - `normalize`: absolute paths, env_file contents, the project name.
//! - `references`: networks, volumes, secrets and configs a service uses must be declared.
//! - `profiles`: which services are active, in dependency order.

pub mod engine;
pub mod error;
pub mod project;

mod envfile;
mod extends;
mod files;
mod interpolate;
mod keys;
mod merge;
mod normalize;
mod profiles;
mod references;

pub use error::ComposeError;
pub use project::{LoadOptions, Project};
