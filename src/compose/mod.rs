//! Compose files: loading (read, interpolate, merge, extend, check keys, deserialise into the
//! `compose_spec` model, normalise) and the project a compose command works on.
//!
//! - [`project`]: the contract with the commands: [`project::LoadOptions`], [`project::Project`].
//! - [`error`]: [`error::ComposeError`], naming the file, the key path and the line where known.
//! - `files`: which files a project reads and how each becomes YAML.
//! - `envfile`: `.env` and `env_file:` files.
//! - `interpolate`: `${VAR}` and friends in every string value.
//! - `merge`: several files into one, as the Compose specification's merge rules say.
//! - `extends`: `extends:` (same file and `file:`).
//! - `keys`: the specification's known keys per level; unknown ones become warnings.
//! - `normalize`: absolute paths, env_file contents, the project name.
//! - `references`: networks, volumes, secrets and configs a service uses must be declared.
//! - `profiles`: which services are active, in dependency order.

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
