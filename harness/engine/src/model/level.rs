//! How much a requirement weighs, as the protocol reference says: a leaf,
//! so checks, steps and verdicts can all speak of it. The type is the
//! results crate's, which the reports are written in.

pub use sockspec_results::Level;
