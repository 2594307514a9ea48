//! Steps on stream connections: connect or accept, send with a cut, expect
//! bytes or the end, observe, half-close, reset, close, each on a
//! [`Link`] the session keeps. This module holds the steps, how they print
//! and how each is dispatched and sent; opening connections is
//! `stream_open.rs`'s, reading and wording what arrived `stream_read.rs`'s.
//! Whether the bytes so far meet an expectation is
//! [`crate::judge::expect::progress`]'s to say.

use std::fmt;
use std::io::{self, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use super::link::{join_writer, Conn, Link, StreamState};
use super::writer::{Shared, Writer};
use super::{fault, miss, Domain, Runs, StepError, StepResult};
use crate::conversations::session::Session;
use crate::conversations::transcript::{Event, FromBytes};
use crate::judge::expect::Want;
use crate::judge::show;
use crate::kernel::confirm::Watch;
use crate::kernel::net;
use crate::model::cut::Cut;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Timing};

/// A step on a stream connection.
#[derive(Clone, PartialEq, Debug)]
pub enum StreamStep {
    /// Connect to the target with `TCP_NODELAY`; `small_buffers` also asks
    /// for the smallest socket buffers the kernel allows.
    Connect { conn: Conn, small_buffers: bool },
    /// Accept the next connection from a client under test.
    Accept { conn: Conn },
    /// Write `data` under `cut`. Writing goes on in the background while
    /// later steps read, so a target that answers as it reads never
    /// deadlocks against the harness.
    Send { conn: Conn, data: Vec<u8>, cut: Cut },
    /// Wait for `want`; a miss weighs `level` (capped by the check's level).
    Expect {
        conn: Conn,
        want: Want,
        level: Level,
    },
    /// Look, without consuming, whether `want` arrives within `within`, and
    /// record the answer to `question` as an observation.
    Observe {
        conn: Conn,
        want: Want,
        within: Deadline,
        question: String,
        /// Whether the answer is one of the check's observations; a wait
        /// that only paces the check (the server done with a connection
        /// before its CPU is measured) is kept to the transcript.
        noted: bool,
    },
    /// Shut down the harness's sending side (`shutdown(SHUT_WR)`).
    ShutdownWrite { conn: Conn },
    /// Abort with a reset: `SO_LINGER` zero, then close.
    Reset { conn: Conn },
    /// Close normally.
    Close { conn: Conn },
    /// Close; but when the target closed its side first, reset instead:
    /// the side that closes first waits out TIME_WAIT on its port, and a
    /// server that exits after one client (and binds a fixed port without
    /// SO_REUSEADDR) could not be started again on it for a minute. A
    /// reset ends the target's closing connection at once.
    Release { conn: Conn },
    /// Expect that no further connection arrives within `within`.
    ExpectNoConnection { within: Deadline, level: Level },
}

impl StreamStep {
    pub fn needs_process(&self) -> bool {
        false
    }
}

impl fmt::Display for StreamStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamStep::Connect {
                conn,
                small_buffers,
            } => {
                write!(f, "connect {conn} (TCP_NODELAY")?;
                if *small_buffers {
                    f.write_str(", smallest buffers")?;
                }
                f.write_str(")")
            }
            StreamStep::Accept { conn } => write!(f, "accept {conn} from the client"),
            StreamStep::Send { conn, data, cut } => {
                write!(f, "send on {conn} {}, cut: {cut}", show::sized(data, 48))
            }
            StreamStep::Expect { conn, want, level } => {
                write!(f, "expect on {conn} {want}")?;
                if *level != Level::Must {
                    write!(f, " [{level}]")?;
                }
                Ok(())
            }
            StreamStep::Observe {
                conn,
                want,
                question,
                ..
            } => write!(f, "observe on {conn} {want}: {question}"),
            StreamStep::ShutdownWrite { conn } => write!(f, "half-close {conn} (shutdown write)"),
            StreamStep::Reset { conn } => write!(f, "reset {conn} (SO_LINGER 0, close)"),
            StreamStep::Close { conn } => write!(f, "close {conn}"),
            StreamStep::Release { conn } => write!(
                f,
                "close {conn} (a reset if the target closed first, so its port is free again)"
            ),
            StreamStep::ExpectNoConnection { .. } => f.write_str("expect no other connection"),
        }
    }
}

