//! Reading stream connections: receiving into a link's buffer, waiting
//! until an expectation is met, and wording what arrived when it is not
//! (different bytes, an end too soon, too late, a flood).

use std::io::{self, Read};
use std::time::{Duration, Instant};

use super::link::{Conn, End, MessageEnd, READ_CHUNK};
use super::stream::{not_open, StreamStep};
use super::{fault, miss, miss_with_hint, StepError, StepResult};
use crate::conversations::session::{Peer, Session};
use crate::conversations::transcript::{Event, FromBytes};
use crate::judge::expect::{progress, skipped, skipped_words, Progress, Want};
use crate::judge::show;
use crate::kernel::confirm::Watch;
use crate::kernel::net;
use crate::model::level::Level;
use crate::model::timing::{AnswerPace, Deadline, Timing};

/// What one receive brought.
pub(crate) enum Received {
    Nothing,
    Bytes(usize),
    End(End),
}

impl Session<'_> {
    /// Receives once into the link's buffer, waiting at most until
    /// `deadline`, and records what came.
    pub(crate) fn fill(&mut self, conn: Conn, deadline: Instant) -> StepResult {
        if self.link(conn)?.ended.is_some() {
            return Ok(());
        }
        let event = match self.receive(conn, deadline)? {
            Received::Nothing => return Ok(()),
            Received::Bytes(n) => {
                let buffered = &self.link(conn)?.buffered;
                Event::read(&buffered[buffered.len() - n..])
            }
            Received::End(End::Closed) => Event::Closed,
            Received::End(End::Reset) => Event::ResetByPeer,
        };
        self.record(Some(conn), event);
        Ok(())
    }

    /// Receives once into `conn`'s buffer, waiting at most until
    /// `deadline`, without recording: [`Session::fill`] records every
    /// receive, a frame only its first few (its body is counted).
    pub(crate) fn receive(&mut self, conn: Conn, deadline: Instant) -> Result<Received, StepError> {
        self.receive_at_most(conn, deadline, usize::MAX)
    }

    /// [`Session::receive`] taking at most `most` bytes: a slow reader's
    /// small receives.
    pub(crate) fn receive_at_most(
        &mut self,
        conn: Conn,
        deadline: Instant,
        most: usize,
    ) -> Result<Received, StepError> {
        let Some(link) = self.domains.stream.links.get_mut(&conn) else {
            return Err(not_open(conn));
        };
        if let Some(end) = link.ended {
            return Ok(Received::End(end));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Received::Nothing);
        }
        let chunk = &mut self.domains.stream.scratch;
        let _ = link
            .stream
            // set_read_timeout refuses a zero timeout.
            .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        let most = most.min(chunk.len());
        match link.stream.read(&mut chunk[..most]) {
            Ok(0) => {
                link.ended = Some(End::Closed);
                Ok(Received::End(End::Closed))
            }
            Ok(n) => {
                net::ack_now(&link.stream);
                link.buffered.extend_from_slice(&chunk[..n]);
                Ok(Received::Bytes(n))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(Received::Nothing)
            }
            Err(e) if net::is_peer_gone(&e) => {
                link.ended = Some(End::Reset);
                Ok(Received::End(End::Reset))
            }
            Err(e) => Err(fault(format!("receiving failed: {e}"))),
        }
    }

    pub(super) fn expect(&mut self, conn: Conn, want: &Want, level: Level) -> StepResult {
        let within = match want {
            Want::End => self.timing.deadline(Deadline::Eof),
            _ => self.timing.deadline(Deadline::Reply),
        };
        let served = match want {
            Want::Served(request) => Some(request.len()),
            _ => None,
        };
        self.wait_for(conn, want, within, served.is_none())
            .map_err(|e| e.at_level(level))?;
        if let Some(echo_len) = served {
            let link = self.link(conn)?;
            let got = std::mem::take(&mut link.buffered).len();
            // An echo of the request's length is the whole answer; after
            // anything else (a greeting before it, a newline after it) the
            // rest of the answer is no expectation's, and a flood is not a
            // reply that ends.
            if got != echo_len {
                let flood = self.discard_answer(conn);
                if !flood.is_empty() {
                    return Err(miss(level, format!("the answer never ended{flood}")));
                }
            }
        }
        if let (Peer::Launched(l), Some(link)) =
            (&mut *self.peer, self.domains.stream.links.get_mut(&conn))
        {
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
            let at = self.at;
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
                at,
            });
        }
        Ok(())
    }

    /// Judges what followed a whole message on `conn`, if one is still to
    /// be judged: bytes that arrived within the quiet moment after it (or
    /// that already wait to be read, once that moment has passed) are a
    /// miss of the expectation that matched it, kept for the outcome.
    pub(crate) fn judge_message_end(&mut self, conn: Conn) {
        let Some(end) = self
            .domains
            .stream
            .links
            .get_mut(&conn)
            .and_then(|l| l.message_end.take())
        else {
            return;
        };
        // One short read at least, for bytes already in the socket.
        let deadline = end.until.max(Instant::now() + Timing::FAST_POLL);
        loop {
            let Some(link) = self.domains.stream.links.get_mut(&conn) else {
                return;
            };
            if !link.buffered.is_empty() {
                let extra = std::mem::take(&mut link.buffered);
                self.late_miss(end.level, end.step, end.at, followed_by(&extra));
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
    ///
    /// `within` bounds the wait for the first byte and every pause after
    /// one (a stall); a long answer that keeps coming is waited for as long
    /// as it keeps the slowest pace allowed ([`crate::model::timing::AnswerPace`]).
    pub(super) fn wait_for(
        &mut self,
        conn: Conn,
        want: &Want,
        within: Duration,
        consume: bool,
    ) -> StepResult {
        let started = Instant::now();
        let mut pace = Pace::new(started);
        // What follows an earlier message is this expectation's to judge.
        self.link(conn)?.message_end = None;
        loop {
            let link = self.link(conn)?;
            let received = link.buffered.len();
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
                }
            }
            // An answer earns time by the bytes it is expected to hold, not
            // by what a flood sends.
            let earned = self.timing.earned(received.min(expected_len(want)));
            let deadline = (pace.last + within).min(started + within + earned);
            // Bytes far past what the request could bring back without it
            // among them: a flood is not read without end.
            let enough = received >= expected_len(want).saturating_add(READ_CHUNK);
            if Instant::now() >= deadline || enough {
                let now = Instant::now();
                let words = pace.words(received, within, now);
                let late = self.too_late(conn, want, started.elapsed(), &words, consume);
                // A steady answer that came too slowly: the hint says how
                // fast, against what the deadline needed.
                let expected = expected_len(want);
                let allowed = within + self.timing.earned(expected);
                return Err(match pace.steady_rate(received, within, now) {
                    Some(rate) if received < expected => {
                        let needed = AnswerPace::SLOWEST / self.timing.scale();
                        advise(late, too_slow(rate, needed, expected, allowed))
                    }
                    _ => late,
                });
            }
            self.fill(conn, deadline)?;
            let now = Instant::now();
            if self.link(conn)?.buffered.len() > received {
                pace.arrived(received, now);
            }
        }
    }

    /// What arrived cannot meet `want`.
    pub(super) fn mismatch(&mut self, conn: Conn, want: &Want, consume: bool) -> StepError {
        if let Want::OneOf(_) = want {
            let end = self.link(conn).ok().and_then(|l| l.ended);
            let then = end.map_or(String::new(), |end| format!(", then {}", ended(end)));
            return self.none_held(conn, want, &then, consume);
        }
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
        let detail = format!(
            "different bytes arrived\n{}{flood}",
            show::compare(&expected, &shown).trim_end()
        );
        with_skipped(detail, &expected, &shown)
    }

    /// The stream ended before `want` was met.
    pub(super) fn ended_short(&mut self, conn: Conn, want: &Want, end: End) -> StepError {
        if let Want::OneOf(_) = want {
            let gone = self.target_gone();
            let then = format!(", then {}{gone}", ended(end));
            return self.none_held(conn, want, &then, true);
        }
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
        if let Want::Served(_) = want {
            return miss(
                Level::Must,
                format!("{how} before any reply{gone}: the server no longer serves"),
            );
        }
        let detail = format!(
            "{how} after {} of {} bytes{gone}\n{}",
            got.len(),
            expected.len(),
            show::compare(&expected, &got)
        );
        with_skipped(detail, &expected, &got)
    }

    /// The deadline passed before `want` was met: `waited` in all, with
    /// `pace` saying how the bytes were coming.
    pub(super) fn too_late(
        &mut self,
        conn: Conn,
        want: &Want,
        waited: Duration,
        pace: &str,
        consume: bool,
    ) -> StepError {
        if let Want::OneOf(_) = want {
            let Ok(link) = self.link(conn) else {
                return not_open(conn);
            };
            let local = link.stream.local_addr().ok();
            let silent = link.buffered.is_empty();
            let gone = self.target_gone();
            let within = waited.as_secs_f64();
            let then = match silent {
                true => format!(
                    " within {within:.1}s{gone}: the connection is still open{}",
                    self.still_open_by(local)
                ),
                false => format!(" in {within:.1}s{gone}; {pace}"),
            };
            return self.none_held(conn, want, &then, consume);
        }
        let Ok(link) = self.link(conn) else {
            return not_open(conn);
        };
        if let Want::Served(_) = want {
            let got = std::mem::take(&mut link.buffered);
            let gone = self.target_gone();
            return miss(
                Level::Must,
                match got.len() {
                    0 => format!(
                        "no reply within {:.1}s{gone}: the server no longer answers",
                        waited.as_secs_f64()
                    ),
                    n => format!(
                        "no reply to the request within {:.1}s{gone}: {n} bytes arrived, \
                         without the request's bytes (in either letter case) among them: {}",
                        waited.as_secs_f64(),
                        show::quoted(&got, 48)
                    ),
                },
            );
        }
        let Some(expected) = want.bytes() else {
            let local = link.stream.local_addr().ok();
            return miss(
                Level::Must,
                format!(
                    "no end of stream within {:.1}s: the connection is still open{}",
                    waited.as_secs_f64(),
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
            0 => "nothing arrived: the target sent nothing".to_string(),
            _ => format!("the answer stopped short or is coming too slowly: {pace}"),
        };
        miss(
            Level::Must,
            format!(
                "timed out after {:.1}s with {} of {} bytes{gone}; {how}\n{}",
                waited.as_secs_f64(),
                got.len(),
                expected.len(),
                show::compare(&expected, &got)
            ),
        )
    }

    /// No alternative of a [`Want::OneOf`] held: the miss names every one
    /// of them, then what arrived and, in `then`, how the wait ended. With
    /// `consume`, the rest of a wrong answer is read and dropped, so that
    /// it is not taken for the start of the next one.
    fn none_held(&mut self, conn: Conn, want: &Want, then: &str, consume: bool) -> StepError {
        let Ok(link) = self.link(conn) else {
            return not_open(conn);
        };
        let got = match consume {
            true => std::mem::take(&mut link.buffered),
            false => link.buffered.clone(),
        };
        let open = link.ended.is_none();
        let arrived = match got.len() {
            0 => "nothing".to_string(),
            n => format!("{n} bytes {}", show::quoted(&got, 48)),
        };
        let flood = match consume && open && !got.is_empty() {
            true => self.discard_answer(conn),
            false => String::new(),
        };
        miss(
            Level::Must,
            format!("expected {want}; got {arrived}{then}{flood}"),
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
        let mut watch = self
            .domains
            .stream
            .links
            .get(&conn)
            .map(|l| Watch::new(&l.stream));
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
            match self.domains.stream.links.get(&conn) {
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

/// A miss for an answer that differs from `expected`; when `got` skips
/// stretches of it, the miss names them and advises on lost replies.
fn with_skipped(detail: String, expected: &[u8], got: &[u8]) -> StepError {
    let Some(gaps) = skipped(expected, got) else {
        return miss(Level::Must, detail);
    };
    let which = skipped_words(&gaps);
    miss_with_hint(
        Level::Must,
        format!(
            "{}\nthe answer skips {which} of the {} sent: the replies to those \
             pieces were lost, and what came after them was answered",
            detail.trim_end(),
            expected.len()
        ),
        format!(
            "the replies to earlier pieces were lost ({which} of the {} sent were never \
             answered): a reply waiting to be sent was replaced when the next piece \
             arrived; keep every reply not yet sent, in order (append to the \
             connection's outgoing bytes), and send them all{{crash}}",
            expected.len()
        ),
    )
}

/// `late` with `hint` as its step's advice (a fault stays a fault).
fn advise(late: StepError, hint: String) -> StepError {
    match late {
        StepError::Missed { level, detail, .. } => StepError::Missed {
            level,
            detail,
            hint: Some(hint),
        },
        fault => fault,
    }
}

/// Advice for an answer that kept coming at `rate` bytes a second, when
/// `expected` bytes were waited for `allowed` in all, as long as they came
/// at `needed` bytes a second or faster.
fn too_slow(rate: f64, needed: f64, expected: usize, allowed: Duration) -> String {
    format!(
        "the server kept receiving and answering, but too slowly: its answer came at \
         {rate:.0} bytes a second, and an answer is waited for only while it comes at \
         {needed:.0} bytes a second or faster (at its pace the {expected} bytes expected \
         would take {:.1}s, and {:.1}s were allowed); answer each piece as soon as it \
         arrives, without pauses (a sleep in the loop, small sends with waits between)",
        expected as f64 / rate,
        allowed.as_secs_f64()
    )
}

/// How many bytes `want` expects (for an end of stream, none).
fn expected_len(want: &Want) -> usize {
    match want {
        Want::Served(request) => request.len(),
        Want::OneOf(alternatives) => alternatives.iter().map(expected_len).max().unwrap_or(0),
        other => other.bytes().map_or(0, <[u8]>::len),
    }
}

/// How a stream ended, in a miss's words.
fn ended(end: End) -> &'static str {
    match end {
        End::Closed => "the connection was closed",
        End::Reset => "the connection was reset",
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

/// How the bytes of an answer were coming, for a miss that says whether it
/// stalled or came too slowly.
struct Pace {
    /// When the first byte that was waited for arrived.
    first: Option<Instant>,
    /// When the last bytes arrived (the wait's start before any did).
    last: Instant,
    /// Bytes buffered when the first of them arrived.
    at_first: usize,
}

impl Pace {
    fn new(started: Instant) -> Pace {
        Pace {
            first: None,
            last: started,
            at_first: 0,
        }
    }

    /// Bytes arrived at `now`, `before` of them having been there already.
    fn arrived(&mut self, before: usize, now: Instant) {
        if self.first.is_none() {
            self.first = Some(now);
            self.at_first = before;
        }
        self.last = now;
    }

    /// Bytes a second of an answer still coming steadily at `now` (no
    /// stall of `within`), once at least two pieces of it arrived.
    fn steady_rate(&self, received: usize, within: Duration, now: Instant) -> Option<f64> {
        let first = self.first.filter(|f| self.last > *f)?;
        if now - self.last >= within {
            return None;
        }
        let bytes = received.saturating_sub(self.at_first);
        Some(bytes as f64 / (self.last - first).as_secs_f64())
    }

    /// In words: a stall, or the pace of a steady answer.
    fn words(&self, received: usize, within: Duration, now: Instant) -> String {
        let rate = match self.first {
            Some(first) if self.last > first => {
                let bytes = received.saturating_sub(self.at_first);
                let secs = (self.last - first).as_secs_f64();
                format!(
                    "bytes came at {:.0} bytes a second ({bytes} in {secs:.1}s)",
                    bytes as f64 / secs
                )
            }
            _ => {
                return format!(
                    "{received} bytes came in one piece, then nothing more for {:.1}s",
                    (now - self.last).as_secs_f64()
                )
            }
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITHIN: Duration = Duration::from_secs(2);

    #[test]
    fn an_answer_that_stopped_coming_is_called_a_stall_with_its_pace_before() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        pace.arrived(0, t0 + Duration::from_millis(10));
        pace.arrived(20_000, t0 + Duration::from_millis(1010));
        let words = pace.words(40_000, WITHIN, t0 + Duration::from_millis(3010));
        assert!(words.contains("(a stall)"), "{words}");
        assert!(words.contains("40000 in 1.0s"), "{words}");
    }

    #[test]
    fn an_answer_still_coming_too_slowly_says_how_fast() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        pace.arrived(0, t0 + Duration::from_secs(1));
        pace.arrived(1, t0 + Duration::from_secs(2));
        let words = pace.words(2, WITHIN, t0 + Duration::from_millis(2100));
        assert!(words.contains("2 bytes a second"), "{words}");
        assert!(
            words.contains("slower than the 4000 bytes a second"),
            "{words}"
        );
        assert_eq!(
            pace.steady_rate(2, WITHIN, t0 + Duration::from_millis(2100)),
            Some(2.0)
        );
    }

    #[test]
    fn a_stalled_answer_has_no_steady_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        pace.arrived(0, t0 + Duration::from_secs(1));
        pace.arrived(1, t0 + Duration::from_secs(2));
        assert_eq!(
            pace.steady_rate(2, WITHIN, t0 + Duration::from_secs(5)),
            None
        );
    }

    #[test]
    fn advice_for_a_slow_answer_says_its_pace_and_the_pace_needed() {
        let hint = too_slow(2048.0, 4000.0, 102_400, Duration::from_secs_f64(27.6));
        assert!(hint.contains("came at 2048 bytes a second"), "{hint}");
        assert!(hint.contains("4000 bytes a second or faster"), "{hint}");
        assert!(
            hint.contains("would take 50.0s, and 27.6s were allowed"),
            "{hint}"
        );
    }
}
