//! Steps on framed answers (`cmd-len`, `cmd-json`), on the stream domain's
//! connections: expect a frame from a server under test, read as it
//! arrives whatever its size; or play the server and answer a client under
//! test with a frame cut in the frame's own terms (its prefix in pieces,
//! its header byte by byte, a body of many MiB streamed). Whether the
//! bytes meet the frame is
//! [`FrameMatch`](crate::judge::expect_frame::FrameMatch)'s to say. This
//! module holds the steps, how they print and their dispatch; receiving,
//! timing and wording a frame is `frame_read.rs`'s, writing one
//! `frame_send.rs`'s.
//!
//! Memory stays flat: a frame's body is fed to the matcher one receive at
//! a time and never kept, and the transcript shows a frame's first
//! receives, then one line for the frame (its prefix, its header, its
//! body's length and MD5), not one line per receive of a 64 MiB body.

use std::fmt;
use std::ops::Range;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::link::Conn;
use super::{fault, miss, Domain, Runs, StepResult};
use crate::conversations::session::Session;
use crate::judge::expect_frame::{BodySpec, FrameWant, Framing, STRUCT_NAME};
use crate::judge::frame::PrefixFormat;
use crate::judge::header_time;
use crate::judge::show;
use crate::model::cut::Cut;
use crate::model::level::Level;

/// Bodies longer than this are streamed from their description in chunks
/// rather than made whole and handed to the stream send: a 64 MiB body
/// then costs the harness one chunk of memory.
pub(crate) const STREAM_ABOVE: u64 = 1024 * 1024;

/// How much of a streamed body one write carries.
pub(crate) const CHUNK: usize = 256 * 1024;

/// The harness's pause after each receive of a frame read slowly: with
/// the smallest receive buffer (about 2 KiB) about 1 MB a second, slow
/// enough that a sender's buffer fills, fast enough for a MiB in a second.
pub(crate) const SLOW_READ_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// A step on a framed answer.
#[derive(Clone, PartialEq, Debug)]
pub enum FrameStep {
    /// Wait for the frame `want` from the target; a miss weighs `level`.
    /// With `or_end`, an end of the stream (a close or a reset) before any
    /// byte of the frame is the other legal outcome: for requests the
    /// target may refuse by hanging up.
    Expect {
        conn: Conn,
        want: FrameWant,
        level: Level,
        or_end: bool,
    },
    /// Wait for the frame `want` from the target, read slowly through the
    /// smallest receive buffer the kernel allows (a pause after each
    /// receive), so the target's sends meet a full, small window: a sender
    /// that ignores how much a send took loses bytes.
    ExpectSlowly { conn: Conn, want: FrameWant },
    /// Answer with `frame`, written under `cut`. Writing goes on in the
    /// background while later steps run, as for a stream send; the
    /// conversation's end stops a body still being written, so a step
    /// after it waits for what the client makes of it (its output, its
    /// next request).
    Send {
        conn: Conn,
        frame: FrameOut,
        cut: FrameCut,
    },
    /// Read one framed answer on `conn` and record, as the answer to
    /// `question`, which of `ways` it is (each a name and the frame it
    /// reads as), or that it is none of them; never a miss. For what the
    /// protocol leaves to the target: the order of a command's stdout and
    /// stderr in one body.
    Observe {
        conn: Conn,
        ways: Vec<(String, FrameWant)>,
        question: String,
    },
    /// The `time` field of the last JSON header read on `conn` says when
    /// the answer was made: a date-time near the harness's clock, in local
    /// time or UTC ([`crate::judge::header_time`]).
    ExpectTime { conn: Conn, level: Level },
}

impl FrameStep {
    pub fn needs_process(&self) -> bool {
        false
    }
}

/// What stands for the target's scratch directory in a header field.
const SCRATCH: &str = "{scratch}";

/// A frame the harness writes.
#[derive(Clone, PartialEq, Debug)]
pub struct FrameOut {
    pub framing: Framing,
    pub body: BodySpec,
    /// For a JSON header, the fields written after the size, in order
    /// (`time`; unknown fields a client must ignore). Unused for a length
    /// frame.
    pub fields: Vec<(String, Value)>,
}

impl FrameOut {
    /// `prefix(N)` then the N bytes of `body`.
    pub fn length(prefix: PrefixFormat, body: BodySpec) -> FrameOut {
        FrameOut {
            framing: Framing::Length { prefix },
            body,
            fields: Vec::new(),
        }
    }

    /// `prefix(H)`, a JSON header of H bytes with the body's length under
    /// `size_key`, then `body`.
    pub fn json(prefix: PrefixFormat, size_key: &str, body: BodySpec) -> FrameOut {
        FrameOut {
            framing: Framing::JsonHeader {
                prefix,
                size_key: size_key.to_string(),
            },
            body,
            fields: Vec::new(),
        }
    }

    /// N as decimal digits, then, once the client answers `ready`, the N
    /// bytes of `body`.
    pub fn decimal(ready: &str, body: BodySpec) -> FrameOut {
        FrameOut {
            framing: Framing::Decimal {
                ready: ready.to_string(),
            },
            body,
            fields: Vec::new(),
        }
    }