impl Domain for StreamStep {
    type State = StreamState;
}

impl Runs<StreamStep> for Session<'_> {
    fn run(&mut self, step: &StreamStep) -> StepResult {
        self.run_stream(step)
    }

    fn close(&mut self) {
        self.close_all();
    }
}

impl Session<'_> {
    pub(crate) fn run_stream(&mut self, step: &StreamStep) -> StepResult {
        match step {
            StreamStep::Connect {
                conn,
                small_buffers,
            } => self.connect(*conn, *small_buffers),
            StreamStep::Accept { conn } => self.accept(*conn),
            StreamStep::Send { conn, data, cut } => self.send(*conn, data, cut),
            StreamStep::Expect { conn, want, level } => self.expect(*conn, want, *level),
            StreamStep::Observe {
                conn,
                want,
                within,
                question,
                noted,
            } => {
                let seen = match self.wait_for(*conn, want, self.timing.deadline(*within), false) {
                    Ok(()) => true,
                    Err(StepError::Missed { .. }) => false,
                    Err(f) => return Err(f),
                };
                let note = format!("{question}: {}", if seen { "yes" } else { "no" });
                self.record(Some(*conn), Event::note(note.clone()));
                if *noted {
                    self.notes.push(note);
                }
                Ok(())
            }
            StreamStep::ShutdownWrite { conn } => {
                self.judge_message_end(*conn);
                let link = self.link(*conn)?;
                join_writer(link);
                let r = net::shutdown_write(&link.stream);
                self.record(Some(*conn), Event::ShutdownWrite);
                r.map_err(|e| {
                    let why = match e.kind() {
                        // The target reset the connection first: that is
                        // what to report, not the half-close it stopped.
                        io::ErrorKind::NotConnected => format!(
                            "the {} had already reset the connection, so it could not be \
                             half-closed",
                            self.who()
                        ),
                        _ => format!("could not half-close: {e}"),
                    };
                    miss(Level::Must, why)
                })
            }
            StreamStep::Reset { conn } => {
                self.judge_message_end(*conn);
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                let r = net::reset(link.stream);
                self.record(Some(*conn), Event::SentReset);
                r.map_err(|e| miss(Level::Must, format!("could not reset: {e}")))
            }
            StreamStep::Close { conn } => {
                self.judge_message_end(*conn);
                let link = self.take_link(*conn)?;
                self.end_link(link, false);
                self.record(Some(*conn), Event::note("closed by the harness"));
                Ok(())
            }
            StreamStep::Release { conn } => {
                self.judge_message_end(*conn);
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                if net::peer_closed(&link.stream) {
                    let r = net::reset(link.stream);
                    self.record(
                        Some(*conn),
                        Event::note("the target closed first: reset by the harness"),
                    );
                    return r.map_err(|e| miss(Level::Must, format!("could not reset: {e}")));
                }
                self.end_link(link, false);
                self.record(Some(*conn), Event::note("closed by the harness"));
                Ok(())
            }
            StreamStep::ExpectNoConnection { within, level } => {
                let deadline = Instant::now() + self.timing.deadline(*within);
                match self.accept_while(|_| Instant::now() < deadline) {
                    Ok(Some((stray, peer))) => {
                        // Kept, and ended with the rest: dropped now, the
                        // harness would close first and keep its port.
                        self.domains.stream.strays.push(stray);
                        Err(miss(
                            *level,
                            format!(
                            "the client opened another connection (from {peer}); it should use one"
                        ),
                        ))
                    }
                    Ok(None) => Ok(()),
                    Err(e) => Err(fault(format!(
                        "watching for another connection failed: {e}"
                    ))),
                }
            }
        }
    }

    pub(super) fn link(&mut self, conn: Conn) -> Result<&mut Link, StepError> {
        self.domains
            .stream
            .links
            .get_mut(&conn)
            .ok_or_else(|| not_open(conn))
    }

    fn take_link(&mut self, conn: Conn) -> Result<Link, StepError> {
        self.domains
            .stream
            .links
            .remove(&conn)
            .ok_or_else(|| not_open(conn))
    }

    fn send(&mut self, conn: Conn, data: &[u8], cut: &Cut) -> StepResult {
        let write_timeout = self.timing.deadline(Deadline::Reply);
        let read_within = self.timing.deadline(Deadline::Read);
        let shared = Shared {
            transcript: self.transcript.clone(),
            paused: self.paused.clone(),
            confirming: self.confirming.clone(),
            unmade: self.unmade.clone(),
        };
        let transcript = self.transcript.clone();
        let record = |event: Event| {
            if let Ok(mut t) = transcript.lock() {
                t.record(Some(conn), event);
            }
        };
        let link = self.link(conn)?;
        join_writer(link);
        let mut plan = cut.plan(data.len());
        let mut data = data.to_vec();
        if let [only] = plan.as_slice() {
            // One write that fits in the socket's buffer leaves at once and
            // needs no thread; only what does not fit is left to a writer.
            let piece = &data[only.range.clone()];
            match write_without_waiting(&link.stream, piece) {
                Ok(n) => {
                    if n > 0 {
                        record(Event::wrote(&piece[..n]));
                        link.sent += n as u64;
                    }
                    if n == piece.len() {
                        return Ok(());
                    }
                    data = piece[n..].to_vec();
                    plan = Cut::Whole.plan(data.len());
                }
                Err(e) => {
                    record(Event::note(format!(
                        "write of {} bytes failed: {e}",
                        piece.len()
                    )));
                    return Ok(());
                }
            }
        }
        let stream = link
            .stream
            .try_clone()
            .map_err(|e| fault(format!("could not start writing: {e}")))?;
        let _ = stream.set_write_timeout(Some(write_timeout));
        if link.watch.is_none() && plan.len() > 1 {
            // Made here, on the session's thread: the kernel answers about
            // the network namespace of the thread that asks first.
            link.watch = Some(Watch::new(&link.stream));
        }
        let writer = Writer {
            conn,
            stream,
            data,
            plan,
            cut: cut.to_string(),
            watch: link.watch.take(),
            before: link.sent,
            read_within,
            shared,
        };
        link.writer = Some(writer.spawn());
        Ok(())
    }

    /// Closes each connection whose peer ended its side, as the protocol's
    /// server does when its receive returns zero bytes: a client that
    /// half-closes and waits for the server's close can then exit.
    pub(crate) fn close_ended_links(&mut self) {
        let conns: Vec<Conn> = self.domains.stream.links.keys().copied().collect();
        for conn in conns {
            let _ = self.fill(conn, Instant::now() + Timing::FAST_POLL);
            if self
                .domains
                .stream
                .links
                .get(&conn)
                .is_some_and(|l| l.ended.is_some())
            {
                self.judge_message_end(conn);
                if let Some(mut link) = self.domains.stream.links.remove(&conn) {
                    join_writer(&mut link);
                }
                self.record(
                    Some(conn),
                    Event::note("closed by the harness after the client's end"),
                );
            }
        }
    }
}

/// Writes what the socket's buffer takes of `bytes` without blocking;
/// returns how many bytes it took.
fn write_without_waiting(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    stream.set_nonblocking(true)?;
    let mut at = 0;
    let result = loop {
        if at == bytes.len() {
            break Ok(at);
        }
        match (&*stream).write(&bytes[at..]) {
            Ok(0) => break Ok(at),
            Ok(n) => at += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(at),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    stream.set_nonblocking(false)?;
    result
}

/// A step on a connection the conversation never opened: the suite's bug.
pub(super) fn not_open(conn: Conn) -> StepError {
    fault(format!(
        "{conn} is not open: the suite uses a connection it never opened (a bug in the suite)"
    ))
}
