//! Output formats: Go templates ([`template`]), Docker's `--format` (`table`, `json`, a
//! template per item; [`listing`]) and the tabwriter that aligns table columns ([`tabwriter`]).

pub mod listing;
pub mod tabwriter;
pub mod template;
