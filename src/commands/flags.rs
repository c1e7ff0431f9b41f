//! Docker's (Go's) flag forms on clap: boolean flags that also take `=true`/`=false` (the one
//! implementation lives in burrow-rootlesskit, whose RootlessKit flags need the same forms).

pub use burrow_rootlesskit::goflags::go_bool;
