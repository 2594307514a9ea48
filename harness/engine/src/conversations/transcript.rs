//! What actually happened during a check, with times: every write and its
//! piece of the cut, every read, every end of stream, reset and kill, and
//! every datagram sent or received, one line each with its length and its
//! peer's address.
//!
//! A transcript is bounded: a check that writes one byte at a time for a
//! long message, or a target that floods, keeps the first and the last
//! entries and counts the rest.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::judge::show;
use crate::model::names::{Conn, Sock};

const HEAD: usize = 120;
const TAIL: usize = 80;
const SHOWN_BYTES: usize = 64;

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
    pub fn wrote(bytes: &[u8]) -> Event {
        Event::Wrote {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
        }
    }

    pub fn read(bytes: &[u8]) -> Event {
        Event::Read {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
        }
    }

    pub fn sent_datagram(bytes: &[u8], to: SocketAddr) -> Event {
        Event::SentDatagram {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
            to,
        }
    }

    pub fn received_datagram(bytes: &[u8], len: usize, from: SocketAddr) -> Event {
        Event::ReceivedDatagram {
            len,
            head: show::quoted(bytes, SHOWN_BYTES),
            from,
        }
    }

    pub fn note(text: impl Into<String>) -> Event {
        Event::Note { text: text.into() }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Connected { local_port } => write!(f, "connected from port {local_port}"),
            Event::Accepted { peer } => write!(f, "accepted from {peer}"),
            Event::Wrote { len, head } => write!(f, "-> {len} bytes {head}"),
            Event::Read { len, head } => write!(f, "<- {len} bytes {head}"),
            Event::Closed => f.write_str("<- end of stream"),
            Event::ResetByPeer => f.write_str("<- connection reset by peer"),
            Event::ShutdownWrite => f.write_str("-> half-close (FIN)"),
            Event::SentReset => f.write_str("-> reset (RST)"),
            Event::SentDatagram { len, head, to } => {
                write!(f, "-> datagram of {len} bytes to {to} {head}")
            }
            Event::ReceivedDatagram { len, head, from } => {
                write!(f, "<- datagram of {len} bytes from {from} {head}")
            }
            Event::ReadByTarget { after_us } => write!(
                f,
                "   read by the target before the next piece was sent ({:.1}ms)",
                *after_us as f64 / 1000.0
            ),
            Event::NotYetRead { waited_ms } => write!(
                f,
                "   not yet read after {waited_ms}ms: the next piece may have been merged with it"
            ),
            Event::Note { text } => f.write_str(text),
        }
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
    use crate::model::names::{Conn, Sock};

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

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.at_us as f64 / 1000.0;
        match self.conn {
            Some(c) => write!(f, "{ms:>9.1}ms {c:<3} {}", self.event),
            None => write!(f, "{ms:>9.1}ms     {}", self.event),
        }
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

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Entry(e) => e.fmt(f),
            Record::Omitted(Omitted { count }) => {
                write!(f, "            ... {count} entries omitted ...")
            }
        }
    }
}

/// The bounded record of one check.
#[derive(Clone, Debug)]
pub struct Transcript {
    start: Instant,
    head: Vec<Entry>,
    tail: VecDeque<Entry>,
    omitted: usize,
}

