//! Reading stream connections: receiving into a link's buffer, waiting
//! until an expectation is met, and wording what arrived when it is not
//! (different bytes, an end too soon, too late, a flood).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::link::{Conn, End, MessageEnd};
use super::stream::{not_open, StreamStep};
use super::{fault, miss, StepError, StepResult};
use crate::confirm::Watch;
use crate::expect::{progress, Progress, Want};
use crate::level::Level;
use crate::net;
use crate::session::{Peer, Session};
use crate::show;
use crate::timing::{Deadline, Timing};
use crate::transcript::Event;

impl Session<'_> {
    /// Receives once into the link's buffer, waiting at most until `deadline`.
    pub(crate) fn fill(&mut self, conn: Conn, deadline: Instant) -> StepResult {
        let transcript = self.transcript.clone();
        let Some(link) = self.links.get_mut(&conn) else {
            return Err(not_open(conn));
        };
        if link.ended.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let chunk = &mut self.scratch;
        let _ = link
            .stream
            // set_read_timeout refuses a zero timeout.
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        let event = match link.stream.read(chunk) {
            Ok(0) => {
                link.ended = Some(End::Closed);
                Event::Closed
            }
            Ok(n) => {
                net::ack_now(&link.stream);
                link.buffered.extend_from_slice(&chunk[..n]);
                Event::read(&chunk[..n])
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) if net::is_peer_gone(&e) => {
                link.ended = Some(End::Reset);
                Event::ResetByPeer
            }
            Err(e) => return Err(fault(format!("receiving failed: {e}"))),
        };
        if let Ok(mut t) = transcript.lock() {
            t.record(Some(conn), event);
        }
        Ok(())
    }

    pub(super) fn expect(&mut self, conn: Conn, want: &Want, level: Level) -> StepResult {
        let within = match want {
            Want::End => self.timing.deadline(Deadline::Eof),
            _ => self.timing.deadline(Deadline::Reply),
        };
        self.wait_for(conn, want, within, true)
            .map_err(|e| e.at_level(level))?;
        if let (Peer::Launched(l), Some(link)) = (&mut *self.peer, self.links.get_mut(&conn)) {
            // A reply just came, so whoever sent it is alive now: a child
            // serving this connection is seen before it exits. Once per
            // connection is enough.
            if !link.served_by_noted {
                link.served_by_noted = true;
                l.process().note_children();
            }
        }
        if let Want::Message(_) = want {
            // Nothing may follow the message. What came with it is judged
            // now; what comes within the quiet moment after it once the
            // harness has answered, so the harness's own waiting never
            // decides whether a client's receive times out.
            let until = Instant::now() + self.timing.deadline(Deadline::Quiet);
            let link = self.link(conn)?;
            if !link.buffered.is_empty() {
                let extra = std::mem::take(&mut link.buffered);
                return Err(miss(level, followed_by(&extra)));
            }
            link.message_end = Some(MessageEnd {
                level,
                until,
                step: StreamStep::Expect {
                    conn,
                    want: want.clone(),
                    level,
                }
                .to_string(),
            });
        }
        Ok(())
    }

    /// Judges what followed a whole message on `conn`, if one is still to
    /// be judged: bytes that arrived within the quiet moment after it (or
    /// that already wait to be read, once that moment has passed) are a
    /// miss of the expectation that matched it, kept for the outcome.
    pub(crate) fn judge_message_end(&mut self, conn: Conn) {
        let Some(end) = self.links.get_mut(&conn).and_then(|l| l.message_end.take()) else {
            return;
        };
        // One short read at least, for bytes already in the socket.
        let deadline = end.until.max(Instant::now() + Timing::FAST_POLL);
        loop {
            let Some(link) = self.links.get_mut(&conn) else {
                return;
            };
            if !link.buffered.is_empty() {
                let extra = std::mem::take(&mut link.buffered);
                self.late_miss(end.level, end.step, followed_by(&extra));
                return;
            }
            if link.ended.is_some() || Instant::now() >= deadline {
                return;
            }
            if self.fill(conn, deadline).is_err() {
                return;
            }
        }
    }

    /// Whether the next bytes on `conn` are `message`, taken when they are;
    /// `None` when the stream ended or the reply deadline passed first.
    pub(crate) fn next_bytes_are(
        &mut self,
        conn: Conn,
        message: &[u8],
    ) -> Result<Option<bool>, StepError> {
        let deadline = Instant::now() + self.timing.deadline(Deadline::Reply);
        let want = Want::Bytes(message.to_vec());
        self.link(conn)?.message_end = None;
        loop {
            let link = self.link(conn)?;
            match progress(&want, &link.buffered, link.ended.is_some()) {
                Progress::Done { consumed } => {
                    link.buffered.drain(..consumed);
                    return Ok(Some(true));
                }
                Progress::Mismatch { .. } => return Ok(Some(false)),
                Progress::NeedMore if link.ended.is_some() || Instant::now() >= deadline => {
                    return Ok(None)
                }
                Progress::NeedMore => {}
            }
            self.fill(conn, deadline)?;
        }
    }

    /// Waits until `want` holds on `conn`. With `consume`, matched bytes are
    /// taken from the buffer. A miss is a readable account of what arrived.
    pub(super) fn wait_for(
        &mut self,
        conn: Conn,
        want: &Want,
        within: Duration,
        consume: bool,
    ) -> StepResult {
        let deadline = Instant::now() + within;
        // What follows an earlier message is this expectation's to judge.
        self.link(conn)?.message_end = None;
        loop {
            let link = self.link(conn)?;
            match progress(want, &link.buffered, link.ended.is_some()) {
                Progress::Done { consumed } => {
                    if consume {
                        link.buffered.drain(..consumed);
                    }
                    return Ok(());
                }
                Progress::Mismatch { .. } => return Err(self.mismatch(conn, want, consume)),
                Progress::NeedMore => {
                    if let Some(end) = link.ended {
                        return Err(self.ended_short(conn, want, end));
                    }
                    if Instant::now() >= deadline {
                        return Err(self.too_late(conn, want, within, consume));
                    }
                }
            }
            self.fill(conn, deadline)?;
        }
    }

    /// What arrived cannot meet `want`.
    pub(super) fn mismatch(&mut self, conn: Conn, want: &Want, consume: bool) -> StepError {
        let Ok(link) = self.link(conn) else {
            return not_open(conn);
        };
        let Some(expected) = want.bytes() else {
            let got = if consume {
                std::mem::take(&mut link.buffered)
            } else {
                link.buffered.clone()
            };
            return miss(
                Level::Must,
                format!(
                    "expected end of stream, but {} more bytes arrived: {}",
                    got.len(),
                    show::quoted(&got, 48)
                ),
            );
        };
        let expected = expected.to_vec();
        let shown = link.buffered[..link.buffered.len().min(expected.len() + 16)].to_vec();
        // The rest of a wrong answer must not be taken for the start of the
        // next one.
        let flood = if consume {
            self.discard_answer(conn)
        } else {
            String::new()
        };
        miss(
            Level::Must,
            format!(
                "different bytes arrived\n{}{flood}",
                show::compare(&expected, &shown).trim_end()
            ),
        )
    }

    /// The stream ended before `want` was met.
    pub(super) fn ended_short(&mut self, conn: Conn, want: &Want, end: End) -> StepError {
        let Ok(link) = self.link(conn) else {
            return not_open(conn);
        };
        let got = std::mem::take(&mut link.buffered);
        let expected = want.bytes().unwrap_or_default().to_vec();
        let how = match end {
            End::Closed => "the connection was closed",
            End::Reset => "the connection was reset",
        };
        let gone = self.target_gone();
        miss(
            Level::Must,
            format!(
                "{how} after {} of {} bytes{gone}\n{}",
                got.len(),
                expected.len(),
                show::compare(&expected, &got)
            ),
        )
    }

    /// The deadline passed before `want` was met.
    pub(super) fn too_late(
        &mut self,
        conn: Conn,
        want: &Want,
        within: Duration,
        consume: bool,
    ) -> StepError {
        let Ok(link) = self.link(conn) else {
            return not_open(conn);
        };
        let Some(expected) = want.bytes() else {
            let local = link.stream.local_addr().ok();
            return miss(
                Level::Must,
                format!(
                    "no end of stream within {:.1}s: the connection is still open{}",
                    within.as_secs_f64(),
                    self.still_open_by(local)
                ),
            );
        };
        let expected = expected.to_vec();
        let got = link.buffered.clone();
        if consume {
            link.buffered.clear();
        }
        let gone = self.target_gone();
        let how = match got.len() {
            0 => "nothing arrived: the target sent nothing",
            _ => "the answer stopped short or is coming too slowly",
        };
        miss(
            Level::Must,
            format!(
                "timed out after {:.1}s with {} of {} bytes{gone}; {how}\n{}",
                within.as_secs_f64(),
                got.len(),
                expected.len(),
                show::compare(&expected, &got)
            ),
        )
    }

    /// Reads and drops what arrives until the target has nothing left to
    /// answer, bounded by the reply deadline: nothing more came within a
    /// poll after the kernel showed the target's end with nothing unread
    /// and nothing on its way to the harness. Where the kernel does not
    /// show it, quiet for the quiet deadline stands in.
    pub(super) fn discard_answer(&mut self, conn: Conn) -> String {
        let started = Instant::now();
        let give_up = started + self.timing.deadline(Deadline::Reply);
        let quiet = self.timing.deadline(Deadline::Quiet);
        let mut watch = self.links.get(&conn).map(|l| Watch::new(&l.stream));
        let mut dropped = 0usize;
        loop {
            let Ok(link) = self.link(conn) else {
                return String::new();
            };
            dropped += link.buffered.len();
            link.buffered.clear();
            let now = Instant::now();
            if link.ended.is_some() {
                return String::new();
            }
            if now >= give_up {
                return format!(
                    "\nthe bytes kept coming: {dropped} bytes in {:.1}s without a pause \
                     (the target floods); they were discarded",
                    started.elapsed().as_secs_f64()
                );
            }
            let answered = watch.as_mut().and_then(|w| w.answered());
            let wait = match answered {
                None => quiet,
                Some(_) => Timing::FAST_POLL,
            };
            let _ = self.fill(conn, (now + wait).min(give_up));
            match self.links.get(&conn) {
                Some(l)
                    if l.buffered.is_empty() && l.ended.is_none() && answered != Some(false) =>
                {
                    return String::new()
                }
                Some(_) => {}
                None => return String::new(),
            }
        }
    }
}

/// A miss's words for bytes that followed a whole message.
fn followed_by(extra: &[u8]) -> String {
    format!(
        "the message was followed by {} more bytes: {}",
        extra.len(),
        show::quoted(extra, 48)
    )
}
