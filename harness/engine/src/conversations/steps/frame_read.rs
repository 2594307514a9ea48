//! Reading a framed answer: each receive fed to the frame's matcher as it
//! comes and dropped (only what follows the frame is kept for the next
//! step), the wait bounded as for any answer (a stall, or a pace slower
//! than the slowest allowed), and what arrived worded when it is not the
//! frame: where it differs, where it stopped, what was decoded by then. A
//! decimal length is answered with the ready word its sender waits for.

use super::stream::StreamStep;
use super::stream_read::Received;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::frame::header_shown;
use super::link::{Conn, End};
use super::{miss, StepError, StepResult};
use crate::conversations::session::{Peer, Session};
use crate::conversations::transcript::{Event, FromBytes};
use crate::judge::expect_frame::{
    FrameMatch, FrameMiss, FrameProgress, FrameWant, Framing, STRUCT_LEN,
};
use crate::judge::frame::Decoded;
use crate::model::cut::Cut;
use crate::model::level::Level;
use crate::model::timing::{AnswerPace, Deadline};

/// How many of a frame's receives are recorded one by one: enough for its
/// prefix and header and the start of its body; the rest are counted.
const READS_SHOWN: usize = 4;

/// The most bytes one receive of a slow reader takes: the smallest receive
/// buffer the kernel allows on these machines (see `kernel/net.rs`).
const SLOW_READ_PIECE: usize = 2304;

/// A frame being read, with what the transcript and a miss say of it.
struct Reading {
    matcher: FrameMatch,
    /// The frame's first bytes, as many as its prefix is wide.
    prefix: Vec<u8>,
    /// Bytes of the frame fed to the matcher.
    fed: u64,
    /// Receives during the frame, and those not recorded one by one.
    reads: usize,
    unshown: (usize, u64),
    started: Instant,
    /// When bytes last arrived (the wait's start before any did).
    last: Instant,
    /// When the first receive of the frame came, and the bytes fed before
    /// it (what was left over from an earlier step): the pace's start.
    first: Option<(Instant, u64)>,
}

impl Reading {
    fn new(want: &FrameWant) -> Reading {
        let now = Instant::now();
        Reading {
            matcher: FrameMatch::new(want.clone()),
            prefix: Vec::new(),
            fed: 0,
            reads: 0,
            unshown: (0, 0),
            started: now,
            last: now,
            first: None,
        }
    }

