//! What actually happened during a check, with times: every write and its
//! piece of the cut, every read, every end of stream, reset and kill.
//!
//! A transcript is bounded: a check that writes one byte at a time for a
//! long message, or a target that floods, keeps the first and the last
//! entries and counts the rest.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::show;
use crate::steps::Conn;

const HEAD: usize = 120;
const TAIL: usize = 80;
const SHOWN_BYTES: usize = 64;

/// One thing that happened. An accepted connection carries the client's
/// address, which shows the loopback it chose (127.0.0.1 or ::1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    Connected { local_port: u16 },
    Accepted { peer: SocketAddr },
    Wrote { len: usize, head: String },
    Read { len: usize, head: String },
    Closed,
    ResetByPeer,
    ShutdownWrite,
    SentReset,
    Note { text: String },
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
            Event::Note { text } => f.write_str(text),
        }
    }
}

/// An event at a time since the check started, on a connection or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub at_us: u64,
    #[serde(serialize_with = "conn_name")]
    pub conn: Option<Conn>,
    #[serde(flatten)]
    pub event: Event,
}

fn conn_name<S: serde::Serializer>(conn: &Option<Conn>, s: S) -> Result<S::Ok, S::Error> {
    match conn {
        Some(c) => s.serialize_str(&c.to_string()),
        None => s.serialize_none(),
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
        self.record_at(Instant::now(), conn, event)
    }

    pub fn record_at(&mut self, at: Instant, conn: Option<Conn>, event: Event) {
        let entry = Entry {
            at_us: self.since_start(at).as_micros() as u64,
            conn,
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

    /// Entries as JSON values (with a note where entries were dropped).
    pub fn to_json(&self) -> serde_json::Value {
        let mut items: Vec<serde_json::Value> = self
            .head
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(serde_json::Value::Null))
            .collect();
        if self.omitted > 0 {
            items.push(serde_json::json!({ "event": "omitted", "count": self.omitted }));
        }
        items.extend(
            self.tail
                .iter()
                .map(|e| serde_json::to_value(e).unwrap_or(serde_json::Value::Null)),
        );
        serde_json::Value::Array(items)
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.head {
            writeln!(f, "{e}")?;
        }
        if self.omitted > 0 {
            writeln!(f, "            ... {} entries omitted ...", self.omitted)?;
        }
        for e in &self.tail {
            writeln!(f, "{e}")?;
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
        assert_eq!(t.to_json()[0]["peer"], "[::1]:53124");
    }

    #[test]
    fn entries_serialize_with_their_connection_name() {
        let mut t = Transcript::new(Instant::now());
        t.record(Some(Conn(2)), Event::read(b"HI"));
        let json = t.to_json();
        assert_eq!(json[0]["conn"], "c2");
        assert_eq!(json[0]["event"], "read");
        assert_eq!(json[0]["len"], 2);
    }
}
