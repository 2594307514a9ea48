//! How a target talks: a stream of bytes (TCP) or datagrams (UDP). A suite
//! declares it; the harness then knows what to wait for before the first
//! check (a listening socket, or a bound one) and which sockets of the
//! kernel to ask about. A leaf module.

use std::fmt;

/// The transport a protocol runs over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP: a server is ready once a socket of its own listens on its port.
    #[default]
    Stream,
    /// UDP: a server is ready once a socket of its own is bound to its port.
    Datagram,
}

impl Transport {
    /// The IP protocol's name, as a student reads it in an error.
    pub fn protocol(self) -> &'static str {
        match self {
            Transport::Stream => "TCP",
            Transport::Datagram => "UDP",
        }
    }

    /// What a server does to be ready, as a verb: "listen on", "bind".
    pub fn ready_verb(self) -> &'static str {
        match self {
            Transport::Stream => "listen on",
            Transport::Datagram => "bind UDP",
        }
    }

    /// What a ready server is doing, for messages: "listening on" or
    /// "bound to".
    pub fn ready_words(self) -> &'static str {
        match self {
            Transport::Stream => "listening on",
            Transport::Datagram => "bound to UDP",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Stream => "stream",
            Transport::Datagram => "datagram",
        })
    }
}
