//! One module per `burrow` command, each with an `Args` struct and a `run()`.

pub mod completion;
pub mod container;
pub mod history;
pub mod image;
pub mod image_prune;
pub mod images;
pub mod info;
pub mod internal;
pub mod load;
pub mod login;
pub mod network;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod save;
pub mod setup;
pub mod tag;
pub mod version;
pub mod volume;

/// `--format`: true for "json", false when absent or "table"; anything else is refused.
pub fn wants_json(format: Option<&str>) -> anyhow::Result<bool> {
    match format {
        None | Some("table") => Ok(false),
        Some("json") | Some("{{json .}}") => Ok(true),
        Some(other) => anyhow::bail!("unsupported --format {other:?}: use \"json\" or \"table\""),
    }
}
