//! Steps on stream connections: connect or accept, send with a cut, expect
//! bytes or the end, observe, half-close, reset, close, each on a
//! [`Link`] the session keeps. Whether
//! the bytes so far meet an expectation is [`crate::expect::progress`]'s
//! to say; this module only reads, asks and words the answer.

use std::fmt;
use std::io::{self, Read, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::link::{join_writer, Conn, End, Link};
use super::writer::{Shared, Writer};
use super::{fault, miss, StepError, StepResult};
use crate::confirm::Watch;
use crate::cut::Cut;
use crate::expect::{progress, Progress, Want};
use crate::level::Level;
use crate::net;
use crate::ports;
use crate::session::{Peer, Session};
use crate::show;
use crate::timing::{Deadline, Timing};
use crate::transcript::Event;

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
        question: &'static str,
    },
    /// Shut down the harness's sending side (`shutdown(SHUT_WR)`).
    ShutdownWrite { conn: Conn },
    /// Abort with a reset: `SO_LINGER` zero, then close.
    Reset { conn: Conn },
    /// Close normally.
    Close { conn: Conn },
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
            StreamStep::ExpectNoConnection { .. } => f.write_str("expect no other connection"),
        }
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
            } => {
                let seen = match self.wait_for(*conn, want, self.timing.deadline(*within), false) {
                    Ok(()) => true,
                    Err(StepError::Missed { .. }) => false,
                    Err(f) => return Err(f),
                };
                let note = format!("{question}: {}", if seen { "yes" } else { "no" });
                self.record(Some(*conn), Event::note(note.clone()));
                self.notes.push(note);
                Ok(())
            }
            StreamStep::ShutdownWrite { conn } => {
                let link = self.link(*conn)?;
                join_writer(link);
                let r = net::shutdown_write(&link.stream);
                self.record(Some(*conn), Event::ShutdownWrite);
                r.map_err(|e| miss(Level::Must, format!("could not half-close: {e}")))
            }
            StreamStep::Reset { conn } => {
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                let r = net::reset(link.stream);
                self.record(Some(*conn), Event::SentReset);
                r.map_err(|e| miss(Level::Must, format!("could not reset: {e}")))
            }
            StreamStep::Close { conn } => {
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                drop(link);
                self.record(Some(*conn), Event::note("closed by the harness"));
                Ok(())
            }
            StreamStep::ExpectNoConnection { within, level } => {
                let deadline = Instant::now() + self.timing.deadline(*within);
                match self.accept_until(deadline) {
                    Ok(Some((_, peer))) => Err(miss(
                        *level,
                        format!(
                            "the client opened another connection (from {peer}); it should use one"
                        ),
                    )),
                    Ok(None) => Ok(()),
                    Err(e) => Err(fault(format!(
                        "watching for another connection failed: {e}"
                    ))),
                }
            }
        }
    }

    fn link(&mut self, conn: Conn) -> Result<&mut Link, StepError> {
        self.links.get_mut(&conn).ok_or_else(|| not_open(conn))
    }

    fn take_link(&mut self, conn: Conn) -> Result<Link, StepError> {
        self.links.remove(&conn).ok_or_else(|| not_open(conn))
    }

    /// Who keeps a connection open on the target's side, from the kernel:
    /// the process holding the target's end of it and, when that process
    /// started children, the one mistake that explains it (the check's hint
    /// gives the protocol's advice).
    fn still_open_by(&mut self, harness_end: Option<SocketAddr>) -> String {
        let (Some(mine), Some(p)) = (harness_end, self.peer.process()) else {
            return String::new();
        };
        let tree = p.tree();
        let pids: Vec<i32> = tree.iter().filter(|s| !s.zombie).map(|s| s.pid).collect();
        let theirs = ports::sockets_on_peer(mine);
        let holders: Vec<i32> = theirs
            .iter()
            .flat_map(|s| ports::held_by(s.inode, &pids))
            .collect();
        let [holder] = holders.as_slice() else {
            return String::new();
        };
        let who = ports::Holder::of(*holder);
        let children = p.children_seen(*holder);
        let gone: Vec<i32> = children
            .iter()
            .copied()
            .filter(|c| !tree.iter().any(|s| s.pid == *c))
            .collect();
        match gone.as_slice() {
            [] if !children.is_empty() => format!(
                " in {who}, which started child processes: a parent that hands a connection \
                 to a child must close its own copy, or the client never sees the end"
            ),
            [] => format!(" in {who}"),
            children => format!(
                " in {who} (the parent) after {} (its child) exited: a parent that hands a \
                 connection to a child must close its own copy, or the client never sees the end",
                children
                    .iter()
                    .map(|c| format!("pid {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn connect(&mut self, conn: Conn, small: bool) -> StepResult {
        let addr = match &*self.peer {
            Peer::Launched(l) => l.addr(),
            Peer::Remote(a) => *a,
            Peer::Client { .. } | Peer::DatagramClient { .. } => {
                return Err(fault(
                    "the suite connects to a client under test, but the harness plays the \
                     server in this role (a bug in the suite)",
                ))
            }
        };
        match net::connect(addr, small, self.timing.deadline(Deadline::Reply)) {
            Ok((stream, buffers)) => {
                let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
                if let Peer::Launched(l) = &mut *self.peer {
                    l.connected_from(port);
                }
                self.record(Some(conn), Event::Connected { local_port: port });
                if let Some(b) = buffers {
                    self.record(
                        Some(conn),
                        Event::note(format!(
                            "buffers read back: SO_RCVBUF {} SO_SNDBUF {}",
                            b.recv, b.send
                        )),
                    );
                }
                self.links.insert(conn, Link::new(stream));
                Ok(())
            }
            Err(e) => {
                let gone = self.target_gone();
                Err(miss(
                    Level::Must,
                    format!("could not connect to {addr}: {e}{gone}"),
                ))
            }
        }
    }

    fn accept(&mut self, conn: Conn) -> StepResult {
        let within = self.timing.deadline(Deadline::Accept);
        let v4_only = self.v4_only();
        if let Some(why) = &v4_only {
            self.record(Some(conn), Event::note(why.clone()));
        }
        match self.accept_until(Instant::now() + within) {
            Ok(Some((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                self.record(Some(conn), Event::Accepted { peer });
                self.links.insert(conn, Link::new(stream));
                Ok(())
            }
            Ok(None) => {
                let gone = self.target_gone();
                let v4_only = v4_only.map(|why| format!("\n{why}")).unwrap_or_default();
                Err(miss(
                    Level::Must,
                    format!(
                        "the client did not connect within {:.1}s{gone}{v4_only}",
                        within.as_secs_f64()
                    ),
                ))
            }
            Err(e) => Err(fault(format!("accepting the client failed: {e}"))),
        }
    }

    /// What to say when the harness listens on 127.0.0.1 alone: a client
    /// that connects to ::1 (or to `localhost` resolved to it) is refused.
    fn v4_only(&self) -> Option<String> {
        let Peer::Client { listeners, .. } = &*self.peer else {
            return None;
        };
        listeners.v6_absent().map(|e| {
            format!(
                "listening on 127.0.0.1 only: this machine has no IPv6 loopback ({e}); \
                 a client that connects to ::1, or to localhost resolved to ::1, is refused"
            )
        })
    }

    /// Accepts the next connection on either loopback, polling so a client
    /// that exits early is noticed; `None` at the deadline or when the
    /// client has exited.
    fn accept_until(&mut self, deadline: Instant) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        let Peer::Client { listeners, process } = &mut *self.peer else {
            return Err(io::Error::other("only a client connects to the harness"));
        };
        let mut last_try = false;
        loop {
            if let Some(accepted) = listeners.accept()? {
                return Ok(Some(accepted));
            }
            if last_try || Instant::now() >= deadline {
                return Ok(None);
            }
            // A client that connected and then exited left its connection
            // in the backlog: one more accept finds it.
            last_try = process.exited().is_some();
            if !last_try {
                thread::sleep(Timing::POLL);
            }
        }
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

    fn expect(&mut self, conn: Conn, want: &Want, level: Level) -> StepResult {
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
            // Nothing may follow the message: a stray newline shows at once.
            let deadline = Instant::now() + self.timing.deadline(Deadline::Quiet);
            loop {
                let link = self.link(conn)?;
                if !link.buffered.is_empty() {
                    let extra = std::mem::take(&mut link.buffered);
                    return Err(miss(
                        level,
                        format!(
                            "the message was followed by {} more bytes: {}",
                            extra.len(),
                            show::quoted(&extra, 48)
                        ),
                    ));
                }
                if link.ended.is_some() || Instant::now() >= deadline {
                    return Ok(());
                }
                self.fill(conn, deadline)?;
            }
        }
        Ok(())
    }

    /// Waits until `want` holds on `conn`. With `consume`, matched bytes are
    /// taken from the buffer. A miss is a readable account of what arrived.
    fn wait_for(&mut self, conn: Conn, want: &Want, within: Duration, consume: bool) -> StepResult {
        let deadline = Instant::now() + within;
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
    fn mismatch(&mut self, conn: Conn, want: &Want, consume: bool) -> StepError {
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
    fn ended_short(&mut self, conn: Conn, want: &Want, end: End) -> StepError {
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
    fn too_late(&mut self, conn: Conn, want: &Want, within: Duration, consume: bool) -> StepError {
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
    fn discard_answer(&mut self, conn: Conn) -> String {
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

    /// Closes each connection whose peer ended its side, as the protocol's
    /// server does when its receive returns zero bytes: a client that
    /// half-closes and waits for the server's close can then exit.
    pub(crate) fn close_ended_links(&mut self) {
        let conns: Vec<Conn> = self.links.keys().copied().collect();
        for conn in conns {
            let _ = self.fill(conn, Instant::now() + Timing::FAST_POLL);
            if self.links.get(&conn).is_some_and(|l| l.ended.is_some()) {
                if let Some(mut link) = self.links.remove(&conn) {
                    join_writer(&mut link);
                }
                self.record(
                    Some(conn),
                    Event::note("closed by the harness after the client's end"),
                );
            }
        }
    }

    pub(crate) fn close_all(&mut self) {
        for (_, mut link) in std::mem::take(&mut self.links) {
            // Unblocks a writer stuck on a target that stopped reading.
            let _ = link.stream.shutdown(Shutdown::Both);
            join_writer(&mut link);
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
fn not_open(conn: Conn) -> StepError {
    fault(format!(
        "{conn} is not open: the suite uses a connection it never opened (a bug in the suite)"
    ))
}
