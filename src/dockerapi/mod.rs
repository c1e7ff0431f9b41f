//! The Docker Engine API on a unix socket (`burrow system service`): the docker CLI, the
//! Docker SDKs and other clients drive burrow unchanged. Every endpoint calls the same library
//! functions the CLI does; what is not implemented answers 501 naming the endpoint.
//!
//! - [`listen`]: the unix socket (private directory and mode), TCP when asked, socket activation.
//! - [`server`]: connections (one task each on the worker threads), the idle timeout.
//! - [`router`]: API versions in paths, dispatch by method and path.
//! - [`lookup`]: the container a request names, or Docker's 404.
//! - [`call`]: one request as the endpoints see it, and the 501 for what is not implemented.
//! - [`http`]: bodies, JSON responses, query strings, Docker's filters.
//! - [`error`]: Docker's error bodies (`{"message": ...}`) and status codes.
//! - [`auth`]: `X-Registry-Auth` and `POST /auth` (docker login).
//! - [`hijack`]: Docker's hijacked connections (HTTP upgrade) for attach and exec start.
//! - [`system`], [`containers`], [`create_body`], [`logs`], [`attach`], [`exec`], [`images`],
//!   [`image_io`], [`volumes`], [`networks`]: the endpoints ([`transfer`]: the image
//!   endpoints' store and progress lines).
//! - [`build`] (`/build` through burrow's builder, `/build/prune`), [`build_options`] (its
//!   query read into the builder's options).
//! - [`archive`] (docker cp, export, changes), [`stats`] (top, stats), [`events`], [`space`]
//!   (system df, the prunes), [`commit`] (commit, update): the operations endpoints.

pub mod archive;
pub mod attach;
pub mod auth;
pub mod build;
pub mod build_options;
pub mod call;
pub mod commit;
pub mod containers;
pub mod create_body;
pub mod error;
pub mod events;
pub mod exec;
pub mod hijack;
pub mod http;
pub mod image_io;
pub mod images;
pub mod listen;
pub mod logs;
pub mod lookup;
pub mod networks;
pub mod router;
pub mod server;
pub mod space;
pub mod stats;
pub mod system;
pub mod transfer;
pub mod volumes;

pub use listen::{Listen, Listener, ServeError};
pub use server::{choose, default_socket, serve, Chosen, ServeOptions};

/// The highest API version burrow implements (reported by /version and the API-Version header).
pub const API_VERSION: &str = "1.44";
/// The lowest API version clients may ask for.
pub const MIN_API_VERSION: &str = "1.24";

/// The library context as the connections share it (across the runtime's worker threads).
pub type SharedCtx = std::sync::Arc<crate::containers::Ctx>;
