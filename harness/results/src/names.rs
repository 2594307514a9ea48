//! The names a conversation gives its stream connections (`c1`, `c2`...)
//! and datagram sockets (`u1`, `u2`...), as its transcript records them.

use std::fmt;

/// A connection of the conversation, by number: `c1`, `c2`...
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Conn(pub u8);

impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A datagram socket of the conversation, by number: `u1`, `u2`...
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Sock(pub u8);

impl fmt::Display for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u{}", self.0)
    }
}
