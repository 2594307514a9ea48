//! Which side of the protocol the program under test plays.

use serde::{Deserialize, Serialize};

/// Which side of the protocol the program under test plays.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The target binds and waits; the harness connects.
    Server,
    /// The target connects; the harness listens and feeds its standard input.
    Client,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}