    /// The same frame with one more header field, after those before it.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> FrameOut {
        self.fields.push((key.to_string(), value.into()));
        self
    }

    /// Whether a header field names the target's scratch directory, as
    /// `{scratch}` (a path the target is sent that must land in its tree).
    pub(crate) fn names_scratch(&self) -> bool {
        self.fields
            .iter()
            .any(|(_, v)| v.as_str().is_some_and(|s| s.contains(SCRATCH)))
    }

    /// The same frame with `{scratch}` in its header fields made `scratch`,
    /// the target's scratch directory, as in its command.
    pub(crate) fn in_scratch(&self, scratch: &std::path::Path) -> FrameOut {
        let mut placed = self.clone();
        for (_, v) in &mut placed.fields {
            if let Some(s) = v.as_str() {
                *v = Value::from(s.replace(SCRATCH, &scratch.to_string_lossy()));
            }
        }
        placed
    }

    /// The binary prefix; a decimal length, which has none, is written
    /// apart and never asks for it.
    pub(crate) fn prefix(&self) -> PrefixFormat {
        match &self.framing {
            Framing::Length { prefix } | Framing::JsonHeader { prefix, .. } => *prefix,
            Framing::Decimal { .. } | Framing::BareJson { .. } | Framing::Struct128sl => {
                PrefixFormat::I32Le
            }
        }
    }

    /// The JSON header's bytes, its fields in the order given, the size
    /// first; a `128sl` struct's bytes, named by the first field that is
    /// text; empty for a length frame.
    pub fn header(&self) -> Vec<u8> {
        let size_key = match &self.framing {
            Framing::JsonHeader { size_key, .. } | Framing::BareJson { size_key, .. } => size_key,
            Framing::Struct128sl => {
                let name = self.fields.iter().find_map(|(_, v)| v.as_str());
                let mut head = name.unwrap_or_default().as_bytes().to_vec();
                head.resize(STRUCT_NAME, 0);
                let len = i64::try_from(self.body.len()).unwrap_or(i64::MAX);
                head.extend_from_slice(&len.to_le_bytes());
                return head;
            }
            Framing::Length { .. } | Framing::Decimal { .. } => return Vec::new(),
        };
        let key = |k: &str| Value::from(k).to_string();
        let mut parts = vec![format!("{}: {}", key(size_key), self.body.len())];
        parts.extend(self.fields.iter().map(|(k, v)| format!("{}: {v}", key(k))));
        format!("{{{}}}", parts.join(", ")).into_bytes()
    }

    /// Where the prefix and, in a JSON frame, the header lie in the frame's
    /// bytes: the parts a cut splits to test a reader's loops.
    pub fn parts(&self) -> Vec<Range<usize>> {
        let width = self.prefix_len();
        let prefix = 0..width;
        match self.framing {
            Framing::Length { .. } | Framing::Decimal { .. } => vec![prefix],
            Framing::JsonHeader { .. } => vec![prefix, width..width + self.header().len()],
            Framing::BareJson { .. } | Framing::Struct128sl => {
                let header = 0..self.header().len();
                vec![header]
            }
        }
    }

    /// The frame's length in bytes: its head and its body.
    pub fn total_len(&self) -> u64 {
        (self.prefix_len() + self.header().len()) as u64 + self.body.len()
    }

    /// How many bytes the length takes: its format's width, or its
    /// decimal digits.
    fn prefix_len(&self) -> usize {
        match self.framing {
            Framing::Decimal { .. } => self.body.len().to_string().len(),
            Framing::BareJson { .. } | Framing::Struct128sl => 0,
            _ => self.prefix().width(),
        }
    }

    /// The prefix and the header: what comes before the body. `None` when
    /// the length does not fit the prefix's format.
    pub fn head(&self) -> Option<Vec<u8>> {
        let header = self.header();
        let counted = match self.framing {
            Framing::Length { .. } => self.body.len(),
            Framing::JsonHeader { .. } => header.len() as u64,
            Framing::Decimal { .. } => return Some(self.body.len().to_string().into_bytes()),
            Framing::BareJson { .. } | Framing::Struct128sl => return Some(header),
        };
        let mut head = self.prefix().encode(counted)?;
        head.extend_from_slice(&header);
        Some(head)
    }
}

/// How a frame the harness writes is cut, in the frame's own terms. Each
/// piece waits until the kernel shows the target read the one before it
/// (a pause stands in where the kernel cannot show it), so the target's
/// receives get the pieces apart.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FrameCut {
    /// Prefix, header and body in one write (a body of many MiB follows
    /// the head without waiting, in as many writes as it takes).
    Whole,
    /// The prefix as one byte, then its other bytes, then the rest: one
    /// receive of the prefix's width gets one byte.
    SplitPrefix,
    /// The prefix and the header one byte at a time, then the body.
    HeaderBytewise,
    /// The whole frame, prefix, header and body, written under this cut
    /// (a generated one, say: [`Cut::splitting`] over the frame's
    /// [`parts`](FrameOut::parts)). Of a body streamed in chunks, the cut
    /// covers the head only.
    Schedule(Cut),
    /// The prefix and the header in one write, then the body once they
    /// are read: a reader's loop for the body is on its own.
    HeadApart,
}

