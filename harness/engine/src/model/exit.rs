//! Exit statuses of the `sockspec` command, from the results crate: tools
//! that read reports depend on them without the engine.

pub use sockspec_results::exit::*;