    fn width(&self) -> usize {
        match &self.matcher.want().framing {
            Framing::Length { prefix } | Framing::JsonHeader { prefix, .. } => prefix.width(),
            // The digits, and a header with no prefix, are the matcher's
            // to keep.
            Framing::Decimal { .. } | Framing::BareJson { .. } | Framing::Struct128sl => 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> FrameProgress {
        let width = self.width();
        if self.prefix.len() < width {
            let take = (width - self.prefix.len()).min(bytes.len());
            self.prefix.extend_from_slice(&bytes[..take]);
        }
        let p = self.matcher.feed(bytes);
        self.fed += match p {
            FrameProgress::Done { used } | FrameProgress::Reply { used, .. } => used as u64,
            _ => bytes.len() as u64,
        };
        p
    }

    /// The most bytes the frame is expected to hold, for the time it earns.
    fn expected_len(&self) -> u64 {
        let want = self.matcher.want();
        let header = match want.framing {
            Framing::Length { .. } => 0,
            // The digits of any length.
            Framing::Decimal { .. } => 20,
            // Real headers are under 200 bytes.
            Framing::JsonHeader { .. } | Framing::BareJson { .. } => 1024,
            Framing::Struct128sl => STRUCT_LEN as u64,
        };
        self.width() as u64 + header + want.body.len()
    }

    /// The prefix and the header as decoded so far.
    fn decoded(&self) -> Vec<String> {
        let mut parts = Vec::new();
        let want = self.matcher.want();
        let format = match &want.framing {
            Framing::Length { prefix } | Framing::JsonHeader { prefix, .. } => Some(*prefix),
            Framing::Decimal { .. } | Framing::BareJson { .. } | Framing::Struct128sl => None,
        };
        if let Some(digits) = self.matcher.digits() {
            let digits = String::from_utf8_lossy(digits);
            parts.push(format!("length {digits} (in decimal digits)"));
        } else if let Some(format) = format {
            if let Decoded::Done(n, _) = format.decode(&self.prefix) {
                let what = match want.framing {
                    Framing::JsonHeader { .. } => "header length",
                    _ => "prefix",
                };
                parts.push(format!("{what} {n} (as {format})"));
            }
        }
        if let Some(h) = self.matcher.header() {
            parts.push(format!("header {}", header_text(h)));
        }
        parts
    }

    /// What was decoded so far, for a miss: the prefix, the header, the
    /// body's bytes that matched.
    fn so_far(&self) -> String {
        let mut parts = self.decoded();
        let seen = self.matcher.body_seen();
        if seen > 0 {
            parts.push(format!(
                "{seen} of the body's {} bytes as expected (MD5 {})",
                self.matcher.want().body.len(),
                self.matcher.body_digest()
            ));
        }
        match parts.is_empty() {
            true => String::new(),
            false => format!("\ndecoded so far: {}", parts.join("; ")),
        }
    }

    /// The transcript's line for a whole frame: its prefix, its header, its
    /// body by length and MD5.
    fn summary(&self) -> String {
        let mut parts = self.decoded();
        let len = self.matcher.want().body.len();
        parts.push(match len {
            0 => "an empty body".to_string(),
            _ => format!("body of {len} bytes, MD5 {}", self.matcher.body_digest()),
        });
        let mut text = format!("frame: {}", parts.join("; "));
        if self.unshown.0 > 0 {
            text.push_str(&format!(
                "; read in {} receives, the last {} ({} bytes) not shown one by one",
                self.reads, self.unshown.0, self.unshown.1
            ));
        }
        text
    }

    /// How the bytes were coming, for a miss on time.
    fn pace(&self, within: Duration, now: Instant) -> String {
        match self.first {
            Some((first, at_first)) if self.last > first => {
                let bytes = self.fed.saturating_sub(at_first);
                let secs = (self.last - first).as_secs_f64();
                let rate = format!(
                    "bytes came at {:.0} bytes a second ({bytes} in {secs:.1}s)",
                    bytes as f64 / secs
                );
                if now - self.last >= within {
                    format!(
                        "nothing more for {:.1}s after the last bytes (a stall); before it {rate}",
                        within.as_secs_f64()
                    )
                } else {
                    format!(
                        "{rate}, slower than the {:.0} bytes a second a long answer is waited for",
                        AnswerPace::SLOWEST
                    )
                }
            }
            _ => format!(
                "{} bytes came in one piece, then nothing more for {:.1}s",
                self.fed,
                (now - self.last).as_secs_f64()
            ),
        }
    }
}

/// A header the target sent, as compact JSON (re-encoded, so its
/// control characters are escaped), cut short when long.
fn header_text(h: &serde_json::Map<String, Value>) -> String {
    header_shown(Value::Object(h.clone()).to_string().as_bytes())
}

impl Session<'_> {
    /// Waits for the frame `want` on `conn`, feeding what is buffered and
    /// each receive to the matcher; what follows the frame stays buffered
    /// for the next step. With `pause`, the harness waits that long after
    /// each receive: a slow reader.
    pub(super) fn expect_frame(
        &mut self,
        conn: Conn,
        want: &FrameWant,
        or_end: bool,
        pause: Option<Duration>,
    ) -> StepResult {
        let within = self.timing.deadline(Deadline::Reply);
        let mut r = Reading::new(want);
        // What follows an earlier message is this expectation's to judge.
        self.link(conn)?.message_end = None;
        loop {
            let link = self.link(conn)?;
            if !link.buffered.is_empty() {
                match r.feed(&link.buffered) {
                    FrameProgress::Done { used } => {
                        link.buffered.drain(..used);
                        self.frame_done(conn, &r);
                        return Ok(());
                    }
                    FrameProgress::Mismatch(why) => {
                        link.buffered.clear();
                        // The rest of a wrong answer must not be taken for
                        // the start of the next one.
                        let flood = self.discard_answer(conn);
                        // A miss about the prefix already says what it read.
                        let so_far = match why {
                            FrameMiss::WrongLength { .. }
                            | FrameMiss::HeaderLength { .. }
                            | FrameMiss::WiderPrefix { .. }
                            | FrameMiss::DecimalLength { .. }
                            | FrameMiss::NotDigits { .. } => String::new(),
                            _ => r.so_far(),
                        };
                        let got = format!("{why}{so_far}{flood}");
                        return Err(frame_miss(want, or_end, got));
                    }
                    // The body is never kept: only what follows a frame is.
                    FrameProgress::NeedMore => link.buffered.clear(),
                    // The sender waits for the client's ready word: the
                    // harness, as the client, answers it, and reads on.
                    FrameProgress::Reply { used, bytes } => {
                        link.buffered.drain(..used);
                        self.run_stream(&StreamStep::Send {
                            conn,
                            data: bytes,
                            cut: Cut::Whole,
                        })?;
                        // An empty body is whole with the length.
                        if let FrameProgress::Done { .. } = r.feed(&[]) {
                            self.frame_done(conn, &r);
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            if let Some(end) = link.ended {
                return self.frame_ended(conn, want, &r, end, or_end);
            }
            let earned = self
                .timing
                .earned(usize::try_from(r.fed.min(r.expected_len())).unwrap_or(usize::MAX));
            let deadline = (r.last + within).min(r.started + within + earned);
            let now = Instant::now();
            if now >= deadline {
                let gone = self.target_gone();
                let waited = r.started.elapsed().as_secs_f64();
                let got = match r.fed {
                    0 => format!("nothing arrived within {waited:.1}s{gone}"),
                    _ => format!(
                        "{}; timed out after {waited:.1}s{gone}: {}{}",
                        short_words(&r),
                        r.pace(within, now),
                        r.so_far()
                    ),
                };
                return Err(frame_miss(want, or_end, got));
            }
            let got = match pause {
                Some(_) => self.receive_at_most(conn, deadline, SLOW_READ_PIECE)?,
                None => self.receive(conn, deadline)?,
            };
            if let (Some(pause), Received::Bytes(_)) = (pause, &got) {
                std::thread::sleep(pause);
            }
            let now = Instant::now();
            match got {
                Received::Nothing => {}
                Received::Bytes(n) => {
                    if r.first.is_none() {
                        r.first = Some((now, r.fed));
                    }
                    r.last = now;
                    r.reads += 1;
                    if r.reads <= READS_SHOWN {
                        let link = self.link(conn)?;
                        let event = Event::read(&link.buffered[link.buffered.len() - n..]);
                        self.record(Some(conn), event);
                    } else {
                        r.unshown.0 += 1;
                        r.unshown.1 += n as u64;
                    }
                }
                Received::End(End::Closed) => self.record(Some(conn), Event::Closed),
                Received::End(End::Reset) => self.record(Some(conn), Event::ResetByPeer),
            }
        }
    }

    /// Reads one frame on `conn` as each of `ways` at once, and records
    /// which it is (the first met), or that it is none of them, as the
    /// answer to `question`: an observation, never a miss. What follows
    /// the frame stays buffered for the next step; the rest of an answer
    /// that is none of them is dropped.
    pub(super) fn observe_frame(
        &mut self,
        conn: Conn,
        ways: &[(String, FrameWant)],
        question: &str,
    ) -> StepResult {
        let within = self.timing.deadline(Deadline::Reply);
        let mut live: Vec<(usize, Reading)> = ways
            .iter()
            .enumerate()
            .map(|(i, (_, want))| (i, Reading::new(want)))
            .collect();
        let mut last_miss = None;
        self.link(conn)?.message_end = None;
        let answer = loop {
            let link = self.link(conn)?;
            if !link.buffered.is_empty() {
                let mut met = None;
                let mut reply = None;
                live.retain_mut(|(i, r)| match r.feed(&link.buffered) {
                    FrameProgress::Done { used } => {
                        met = met.or(Some((*i, used)));
                        true
                    }
                    // Every way reads the same decimal length: the ready
                    // word is answered once, and they read on.
                    FrameProgress::Reply { used, bytes } => {
                        reply = reply.take().or(Some((used, bytes)));
                        true
                    }
                    FrameProgress::Mismatch(why) => {
                        last_miss = Some(why.to_string());
                        false
                    }
                    FrameProgress::NeedMore => true,
                });
                if let Some((used, bytes)) = reply {
                    link.buffered.drain(..used);
                    self.run_stream(&StreamStep::Send {
                        conn,
                        data: bytes,
                        cut: Cut::Whole,
                    })?;
                    continue;
                }
                if let Some((i, used)) = met {
                    link.buffered.drain(..used);
                    if let Some((_, r)) = live.iter().find(|(j, _)| *j == i) {
                        self.record(Some(conn), Event::note(r.summary()));
                    }
                    break ways[i].0.clone();
                }
                if live.is_empty() {
                    link.buffered.clear();
                    let flood = self.discard_answer(conn);
                    let why = last_miss.unwrap_or_default();
                    break format!("none of them ({why}{flood})");
                }
                link.buffered.clear();
            }
            if let Some(end) = link.ended {
                let how = match end {
                    End::Closed => "closed",
                    End::Reset => "reset",
                };
                break format!("none of them: the connection was {how} first");
            }
            let last = live.first().map_or_else(Instant::now, |(_, r)| r.last);
            let deadline = last + within;
            if Instant::now() >= deadline {
                break format!(
                    "none of them: nothing more came for {:.1}s",
                    within.as_secs_f64()
                );
            }
            match self.receive(conn, deadline)? {
                Received::Bytes(n) => {
                    let now = Instant::now();
                    for (_, r) in &mut live {
                        r.last = now;
                    }
                    let link = self.link(conn)?;
                    let event = Event::read(&link.buffered[link.buffered.len() - n..]);
                    self.record(Some(conn), event);
                }
                Received::Nothing => {}
                Received::End(End::Closed) => self.record(Some(conn), Event::Closed),
                Received::End(End::Reset) => self.record(Some(conn), Event::ResetByPeer),
            }
        };
        let note = format!("{question}: {answer}");
        self.record(Some(conn), Event::note(note.clone()));
        self.notes.push(note);
        Ok(())
    }

    /// Records a whole frame and notes, once per connection, who serves it.
    fn frame_done(&mut self, conn: Conn, r: &Reading) {
        self.record(Some(conn), Event::note(r.summary()));
        if let Some(header) = r.matcher.header() {
            self.domains.frame.headers.insert(conn, header.clone());
        }
        // A variant of the format a tolerant frame took is the subject of
        // another check: said once here, judged there.
        if let Some(variant) = r.matcher.tolerated() {
            let note = format!("{variant} (taken here; the check about the format judges it)");
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        if let (Peer::Launched(l), Some(link)) =
            (&mut *self.peer, self.domains.stream.links.get_mut(&conn))
        {
            // A reply just came, so whoever sent it is alive now.
            if !link.served_by_noted {
                link.served_by_noted = true;
                l.process().note_children();
            }
        }
    }

    /// The stream ended before the frame was whole: a miss that says where
    /// it stopped, or, with `or_end` and nothing of the frame received,
    /// the other legal outcome.
    fn frame_ended(
        &mut self,
        conn: Conn,
        want: &FrameWant,
        r: &Reading,
        end: End,
        or_end: bool,
    ) -> StepResult {
        let how = match end {
            End::Closed => "the connection was closed",
            End::Reset => "the connection was reset",
        };
        if or_end && r.fed == 0 {
            self.record(
                Some(conn),
                Event::note(format!("{how} instead of the frame: an outcome allowed")),
            );
            return Ok(());
        }
        let gone = self.target_gone();
        let got = format!(
            "{}; {how} after {:.1}s{gone}{}",
            short_words(r),
            r.started.elapsed().as_secs_f64(),
            r.so_far()
        );
        Err(frame_miss(want, or_end, got))
    }
}

/// Where the frame stopped, in its own terms.
fn short_words(r: &Reading) -> String {
    match r.matcher.cut_short() {
        Some(why) => why.to_string(),
        None => "the answer stopped".to_string(),
    }
}

/// A miss of a frame: what arrived, or, where an end was allowed too, both
/// outcomes and what came instead.
fn frame_miss(want: &FrameWant, or_end: bool, got: String) -> StepError {
    if or_end {
        miss(
            Level::Must,
            format!("expected {want}, or an end of stream; got: {got}"),
        )
    } else {
        miss(Level::Must, got)
    }
}