impl FrameCut {
    /// The cut of a frame's first bytes: `head` bytes of head, the prefix
    /// `width` of them.
    pub(crate) fn cut(&self, width: usize, head: usize) -> Cut {
        match self {
            FrameCut::Whole => Cut::Whole,
            FrameCut::SplitPrefix => Cut::pieces(&[1, width - 1]),
            FrameCut::HeaderBytewise => Cut::pieces(&vec![1; head]),
            FrameCut::Schedule(cut) => cut.clone(),
            FrameCut::HeadApart => Cut::pieces(&[head]),
        }
    }
}

impl fmt::Display for FrameStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameStep::Expect {
                conn,
                want,
                level,
                or_end,
            } => {
                write!(f, "expect on {conn} {want}")?;
                if *or_end {
                    f.write_str(", or an end of stream")?;
                }
                if *level != Level::Must {
                    write!(f, " [{level}]")?;
                }
                Ok(())
            }
            FrameStep::ExpectSlowly { conn, want } => write!(
                f,
                "expect on {conn} {want}, read slowly (smallest receive buffer, {} ms after \
                 each receive)",
                SLOW_READ_PAUSE.as_millis()
            ),
            FrameStep::Send { conn, frame, cut } => write_send(f, *conn, frame, cut),
            FrameStep::Observe {
                conn,
                ways,
                question,
            } => {
                let names: Vec<&str> = ways.iter().map(|(name, _)| name.as_str()).collect();
                write!(
                    f,
                    "observe on {conn} which answer comes ({}): {question}",
                    names.join("; ")
                )
            }
            FrameStep::ExpectTime { conn, level } => {
                write!(
                    f,
                    "expect the last header on {conn} to hold the time it was made"
                )?;
                if *level != Level::Must {
                    write!(f, " [{level}]")?;
                }
                Ok(())
            }
        }
    }
}

/// "answer on c1: i32le prefix 5 in two pieces (1 byte, then 3, each read
/// before the next), then the body "hello"".
fn write_send(
    f: &mut fmt::Formatter<'_>,
    conn: Conn,
    frame: &FrameOut,
    cut: &FrameCut,
) -> fmt::Result {
    // A schedule of one write is the whole answer.
    let cut = match cut {
        FrameCut::Schedule(Cut::Whole) => &FrameCut::Whole,
        cut => cut,
    };
    let prefix = frame.prefix();
    let width = prefix.width();
    let header = frame.header();
    let body = body_words(&frame.body);
    let (counted, shown_header) = match &frame.framing {
        Framing::Decimal { ready } => {
            write!(
                f,
                "answer on {conn}: the length {} in decimal digits in one write, then, once \
                 the client answers {}, {body}",
                frame.body.len(),
                show::quoted(ready.as_bytes(), 24)
            )?;
            if *cut != FrameCut::Whole {
                f.write_str(" (the digits uncut: a client reads them with one receive)")?;
            }
            return Ok(());
        }
        Framing::Length { .. } => (format!("{prefix} prefix {}", frame.body.len()), None),
        Framing::Struct128sl => (
            format!(
                "a 128sl struct header ({STRUCT_NAME} bytes of name, size {})",
                frame.body.len()
            ),
            None,
        ),
        Framing::BareJson { ready, .. } => {
            write!(
                f,
                "answer on {conn}: the header {} alone in one write, then, once ",
                header_shown(&header)
            )?;
            match ready {
                Some(ready) => write!(f, "the target answers {}", show::quoted(ready, 24))?,
                None => f.write_str("the target read it")?,
            }
            write!(f, ", {body}")?;
            if *cut != FrameCut::Whole {
                f.write_str(" (the header uncut: it is read with one receive)")?;
            }
            return Ok(());
        }
        Framing::JsonHeader { .. } => (
            format!("{prefix} header length {}", header.len()),
            Some(format!("the header {}", header_shown(&header))),
        ),
    };
    // A body of many MiB follows its head in as many writes as it takes.
    let whole = match frame.body.len() > STREAM_ABOVE {
        true => "back to back",
        false => "in one write",
    };
    match (cut, shown_header) {
        (FrameCut::Whole, None) => write!(f, "answer on {conn} {whole}: {counted} and {body}"),
        (FrameCut::Whole, Some(h)) => {
            write!(f, "answer on {conn} {whole}: {counted}, {h} and {body}")
        }
        (FrameCut::SplitPrefix, h) => {
            write!(
                f,
                "answer on {conn}: {counted} in two pieces (1 byte, then {}, each read \
                 before the next), then ",
                width - 1
            )?;
            match h {
                Some(h) => write!(f, "{h} and {body}"),
                None => write!(f, "{body}"),
            }
        }
        (FrameCut::Schedule(cut), h) => {
            write!(f, "answer on {conn}: {counted}")?;
            if let Some(h) = h {
                write!(f, ", {h}")?;
            }
            write!(
                f,
                " and {body}, cut over the whole answer: {cut} (each read before the next)"
            )
        }
        (FrameCut::HeaderBytewise, h) => {
            write!(f, "answer on {conn}: {counted}")?;
            if let Some(h) = h {
                write!(f, " and {h}")?;
            }
            write!(
                f,
                " one byte at a time (each read before the next), then {body}"
            )
        }
        (FrameCut::HeadApart, h) => {
            write!(f, "answer on {conn}: {counted}")?;
            if let Some(h) = h {
                write!(f, " and {h}")?;
            }
            write!(f, " in one write, then, once read, {body}")
        }
    }
}