impl Transcript {
    pub fn new(start: Instant) -> Self {
        Transcript {
            start,
            head: Vec::new(),
            tail: VecDeque::new(),
            omitted: 0,
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    pub fn record(&mut self, conn: Option<Conn>, event: Event) {
        self.record_at(Instant::now(), conn.map(Channel::Conn), event)
    }

    /// Records an event on any channel, or on none.
    pub fn record_on(&mut self, channel: Option<Channel>, event: Event) {
        self.record_at(Instant::now(), channel, event)
    }

    pub fn record_at(&mut self, at: Instant, channel: Option<Channel>, event: Event) {
        let entry = Entry {
            at_us: self.since_start(at).as_micros() as u64,
            conn: channel,
            event,
        };
        if self.head.len() < HEAD {
            self.head.push(entry);
            return;
        }
        self.tail.push_back(entry);
        if self.tail.len() > TAIL {
            self.tail.pop_front();
            self.omitted += 1;
        }
    }

    /// Entries kept, in the order they were recorded, with the count of
    /// those dropped from the middle.
    pub fn entries(&self) -> (impl Iterator<Item = &Entry>, usize) {
        (self.head.iter().chain(self.tail.iter()), self.omitted)
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was kept, in the order it was recorded, with the count of the
    /// entries dropped from the middle where they were.
    pub fn records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self.head.iter().cloned().map(Record::Entry).collect();
        if self.omitted > 0 {
            out.push(Record::Omitted(Omitted {
                count: self.omitted,
            }));
        }
        out.extend(self.tail.iter().cloned().map(Record::Entry));
        out
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in self.records() {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_transcript_keeps_its_head_and_tail() {
        let mut t = Transcript::new(Instant::now());
        for i in 0..1000 {
            t.record(Some(Conn(1)), Event::note(format!("n{i}")));
        }
        let (entries, omitted) = t.entries();
        let texts: Vec<String> = entries.map(|e| e.event.to_string()).collect();
        assert_eq!(texts.len(), HEAD + TAIL);
        assert_eq!(omitted, 1000 - HEAD - TAIL);
        assert_eq!(texts[0], "n0");
        assert_eq!(texts.last().unwrap(), "n999");
    }

    #[test]
    fn an_accepted_connection_shows_the_clients_address() {
        let mut t = Transcript::new(Instant::now());
        let peer: SocketAddr = "[::1]:53124".parse().unwrap();
        t.record(Some(Conn(1)), Event::Accepted { peer });
        let (mut entries, _) = t.entries();
        let shown = entries.next().unwrap().event.to_string();
        assert_eq!(shown, "accepted from [::1]:53124");
        let json = serde_json::to_value(t.records()).unwrap();
        assert_eq!(json[0]["peer"], "[::1]:53124");
    }

    #[test]
    fn entries_serialize_with_their_connection_name() {
        let mut t = Transcript::new(Instant::now());
        t.record(Some(Conn(2)), Event::read(b"HI"));
        let json = serde_json::to_value(t.records()).unwrap();
        assert_eq!(json[0]["conn"], "c2");
        assert_eq!(json[0]["event"], "read");
        assert_eq!(json[0]["len"], 2);
    }

    #[test]
    fn a_datagram_is_one_line_with_its_length_and_its_peer() {
        let mut t = Transcript::new(Instant::now());
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        t.record_on(
            Some(Sock(2).into()),
            Event::received_datagram(b"HI", 2048, from),
        );
        let (mut entries, _) = t.entries();
        let entry = entries.next().unwrap();
        assert!(entry
            .to_string()
            .contains("u2 <- datagram of 2048 bytes from 127.0.0.1:40000 \"HI\""));
        let json = serde_json::to_value(t.records()).unwrap();
        assert_eq!(json[0]["conn"], "u2");
        let back: Vec<Record> = serde_json::from_value(json).unwrap();
        assert_eq!(back, t.records());
    }

    #[test]
    fn dropped_entries_are_counted_where_they_were() {
        let mut t = Transcript::new(Instant::now());
        for i in 0..HEAD + TAIL + 5 {
            t.record(None, Event::note(format!("n{i}")));
        }
        let records = t.records();
        assert_eq!(records[HEAD], Record::Omitted(Omitted { count: 5 }));
        let json = serde_json::to_value(&records).unwrap();
        assert_eq!(
            json[HEAD],
            serde_json::json!({ "event": "omitted", "count": 5 })
        );
        assert!(t.to_string().contains("... 5 entries omitted ..."));
    }

    #[test]
    fn records_read_back_from_their_json() {
        let mut t = Transcript::new(Instant::now());
        t.record(
            Some(Conn(1)),
            Event::Accepted {
                peer: "[::1]:53124".parse().unwrap(),
            },
        );
        t.record(Some(Conn(1)), Event::wrote(b"hi\n"));
        t.record(Some(Conn(1)), Event::ReadByTarget { after_us: 120 });
        t.record(Some(Conn(1)), Event::NotYetRead { waited_ms: 500 });
        t.record(None, Event::note("killed the target (SIGKILL)"));
        for _ in 0..HEAD + TAIL {
            t.record(Some(Conn(2)), Event::Closed);
        }
        let records = t.records();
        let json = serde_json::to_string(&records).unwrap();
        let back: Vec<Record> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, records);
    }
}
