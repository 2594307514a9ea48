//! What actually happened during a check, with times: every write and its
//! piece of the cut, every read, every end of stream, reset and kill, and
//! every datagram sent or received, one line each with its length and its
//! peer's address.
//!
//! The lines it keeps are the results crate's record types, which the
//! reports are written in; this is the live recorder that makes them.
//!
//! A transcript is bounded: a check that writes one byte at a time for a
//! long message, or a target that floods, keeps the first and the last
//! entries and counts the rest.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use sockspec_results::{Channel, Entry, Event, Omitted, Record};

use crate::judge::show;
use crate::model::names::Conn;

const HEAD: usize = 120;
const TAIL: usize = 80;
const SHOWN_BYTES: usize = 64;

/// Events built from the bytes they carry, shown quoted and cut short as
/// the transcript keeps them.
pub trait FromBytes {
    fn wrote(bytes: &[u8]) -> Self;
    fn read(bytes: &[u8]) -> Self;
    fn sent_datagram(bytes: &[u8], to: SocketAddr) -> Self;
    /// `len` is the datagram's real length, as the kernel reported it.
    fn received_datagram(bytes: &[u8], len: usize, from: SocketAddr) -> Self;
}

impl FromBytes for Event {
    fn wrote(bytes: &[u8]) -> Event {
        Event::Wrote {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
        }
    }

    fn read(bytes: &[u8]) -> Event {
        Event::Read {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
        }
    }

    fn sent_datagram(bytes: &[u8], to: SocketAddr) -> Event {
        Event::SentDatagram {
            len: bytes.len(),
            head: show::quoted(bytes, SHOWN_BYTES),
            to,
        }
    }

    fn received_datagram(bytes: &[u8], len: usize, from: SocketAddr) -> Event {
        Event::ReceivedDatagram {
            len,
            head: show::quoted(bytes, SHOWN_BYTES),
            from,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::names::Sock;

    #[test]
    fn a_long_transcript_keeps_its_head_and_tail() {
        let mut t = Transcript::new(Instant::now());
        for i in 0..1000 {
            t.record(Some(Conn(1)), Event::note(format!("n{i}")));
        }
        let (entries, omitted) = t.entries();
        let events: Vec<Event> = entries.map(|e| e.event.clone()).collect();
        assert_eq!(events.len(), HEAD + TAIL);
        assert_eq!(omitted, 1000 - HEAD - TAIL);
        assert_eq!(events[0], Event::note("n0"));
        assert_eq!(events.last().unwrap(), &Event::note("n999"));
    }

    #[test]
    fn an_accepted_connection_records_the_clients_address() {
        let mut t = Transcript::new(Instant::now());
        let peer: SocketAddr = "[::1]:53124".parse().unwrap();
        t.record(Some(Conn(1)), Event::Accepted { peer });
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
    fn a_datagram_is_recorded_with_its_length_and_its_peer() {
        let mut t = Transcript::new(Instant::now());
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        t.record_on(
            Some(Sock(2).into()),
            Event::received_datagram(b"HI", 2048, from),
        );
        let json = serde_json::to_value(t.records()).unwrap();
        assert_eq!(json[0]["conn"], "u2");
        assert_eq!(json[0]["len"], 2048);
        assert_eq!(json[0]["from"], "127.0.0.1:40000");
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