/// A header as it reads (JSON text), cut short when long.
pub(super) fn header_shown(header: &[u8]) -> String {
    const SHOWN: usize = 80;
    let text = String::from_utf8_lossy(header);
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.into_owned(),
    }
}

pub(super) fn body_words(body: &BodySpec) -> String {
    match body {
        BodySpec::Literal(b) if b.is_empty() => "an empty body".to_string(),
        BodySpec::Literal(b) => format!("the body {}", show::quoted(b, 48)),
        BodySpec::Seeded { seed, len } if *len > STREAM_ABOVE => format!(
            "a generated body of {len} bytes (seed {seed}), streamed in writes of {} KiB",
            CHUNK / 1024
        ),
        BodySpec::Seeded { seed, len } => {
            format!("a generated body of {len} bytes (seed {seed})")
        }
        BodySpec::Repeated { pattern, len } => {
            format!(
                "a body of {len} bytes, {} repeated",
                show::quoted(pattern, 24)
            )
        }
        BodySpec::RepeatedThen { pattern, len, end } => {
            let streamed = match *len > STREAM_ABOVE {
                true => format!(", streamed in writes of {} KiB", CHUNK / 1024),
                false => String::new(),
            };
            format!(
                "a body of {len} bytes, {} repeated, then {}{streamed}",
                show::quoted(pattern, 24),
                show::quoted(end, 32)
            )
        }
    }
}

impl Domain for FrameStep {
    /// Frames live on the stream domain's connections; the domain keeps
    /// only the last header read on each.
    type State = FrameState;
}

/// What the frame domain keeps during a conversation.
#[derive(Default)]
pub(crate) struct FrameState {
    /// The last JSON header read on each connection.
    pub(crate) headers: BTreeMap<Conn, Map<String, Value>>,
}

impl Runs<FrameStep> for Session<'_> {
    fn run(&mut self, step: &FrameStep) -> StepResult {
        match step {
            FrameStep::Expect {
                conn,
                want,
                level,
                or_end,
            } => self
                .expect_frame(*conn, want, *or_end, None)
                .map_err(|e| e.at_level(*level)),
            FrameStep::ExpectSlowly { conn, want } => {
                self.expect_frame(*conn, want, false, Some(SLOW_READ_PAUSE))
            }
            FrameStep::Send { conn, frame, cut } => self.send_frame(*conn, frame, cut),
            FrameStep::Observe {
                conn,
                ways,
                question,
            } => self.observe_frame(*conn, ways, question),
            FrameStep::ExpectTime { conn, level } => self.expect_time(*conn, *level),
        }
    }
}

impl Session<'_> {
    fn expect_time(&mut self, conn: Conn, level: Level) -> StepResult {
        let Some(header) = self.domains.frame.headers.get(&conn) else {
            return Err(fault(format!(
                "no JSON header was read on {conn} before (a bug in the suite)"
            )));
        };
        let (now, offset) = clock();
        match header_time::judge(header.get("time"), now, offset) {
            Ok(how) => {
                self.notes.push(how);
                Ok(())
            }
            Err(why) => Err(miss(level, why)),
        }
    }
}

/// The harness's clock: seconds since the epoch, and how far local time
/// is ahead of UTC.
fn clock() -> (i64, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secs = now as libc::time_t;
    // SAFETY: localtime_r reads `secs` and writes only the `tm` it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    (now, if filled { tm.tm_gmtoff } else { 0 })
}

#[cfg(test)]
mod tests {
    //! Frames against scripted peers in threads on loopback: a server that
    //! answers a request with bytes the test chooses, and a client that
    //! reads the harness's answer as a course client would. Which end
    //! connected does not matter to a frame: the harness connects to both.

    use super::*;
    use crate::conversations::conversation::Conversation;
    use crate::conversations::session::Peer;
    use crate::conversations::session::{Outcome, Session};
    use crate::conversations::steps::link::READ_CHUNK;
    use crate::conversations::transcript::Event;
    use crate::judge::expect_frame::FrameWant;
    use crate::judge::expect_frame::HeaderWant;
    use crate::kernel::net;
    use crate::model::timing::Timing;
    use md5::{Digest, Md5};
    use std::io::Read;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::thread;
    use std::time::Duration;

    const C1: Conn = Conn(1);
    const I32LE: PrefixFormat = PrefixFormat::I32Le;

