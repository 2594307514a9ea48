//! The serialized lines of a check's transcript: what actually happened
//! during a check, with times. Every write and its piece of the cut, every
//! read, every end of stream, reset and kill, and every datagram sent or
//! received, one line each with its length and its peer's address. A long
//! transcript keeps its first and last entries and counts the rest where
//! they were ([`Omitted`]).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::names::{Conn, Sock};

/// One thing that happened. An accepted connection carries the client's
/// address, which shows the loopback it chose (127.0.0.1 or ::1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    Connected {
        local_port: u16,
    },
    Accepted {
        peer: SocketAddr,
    },
    Wrote {
        len: usize,
        head: String,
    },
    Read {
        len: usize,
        head: String,
    },
    Closed,
    ResetByPeer,
    ShutdownWrite,
    SentReset,
    /// A datagram the harness sent, whole.
    SentDatagram {
        len: usize,
        head: String,
        to: SocketAddr,
    },
    /// A datagram the harness received: `len` is its real length, as the
    /// kernel reported it, even where it is longer than what was kept.
    ReceivedDatagram {
        len: usize,
        head: String,
        from: SocketAddr,
    },
    /// The kernel showed that the target had read every byte written so
    /// far, `after_us` after the last piece was written.
    ReadByTarget {
        after_us: u64,
    },
    /// The target had not read every byte written so far `waited_ms`
    /// after the last piece was written, when the next was.
    NotYetRead {
        waited_ms: u64,
    },
    Note {
        text: String,
    },
}

impl Event {
    pub fn note(text: impl Into<String>) -> Event {
        Event::Note { text: text.into() }
    }
}

/// An event at a time since the check started, on a connection or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at_us: u64,
    #[serde(with = "channel_name")]
    pub conn: Option<Channel>,
    #[serde(flatten)]
    pub event: Event,
}

/// What a transcript line is about: a stream connection (`c1`) or one of
/// the harness's datagram sockets (`u1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Conn(Conn),
    Sock(Sock),
}

impl From<Conn> for Channel {
    fn from(c: Conn) -> Channel {
        Channel::Conn(c)
    }
}

impl From<Sock> for Channel {
    fn from(s: Sock) -> Channel {
        Channel::Sock(s)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Conn(c) => c.fmt(f),
            Channel::Sock(s) => s.fmt(f),
        }
    }
}

/// A channel by its name in the transcript: `c2`, `u1`.
mod channel_name {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use super::Channel;
    use crate::names::{Conn, Sock};

    pub fn serialize<S: Serializer>(ch: &Option<Channel>, s: S) -> Result<S::Ok, S::Error> {
        match ch {
            Some(c) => s.serialize_str(&c.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Channel>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let number = |prefix: char| name.strip_prefix(prefix).and_then(|n| n.parse().ok());
        if let Some(n) = number('c') {
            return Ok(Some(Channel::Conn(Conn(n))));
        }
        if let Some(n) = number('u') {
            return Ok(Some(Channel::Sock(Sock(n))));
        }
        Err(de::Error::custom(format!(
            "{name:?} is not a connection or a socket (c1, u1...)"
        )))
    }
}

/// One line of a kept transcript: an entry, or the count of the entries
/// dropped from the middle, where they were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Record {
    Entry(Entry),
    Omitted(Omitted),
}

/// Entries dropped from the middle of a long transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename = "omitted")]
pub struct Omitted {
    pub count: usize,
}
