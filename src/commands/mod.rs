//! One module per `burrow` command, each with an `Args` struct and a `run()`.

pub mod completion;
pub mod version;