    /// A peer that accepts one connection and then acts on it.
    fn peer(act: impl FnOnce(TcpStream) + Send + 'static) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            act(s);
        });
        Peer::Remote(addr)
    }

    /// A server that reads one request, then writes `answer` and waits for
    /// the harness to close.
    fn server(answer: Vec<u8>) -> Peer {
        peer(move |mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let _ = s.write_all(&answer);
            let _ = s.read(&mut [0u8; 64]);
        })
    }

    fn ask() -> Conversation {
        Conversation::new().connect(C1).send(C1, "ls", Cut::Whole)
    }

    fn run(peer: &mut Peer, c: Conversation) -> Outcome {
        Session::new(peer, Timing::new(0.5)).run(&c.steps)
    }

    fn length(body: &[u8]) -> FrameWant {
        FrameWant {
            framing: Framing::Length { prefix: I32LE },
            body: BodySpec::Literal(body.to_vec()),
            tolerant: false,
            header: HeaderWant::default(),
        }
    }

    fn len_frame(prefix: PrefixFormat, body: &[u8]) -> Vec<u8> {
        let mut out = prefix.encode(body.len() as u64).unwrap();
        out.extend_from_slice(body);
        out
    }

    fn first_miss(out: &Outcome) -> &str {
        out.misses.first().map_or("", |m| m.detail.as_str())
    }

    fn md5_hex(d: Md5) -> String {
        d.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The MD5 of a body, made a chunk at a time from its description.
    fn md5_of(body: &BodySpec) -> String {
        let mut d = Md5::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut at = 0;
        while at < body.len() {
            let n = body.fill(at, &mut chunk);
            d.update(&chunk[..n]);
            at += n as u64;
        }
        md5_hex(d)
    }

    #[test]
    fn a_length_frame_passes_and_what_follows_it_is_the_next_step_s() {
        let mut answer = len_frame(I32LE, b"hello");
        answer.extend_from_slice(b"NEXT");
        let mut p = server(answer);
        let out = run(
            &mut p,
            ask()
                .expect_frame(C1, length(b"hello"))
                .expect_bytes(C1, "NEXT"),
        );
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let (entries, _) = out.transcript.entries();
        let notes: Vec<String> = entries
            .filter_map(|e| match &e.event {
                Event::Note { text } if text.starts_with("frame:") => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            notes,
            ["frame: prefix 5 (as i32le); body of 5 bytes, MD5 5d41402abc4b2a76b9719d911017c592"]
        );
    }

    #[test]
    fn a_json_frame_passes() {
        let header = r#"{"size": 5, "time": "2026-12-07 10:20:30.123456"}"#;
        let mut answer = I32LE.encode(header.len() as u64).unwrap();
        answer.extend_from_slice(header.as_bytes());
        answer.extend_from_slice(b"hello");
        let mut p = server(answer);
        let want = FrameWant {
            framing: Framing::JsonHeader {
                prefix: I32LE,
                size_key: "size".into(),
            },
            body: BodySpec::Literal(b"hello".to_vec()),
            tolerant: false,
            header: HeaderWant::default(),
        };
        let out = run(&mut p, ask().expect_frame(C1, want));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn a_prefix_in_the_other_byte_order_names_the_param_that_fits() {
        let mut p = server(len_frame(PrefixFormat::I32Be, b"hello"));
        let out = run(&mut p, ask().expect_frame(C1, length(b"hello")));
        assert!(
            first_miss(&out).contains("--param prefix=i32be"),
            "{}",
            first_miss(&out)
        );
    }

    #[test]
    fn a_body_that_differs_names_the_byte_and_what_was_decoded() {
        let mut p = server(len_frame(I32LE, b"abcXef"));
        let out = run(&mut p, ask().expect_frame(C1, length(b"abcdef")));
        let detail = first_miss(&out);
        assert!(detail.contains("the body differs at byte 3"), "{detail}");
        assert!(
            detail.contains("decoded so far: prefix 6 (as i32le)"),
            "{detail}"
        );
    }

    #[test]
    fn an_end_in_the_middle_of_the_body_says_where_the_answer_stopped() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let mut cut = I32LE.encode(6).unwrap();
            cut.extend_from_slice(b"abc");
            let _ = s.write_all(&cut);
        });
        let out = run(&mut p, ask().expect_frame(C1, length(b"abcdef")));
        let detail = first_miss(&out);
        assert!(
            detail.starts_with(
                "the answer stopped after 3 of the body's 6 bytes; the connection was closed"
            ),
            "{detail}"
        );
    }

    #[test]
    fn a_frame_that_stops_coming_is_a_stall_that_says_where_it_stopped() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let mut cut = I32LE.encode(6).unwrap();
            cut.extend_from_slice(b"abc");
            let _ = s.write_all(&cut);
            thread::sleep(Duration::from_secs(2));
        });
        let out = run(&mut p, ask().expect_frame(C1, length(b"abcdef")));
        let detail = first_miss(&out);
        assert!(
            detail.starts_with(
                "the answer stopped after 3 of the body's 6 bytes; timed out after 1.0s: 7 bytes \
                 came in one piece, then nothing more for 1.0s"
            ),
            "{detail}"
        );
    }

    #[test]
    fn silence_is_a_miss_that_says_nothing_arrived() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
            thread::sleep(Duration::from_secs(2));
        });
        let out = run(&mut p, ask().expect_frame(C1, length(b"x")));
        assert!(
            first_miss(&out).starts_with("nothing arrived within 1.0s"),
            "{}",
            first_miss(&out)
        );
    }

    #[test]
    fn or_end_accepts_a_close_instead_of_the_frame() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
        });
        let out = run(
            &mut p,
            ask().expect_frame_or_end(C1, length(b"hello"), Level::Must),
        );
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn or_end_accepts_a_reset_too() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let _ = net::reset(s);
        });
        let out = run(
            &mut p,
            ask().expect_frame_or_end(C1, length(b"hello"), Level::Must),
        );
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn or_end_does_not_accept_an_end_inside_the_frame() {
        let mut p = peer(|mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let _ = s.write_all(&[5, 0]);
        });
        let out = run(
            &mut p,
            ask().expect_frame_or_end(C1, length(b"hello"), Level::Must),
        );
        let detail = first_miss(&out);
        assert!(
            detail.contains(
                "or an end of stream; got: the answer stopped after 2 of the prefix's 4 bytes"
            ),
            "{detail}"
        );
    }

    #[test]
    fn or_end_misses_a_third_outcome_and_names_both_it_allowed() {
        let mut p = server(b"sh: nosuch: not found\n".to_vec());
        let out = run(
            &mut p,
            ask().expect_frame_or_end(C1, length(b"hello"), Level::Must),
        );
        let detail = first_miss(&out);
        assert!(
            detail.starts_with(
                "expected a i32le length prefix and the body \"hello\", or an end of stream; got: \
                 the prefix reads"
            ),
            "{detail}"
        );
    }

    #[test]
    fn a_sixteen_mib_body_streams_through_without_being_kept() {
        let body = BodySpec::Seeded {
            seed: 3,
            len: 16 << 20,
        };
        let sent = body.clone();
        let mut p = peer(move |mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let mut chunk = vec![0u8; READ_CHUNK];
            let _ = s.write_all(&I32LE.encode(sent.len()).unwrap());
            let mut at = 0;
            while at < sent.len() {
                let n = sent.fill(at, &mut chunk);
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                at += n as u64;
            }
            let _ = s.write_all(b"NEXT");
            let _ = s.read(&mut [0u8; 64]);
        });
        let want = FrameWant {
            framing: Framing::Length { prefix: I32LE },
            body: body.clone(),
            tolerant: false,
            header: HeaderWant::default(),
        };
        let mut session = Session::new(&mut p, Timing::new(2.0));
        let c = ask().expect_frame(C1, want).expect_bytes(C1, "NEXT");
        assert!(session.play(&c.steps));
        let link = &session.domains.stream.links[&C1];
        assert!(
            link.buffered.capacity() <= 2 * READ_CHUNK,
            "the link kept {} bytes",
            link.buffered.capacity()
        );
        let (out, _) = session.finish();
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let records = serde_json::to_string(&out.transcript.records()).unwrap();
        assert!(out.transcript.len() < 20, "{records}");
        assert!(records.len() < 4096, "{records}");
        assert!(records.contains(&md5_of(&body)), "{records}");
    }

    fn decimal(body: &[u8]) -> FrameWant {
        FrameWant {
            framing: Framing::Decimal { ready: "ok".into() },
            body: BodySpec::Literal(body.to_vec()),
            tolerant: false,
            header: HeaderWant::default(),
        }
    }

    /// A server of the decimal variant: the length's digits in one send,
    /// the client's word read with one receive, then the body, if the word
    /// is `ok`.
    fn decimal_server(body: &'static [u8]) -> Peer {
        peer(move |mut s| {
            let _ = s.read(&mut [0u8; 64]);
            let _ = s.write_all(body.len().to_string().as_bytes());
            let mut word = [0u8; 64];
            let n = s.read(&mut word).unwrap_or(0);
            if &word[..n] == b"ok" {
                let _ = s.write_all(body);
            }
            let _ = s.read(&mut [0u8; 64]);
        })
    }

    #[test]
    fn a_decimal_frame_answers_the_length_with_the_ready_word_and_reads_the_body() {
        let mut p = decimal_server(b"hello");
        let out = run(&mut p, ask().expect_frame(C1, decimal(b"hello")));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let records = serde_json::to_string(&out.transcript.records()).unwrap();
        assert!(
            records.contains("length 5 (in decimal digits)"),
            "{records}"
        );
    }

    #[test]
    fn a_decimal_frame_of_no_body_is_whole_once_answered() {
        let mut p = decimal_server(b"");
        let out = run(
            &mut p,
            ask()
                .expect_frame(C1, decimal(b""))
                .send(C1, "ls", Cut::Whole),
        );
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn a_decimal_length_under_a_binary_profile_names_prefix_decimal() {
        let mut p = decimal_server(b"hello");
        let out = run(&mut p, ask().expect_frame(C1, length(b"hello")));
        assert!(
            first_miss(&out).contains("--param prefix=decimal"),
            "{}",
            first_miss(&out)
        );
    }

    /// A client of the decimal variant: one receive for the length, `word`
    /// sent back, then the body read whole and answered with its MD5.
    fn decimal_client(word: &'static [u8]) -> Peer {
        peer(move |mut s| {
            let mut digits = [0u8; 64];
            let n = s.read(&mut digits).unwrap_or(0);
            let Some(len) = std::str::from_utf8(&digits[..n])
                .ok()
                .and_then(|t| t.parse::<usize>().ok())
            else {
                return;
            };
            let _ = s.write_all(word);
            let mut body = vec![0u8; len];
            if s.read_exact(&mut body).is_err() {
                return;
            }
            let mut d = Md5::new();
            d.update(&body);
            let _ = s.write_all(md5_hex(d).as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        })
    }

    #[test]
    fn a_decimal_answer_waits_for_the_client_s_ready_word_before_the_body() {
        let mut p = decimal_client(b"ok");
        let body = BodySpec::Literal(b"hello".to_vec());
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, FrameOut::decimal("ok", body.clone()), FrameCut::Whole)
            .expect_bytes(C1, md5_of(&body));
        let out = run(&mut p, c);
        assert!(out.fault.is_none(), "{:?}", out.fault);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn a_decimal_send_prints_its_wait_for_the_ready_word_and_is_never_cut() {
        let frame = FrameOut::decimal("ok", BodySpec::Literal(b"hello".to_vec()));
        let c = Conversation::new()
            .send_frame(C1, frame.clone(), FrameCut::Whole)
            .send_frame(C1, frame, FrameCut::SplitPrefix);
        assert_eq!(
            c.steps[0].to_string(),
            "answer on c1: the length 5 in decimal digits in one write, then, once the client \
             answers \"ok\", the body \"hello\""
        );
        assert!(c.steps[1]
            .to_string()
            .ends_with("(the digits uncut: a client reads them with one receive)"));
    }

    #[test]
    fn a_client_that_answers_another_word_misses_and_says_which_was_awaited() {
        let mut p = decimal_client(b"recv_ready");
        let c = Conversation::new().connect(C1).send_frame(
            C1,
            FrameOut::decimal("ok", BodySpec::Literal(b"hello".to_vec())),
            FrameCut::Whole,
        );
        let out = run(&mut p, c);
        let detail = first_miss(&out);
        assert!(
            detail.starts_with(
                "the harness sent the length 5 and waited for the client's ready word \"ok\" \
                 before the body"
            ),
            "{detail}"
        );
        assert!(detail.contains("recv_ready"), "{detail}");
    }

    #[test]
    fn a_send_prints_its_cut_in_the_frame_s_terms() {
        let frame = FrameOut::length(I32LE, BodySpec::Literal(b"hello".to_vec()));
        let c = Conversation::new().send_frame(C1, frame.clone(), FrameCut::SplitPrefix);
        assert_eq!(
            c.steps[0].to_string(),
            "answer on c1: i32le prefix 5 in two pieces (1 byte, then 3, each read before the \
             next), then the body \"hello\""
        );
        let json = FrameOut::json(I32LE, "size", BodySpec::Literal(b"hi".to_vec()))
            .field("time", "2026-12-07 10:20:30");
        let c = Conversation::new().send_frame(C1, json, FrameCut::HeaderBytewise);
        assert_eq!(
            c.steps[0].to_string(),
            "answer on c1: i32le header length 42 and the header \
             {\"size\": 2, \"time\": \"2026-12-07 10:20:30\"} one byte at a time \
             (each read before the next), then the body \"hi\""
        );
    }

    /// A client that does one receive of 4 bytes for the prefix and
    /// answers with how many it got, then reads on to the end.
    fn one_receive_of_four() -> Peer {
        peer(|mut s| {
            let mut prefix = [0u8; 4];
            let n = s.read(&mut prefix).unwrap_or(0);
            let _ = s.write_all(n.to_string().as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        })
    }

    #[test]
    fn a_split_prefix_gives_a_single_receive_of_four_one_byte() {
        let mut p = one_receive_of_four();
        let frame = FrameOut::length(I32LE, BodySpec::Literal(b"hello".to_vec()));
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, FrameCut::SplitPrefix)
            .expect_bytes(C1, "1");
        let out = run(&mut p, c);
        assert!(out.fault.is_none(), "{:?}", out.fault);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    /// A `cmd-json` client that reads the prefix whole, then does one
    /// receive of H for the header and answers with how many bytes it got.
    fn one_receive_of_the_header() -> Peer {
        peer(|mut s| {
            let mut prefix = [0u8; 4];
            if s.read_exact(&mut prefix).is_err() {
                return;
            }
            let mut header = vec![0u8; u32::from_le_bytes(prefix) as usize];
            let n = s.read(&mut header).unwrap_or(0);
            let _ = s.write_all(n.to_string().as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        })
    }

    #[test]
    fn a_header_sent_byte_by_byte_gives_a_single_receive_of_it_one_byte() {
        let mut p = one_receive_of_the_header();
        let frame = FrameOut::json(I32LE, "size", BodySpec::Literal(b"hello".to_vec()))
            .field("time", "2026-12-07 10:20:30.123456")
            .field("filename", "out.txt");
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, FrameCut::HeaderBytewise)
            .expect_bytes(C1, "1");
        let out = run(&mut p, c);
        assert!(out.fault.is_none(), "{:?}", out.fault);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    /// A client that reads a length frame as the protocol says, looping
    /// for the prefix and the body, and answers with the body's MD5.
    fn reading_client() -> Peer {
        peer(|mut s| {
            let mut prefix = [0u8; 4];
            if s.read_exact(&mut prefix).is_err() {
                return;
            }
            let mut left = u64::from(u32::from_le_bytes(prefix));
            let mut d = Md5::new();
            let mut chunk = vec![0u8; 4096];
            while left > 0 {
                let want = chunk.len().min(left as usize);
                match s.read(&mut chunk[..want]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        d.update(&chunk[..n]);
                        left -= n as u64;
                    }
                }
            }
            let _ = s.write_all(md5_hex(d).as_bytes());
            let _ = s.read_to_end(&mut Vec::new());
        })
    }

    #[test]
    fn a_split_prefix_reaches_a_looping_client_whole() {
        let mut p = reading_client();
        let body = BodySpec::Literal(b"hello".to_vec());
        let frame = FrameOut::length(I32LE, body.clone());
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, FrameCut::SplitPrefix)
            .expect_bytes(C1, md5_of(&body));
        let out = run(&mut p, c);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let (entries, _) = out.transcript.entries();
        let confirmed = entries
            .filter(|e| matches!(e.event, Event::ReadByTarget { .. }))
            .count();
        assert_eq!(
            confirmed, 2,
            "each piece of the prefix read before the next"
        );
    }

    #[test]
    fn a_large_streamed_body_reaches_a_reading_client_whole() {
        let mut p = reading_client();
        let body = BodySpec::Seeded {
            seed: 11,
            len: 32 << 20,
        };
        let frame = FrameOut::length(I32LE, body.clone());
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, FrameCut::SplitPrefix)
            .expect_bytes(C1, md5_of(&body));
        // The client's answer comes once it has hashed 32 MiB, seconds in
        // a test build on a loaded machine: a wide deadline, so that only
        // a body that stops coming fails.
        let out = Session::new(&mut p, Timing::new(30.0)).run(&c.steps);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let records = serde_json::to_string(&out.transcript.records()).unwrap();
        assert!(
            records.contains("wrote the body: 33554432 bytes"),
            "{records}"
        );
        assert!(records.len() < 4096, "{records}");
    }

    /// The ways a body of "out" and "err" may come, named.
    fn orders() -> Vec<(String, FrameWant)> {
        [
            ("out, err", "outerr"),
            ("err, out", "errout"),
            ("err", "err"),
        ]
        .map(|(name, body)| (name.to_string(), length(body.as_bytes())))
        .to_vec()
    }

    fn noted(out: &Outcome) -> Vec<String> {
        out.notes.clone()
    }

    #[test]
    fn an_observed_frame_is_named_by_the_way_it_came_and_what_follows_is_kept() {
        let mut answer = len_frame(I32LE, b"errout");
        answer.extend_from_slice(b"NEXT");
        let mut p = server(answer);
        let c = ask()
            .observe_frame(C1, orders(), "the order")
            .expect_bytes(C1, "NEXT");
        let out = run(&mut p, c);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        assert_eq!(noted(&out), ["the order: err, out"]);
    }

    #[test]
    fn an_observed_frame_of_another_length_is_named_too() {
        let mut p = server(len_frame(I32LE, b"err"));
        let out = run(&mut p, ask().observe_frame(C1, orders(), "the order"));
        assert_eq!(noted(&out), ["the order: err"]);
    }

    #[test]
    fn an_observed_frame_that_is_none_of_the_ways_is_noted_never_missed() {
        let mut p = server(len_frame(I32LE, b"other"));
        let out = run(&mut p, ask().observe_frame(C1, orders(), "the order"));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let notes = noted(&out);
        assert!(
            notes[0].starts_with("the order: none of them ("),
            "{notes:?}"
        );
    }

    #[test]
    fn a_scheduled_cut_spans_the_whole_answer_each_piece_read_before_the_next() {
        let mut p = reading_client();
        let body = BodySpec::Literal(b"hello, world".to_vec());
        let frame = FrameOut::length(I32LE, body.clone());
        assert_eq!(frame.parts(), [Range { start: 0, end: 4 }]);
        assert_eq!(frame.total_len(), 16);
        // Pieces of 2, 5 and the other 9 bytes: the second ends in the body.
        let cut = FrameCut::Schedule(Cut::pieces(&[2, 5]));
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, cut)
            .expect_bytes(C1, md5_of(&body));
        let out = run(&mut p, c);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let (entries, _) = out.transcript.entries();
        let wrote: Vec<usize> = entries
            .filter_map(|e| match &e.event {
                Event::Wrote { len, .. } => Some(*len),
                _ => None,
            })
            .collect();
        assert_eq!(wrote, [2, 5, 9]);
    }

    #[test]
    fn a_json_frame_names_its_prefix_and_header_as_its_parts() {
        let frame = FrameOut::json(I32LE, "size", BodySpec::Literal(b"hi".to_vec()))
            .field("time", "2026-12-07 10:20:30");
        let header = frame.header().len();
        assert_eq!(frame.parts(), vec![0..4, 4..4 + header]);
        assert_eq!(frame.total_len(), (4 + header + 2) as u64);
    }

    #[test]
    fn a_scheduled_send_prints_its_cut_over_the_whole_answer() {
        let frame = FrameOut::length(I32LE, BodySpec::Literal(b"hello".to_vec()));
        let cut = FrameCut::Schedule(Cut::pieces(&[1, 4]));
        let c = Conversation::new()
            .send_frame(C1, frame.clone(), cut)
            .send_frame(C1, frame, FrameCut::Schedule(Cut::Whole));
        assert_eq!(
            c.steps[0].to_string(),
            "answer on c1: i32le prefix 5 and the body \"hello\", cut over the whole answer: \
             pieces 1 4 rest (each read before the next)"
        );
        assert_eq!(
            c.steps[1].to_string(),
            "answer on c1 in one write: i32le prefix 5 and the body \"hello\""
        );
    }

    #[test]
    fn a_whole_frame_with_a_streamed_body_reaches_a_reading_client_whole() {
        let mut p = reading_client();
        let body = BodySpec::Seeded {
            seed: 5,
            len: 2 * STREAM_ABOVE + 7,
        };
        let frame = FrameOut::length(I32LE, body.clone());
        let c = Conversation::new()
            .connect(C1)
            .send_frame(C1, frame, FrameCut::Whole)
            .expect_bytes(C1, md5_of(&body));
        let out = Session::new(&mut p, Timing::new(10.0)).run(&c.steps);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }
}
