//! How much a requirement weighs, as the protocol reference says.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much a requirement weighs, as in the protocol reference.
/// Written by its lowercase name, as in the protocol reference.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// An observation, never a verdict.
    Info,
    /// A miss is reported as WARN and does not fail the run.
    Should,
    /// A miss is a FAIL.
    Must,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::Info => "info",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_uppercase())
    }
}
