//! The names a conversation gives its stream connections (`c1`, `c2`...):
//! a leaf, so the link that holds a connection and the writer that sends
//! on it can both speak of it without depending on each other.

use std::fmt;

/// A connection of the conversation, by number: `c1`, `c2`...
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Conn(pub u8);

impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}
