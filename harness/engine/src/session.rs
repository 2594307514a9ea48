//! Runs one conversation against a target and records what happened.
//!
//! The session owns the harness's side of every connection: a socket, the
//! bytes received but not yet matched by an expectation (a frame may arrive
//! in any number of pieces, or stuck to the next one), how the connection
//! ended, and the thread writing the current cut. Every wait takes its bound
//! from [`Timing`]; a miss records what was expected, what arrived by then
//! and how long the harness waited.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::check::Level;
use crate::conversation::{Conn, Step, Want};
use crate::cut::Cut;
use crate::launch::{stderr_block, Launched};
use crate::loopback;
use crate::net;
use crate::ports;
use crate::procfs;
use crate::show;
use crate::target::{describe_exit, Process};
use crate::timing::{Deadline, SpinRule, Timing};
use crate::transcript::{Event, Transcript};

/// Most bytes read in one receive; also how far past an expectation the
/// harness reads, so a flooding target costs bounded memory.
const READ_CHUNK: usize = 64 * 1024;

/// What a session talks to.
pub enum Peer {
    /// A server the harness started.
    Launched(Launched),
    /// A server already running, out of the harness's control.
    Remote(SocketAddr),
    /// A client the harness started; it connects to one of `listeners`,
    /// on 127.0.0.1 or ::1.
    Client {
        listeners: loopback::Pair<TcpListener>,
        process: Process,
    },
}

impl Peer {
    /// The target's process, when the harness started it.
    pub fn process(&mut self) -> Option<&mut Process> {
        match self {
            Peer::Launched(l) => Some(l.process()),
            Peer::Client { process, .. } => Some(process),
            Peer::Remote(_) => None,
        }
    }
}

/// A requirement the target missed during the conversation.
#[derive(Clone, Debug)]
pub struct Miss {
    pub level: Level,
    /// The step, as printed.
    pub step: String,
    pub detail: String,
}

/// How a connection ended, as seen by the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Closed,
    Reset,
}

struct Link {
    stream: TcpStream,
    /// Received and not yet matched.
    buffered: Vec<u8>,
    ended: Option<End>,
    writer: Option<JoinHandle<()>>,
}

/// What running a conversation produced.
pub struct Outcome {
    pub misses: Vec<Miss>,
    pub notes: Vec<String>,
    pub transcript: Transcript,
    /// Whether the conversation ended the target on purpose.
    pub killed: bool,
    /// Time spent in deliberate pauses (cuts, settling, CPU windows), as
    /// measured: the floor under the check's run time.
    pub paused: Duration,
}

impl Outcome {
    /// An outcome about a check as a whole, with no traffic of its own.
    pub fn without_traffic(misses: Vec<Miss>, notes: Vec<String>, paused: Duration) -> Outcome {
        Outcome {
            misses,
            notes,
            transcript: Transcript::new(Instant::now()),
            killed: false,
            paused,
        }
    }

    /// The heaviest miss.
    pub fn worst(&self) -> Option<Level> {
        self.misses.iter().map(|m| m.level).max()
    }
}

/// One conversation in progress.
pub struct Session<'p> {
    peer: &'p mut Peer,
    timing: Timing,
    links: BTreeMap<Conn, Link>,
    transcript: Arc<Mutex<Transcript>>,
    misses: Vec<Miss>,
    notes: Vec<String>,
    descriptors: Option<usize>,
    output_seen: u64,
    killed: bool,
    /// Deliberate pause time, shared with the writer threads.
    paused: Arc<Mutex<Duration>>,
    /// Where each receive lands before it joins a link's buffer.
    scratch: Vec<u8>,
}

/// A step that did not go as required; ends the conversation when MUST.
struct Missed {
    level: Level,
    detail: String,
}

fn miss(level: Level, detail: impl Into<String>) -> Missed {
    Missed {
        level,
        detail: detail.into(),
    }
}

type StepResult = Result<(), Missed>;

impl<'p> Session<'p> {
    pub fn new(peer: &'p mut Peer, timing: Timing) -> Self {
        Session {
            peer,
            timing,
            links: BTreeMap::new(),
            transcript: Arc::new(Mutex::new(Transcript::new(Instant::now()))),
            misses: Vec::new(),
            notes: Vec::new(),
            descriptors: None,
            output_seen: 0,
            killed: false,
            paused: Arc::new(Mutex::new(Duration::ZERO)),
            scratch: vec![0u8; READ_CHUNK],
        }
    }

    /// Runs `steps` in order, stopping at the first MUST miss, then closes
    /// every connection.
    pub fn run(mut self, steps: &[Step]) -> Outcome {
        self.play(steps);
        self.finish().0
    }

    /// Runs `steps` on the connections as they are; returns false when a
    /// MUST miss ended the conversation. Connections stay open for more.
    pub fn play(&mut self, steps: &[Step]) -> bool {
        self.run_steps(steps)
    }

    /// Closes every connection and hands back what happened and the peer.
    pub fn finish(mut self) -> (Outcome, &'p mut Peer) {
        self.close_all();
        let transcript = match Arc::try_unwrap(self.transcript) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => shared
                .lock()
                .map(|t| t.clone())
                .unwrap_or_else(|e| e.into_inner().clone()),
        };
        let paused = self.paused.lock().map(|d| *d).unwrap_or_default();
        let outcome = Outcome {
            misses: self.misses,
            notes: self.notes,
            transcript,
            killed: self.killed,
            paused,
        };
        (outcome, self.peer)
    }

    /// Whether a MUST miss was recorded.
    pub fn failed(&self) -> bool {
        self.misses.iter().any(|m| m.level == Level::Must)
    }

    /// Returns false when a MUST miss ended the conversation.
    fn run_steps(&mut self, steps: &[Step]) -> bool {
        for step in steps {
            if let Step::Repeat { times, steps } = step {
                for _ in 0..*times {
                    if !self.run_steps(steps) {
                        return false;
                    }
                }
                continue;
            }
            if let Err(m) = self.step(step) {
                let stop = m.level == Level::Must;
                self.misses.push(Miss {
                    level: m.level,
                    step: step.to_string(),
                    detail: m.detail,
                });
                if stop {
                    return false;
                }
            }
        }
        true
    }

    fn record(&self, conn: Option<Conn>, event: Event) {
        if let Ok(mut t) = self.transcript.lock() {
            t.record(conn, event);
        }
    }

    fn step(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Connect {
                conn,
                small_buffers,
            } => self.connect(*conn, *small_buffers),
            Step::Accept { conn } => self.accept(*conn),
            Step::Send { conn, data, cut } => self.send(*conn, data, cut),
            Step::Expect { conn, want, level } => self.expect(*conn, want, *level),
            Step::Observe {
                conn,
                want,
                within,
                question,
            } => {
                let seen = self
                    .wait_for(*conn, want, self.timing.deadline(*within), false)
                    .is_ok();
                let note = format!("{question}: {}", if seen { "yes" } else { "no" });
                self.record(Some(*conn), Event::note(note.clone()));
                self.notes.push(note);
                Ok(())
            }
            Step::ShutdownWrite { conn } => {
                let link = self.link(*conn)?;
                join_writer(link);
                let r = net::shutdown_write(&link.stream);
                self.record(Some(*conn), Event::ShutdownWrite);
                r.map_err(|e| miss(Level::Must, format!("could not half-close: {e}")))
            }
            Step::Reset { conn } => {
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                let r = net::reset(link.stream);
                self.record(Some(*conn), Event::SentReset);
                r.map_err(|e| miss(Level::Must, format!("could not reset: {e}")))
            }
            Step::Close { conn } => {
                let mut link = self.take_link(*conn)?;
                join_writer(&mut link);
                drop(link);
                self.record(Some(*conn), Event::note("closed by the harness"));
                Ok(())
            }
            Step::Pause(p) => {
                pause_for(p.duration(), &self.paused);
                Ok(())
            }
            Step::Repeat { .. } => Ok(()),
            Step::ExpectIdle => self.expect_idle(),
            Step::CountDescriptors => {
                let n = self.count_descriptors()?;
                self.descriptors = Some(n);
                self.record(
                    None,
                    Event::note(format!("the target holds {n} descriptors")),
                );
                Ok(())
            }
            Step::ExpectDescriptorsBack { slack } => {
                let before = self.descriptors.ok_or_else(|| {
                    miss(
                        Level::Must,
                        "no descriptor count was taken before (a bug in the suite)",
                    )
                })?;
                // Closing is the target's work after the harness's close:
                // poll until the count is back, within a deadline.
                let within = self.timing.deadline(Deadline::Settle);
                let deadline = Instant::now() + within;
                let mut now = self.count_descriptors()?;
                while now > before + slack && Instant::now() < deadline {
                    thread::sleep(Timing::RECOUNT);
                    now = self.count_descriptors()?;
                }
                self.record(
                    None,
                    Event::note(format!("the target holds {now} descriptors")),
                );
                if now > before + slack {
                    return Err(miss(
                        Level::Must,
                        format!(
                            "the target held {before} open descriptors before and {now} {:.1}s after; \
                             {} were not closed (close each accepted connection when its client leaves)",
                            within.as_secs_f64(),
                            now - before
                        ),
                    ));
                }
                Ok(())
            }
            Step::KillTarget => {
                let Some(p) = self.peer.process() else {
                    return Err(miss(
                        Level::Must,
                        "no process to kill: the harness did not start the target",
                    ));
                };
                let st = p.kill();
                self.killed = true;
                let how = st
                    .map(describe_exit)
                    .unwrap_or_else(|| "still not reaped".into());
                self.record(None, Event::note(format!("killed the target ({how})")));
                Ok(())
            }
            Step::RestartTarget => {
                let timing = self.timing;
                let Peer::Launched(l) = &mut *self.peer else {
                    return Err(miss(
                        Level::Must,
                        "cannot restart a target the harness did not start",
                    ));
                };
                let port = l.port();
                let r = l.restart(&timing);
                match r {
                    Ok(()) => {
                        self.killed = false;
                        self.record(
                            None,
                            Event::note(format!("restarted; listening again on port {port}")),
                        );
                        Ok(())
                    }
                    Err(e) if e.bind_failed => Err(miss(
                        Level::Must,
                        format!(
                            "restarted at once on port {port}, the new instance could not bind it \
                             (address already in use): the killed instance's connection keeps the \
                             port in TIME_WAIT\nset SO_REUSEADDR on the listening socket before \
                             bind()\n{}",
                            e.full()
                        ),
                    )),
                    Err(e) => Err(miss(
                        Level::Must,
                        format!("restarted at once on port {port}, {}", e.full()),
                    )),
                }
            }
            Step::Input(bytes) => {
                self.record(
                    None,
                    Event::note(format!("typed {}", show::quoted(bytes, 80))),
                );
                let p = self.client_process()?;
                p.write_input(bytes).map_err(|e| {
                    miss(
                        Level::Must,
                        format!("could not write to the client's standard input: {e}"),
                    )
                })
            }
            Step::EndInput => {
                self.client_process()?.close_input();
                self.record(None, Event::note("ended the input"));
                Ok(())
            }
            Step::ExpectOutput { text, level } => self.expect_output(text, *level),
            Step::ExpectCleanExit { level } => self.expect_clean_exit(*level),
            Step::ExpectNoConnection { within, level } => {
                let deadline = Instant::now() + self.timing.deadline(*within);
                match self.accept_until(deadline) {
                    Ok(Some((_, peer))) => Err(miss(
                        *level,
                        format!(
                            "the client opened another connection (from {peer}); it should use one"
                        ),
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    fn link(&mut self, conn: Conn) -> Result<&mut Link, Missed> {
        self.links.get_mut(&conn).ok_or_else(|| {
            miss(
                Level::Must,
                format!("{conn} is not open (a bug in the suite)"),
            )
        })
    }

    fn take_link(&mut self, conn: Conn) -> Result<Link, Missed> {
        self.links.remove(&conn).ok_or_else(|| {
            miss(
                Level::Must,
                format!("{conn} is not open (a bug in the suite)"),
            )
        })
    }

    fn target_gone(&mut self) -> String {
        match self.peer.process().and_then(|p| p.exited()) {
            Some(st) => format!(" (the target has exited: {})", describe_exit(st)),
            None => String::new(),
        }
    }

    /// Who keeps a connection open on the target's side, and the advice
    /// that fits: a process that went back to accepting while it holds the
    /// connection is a parent that forgot its copy, or a loop that never
    /// closes.
    fn still_open_by(&mut self, harness_end: Option<SocketAddr>) -> String {
        const GENERIC: &str = " (close the connection once its receive returns zero bytes; a server \
                               that hands connections to child processes must also close its own copy)";
        let (Some(mine), Some(p)) = (harness_end, self.peer.process()) else {
            return GENERIC.to_string();
        };
        let tree = p.tree();
        let pids: Vec<i32> = tree.iter().filter(|s| !s.zombie).map(|s| s.pid).collect();
        let theirs = ports::sockets_on_peer(mine);
        let holders: Vec<i32> = theirs
            .iter()
            .flat_map(|s| ports::held_by(s.inode, &pids))
            .collect();
        let [holder] = holders.as_slice() else {
            return GENERIC.to_string();
        };
        let who = ports::Holder::of(*holder);
        if p.had_children(*holder) {
            format!(
                " in {who}, which started child processes: a parent that hands a connection \
                 to a child must close its own copy, or the client never sees the end"
            )
        } else {
            format!(" in {who}{GENERIC}")
        }
    }

    fn connect(&mut self, conn: Conn, small: bool) -> StepResult {
        let addr = match &*self.peer {
            Peer::Launched(l) => l.addr(),
            Peer::Remote(a) => *a,
            Peer::Client { .. } => {
                return Err(miss(
                    Level::Must,
                    "the harness plays the server in this role",
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
                self.links.insert(
                    conn,
                    Link {
                        stream,
                        buffered: Vec::new(),
                        ended: None,
                        writer: None,
                    },
                );
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
                self.links.insert(
                    conn,
                    Link {
                        stream,
                        buffered: Vec::new(),
                        ended: None,
                        writer: None,
                    },
                );
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
            Err(e) => Err(miss(
                Level::Must,
                format!("accepting the client failed: {e}"),
            )),
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
        let transcript = self.transcript.clone();
        let paused = self.paused.clone();
        let link = self.link(conn)?;
        join_writer(link);
        let mut stream = link
            .stream
            .try_clone()
            .map_err(|e| miss(Level::Must, format!("could not start writing: {e}")))?;
        let _ = stream.set_write_timeout(Some(write_timeout));
        let plan = cut.plan(data.len());
        let data = data.to_vec();
        link.writer = Some(thread::spawn(move || {
            for w in plan {
                let piece = &data[w.range];
                let r = stream.write_all(piece);
                let event = match &r {
                    Ok(()) => Event::wrote(piece),
                    Err(e) => Event::note(format!("write of {} bytes failed: {e}", piece.len())),
                };
                if let Ok(mut t) = transcript.lock() {
                    t.record(Some(conn), event);
                }
                if r.is_err() {
                    return;
                }
                pause_for(w.pause_after, &paused);
            }
        }));
        Ok(())
    }

    /// Receives once into the link's buffer, waiting at most until `deadline`.
    fn fill(&mut self, conn: Conn, deadline: Instant) -> Result<(), Missed> {
        let transcript = self.transcript.clone();
        let Some(link) = self.links.get_mut(&conn) else {
            return Err(miss(
                Level::Must,
                format!("{conn} is not open (a bug in the suite)"),
            ));
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
            Err(e) => return Err(miss(Level::Must, format!("receiving failed: {e}"))),
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
        if let (Want::End, Peer::Launched(l)) = (want, &mut *self.peer) {
            // A child serving this connection may be gone by the time the
            // end is missed; seen now, a miss can name its parent.
            l.process().tree();
        }
        self.wait_for(conn, want, within, true)
            .map_err(|detail| miss(level, detail))?;
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
    /// taken from the buffer. The error is a readable account of the miss.
    fn wait_for(
        &mut self,
        conn: Conn,
        want: &Want,
        within: Duration,
        consume: bool,
    ) -> Result<(), String> {
        let start = Instant::now();
        let deadline = start + within;
        loop {
            let link = self.link(conn).map_err(|m| m.detail)?;
            match want {
                Want::Bytes(expected) | Want::Message(expected) | Want::Line(expected) => {
                    let got = &link.buffered;
                    let n = got.len().min(expected.len());
                    if got[..n] != expected[..n] {
                        let shown = got[..got.len().min(expected.len() + 16)].to_vec();
                        // The rest of a wrong answer must not be taken for
                        // the start of the next one.
                        let flood = if consume {
                            self.discard_answer(conn)
                        } else {
                            String::new()
                        };
                        return Err(format!(
                            "different bytes arrived\n{}{flood}",
                            show::compare(expected, &shown).trim_end()
                        ));
                    }
                    if got.len() >= expected.len() {
                        if consume {
                            link.buffered.drain(..expected.len());
                            if let Want::Line(_) = want {
                                let blank = link
                                    .buffered
                                    .iter()
                                    .take_while(|b| b.is_ascii_whitespace())
                                    .count();
                                link.buffered.drain(..blank);
                            }
                        }
                        return Ok(());
                    }
                    if let Some(end) = link.ended {
                        let got = std::mem::take(&mut link.buffered);
                        let how = match end {
                            End::Closed => "the connection was closed",
                            End::Reset => "the connection was reset",
                        };
                        let gone = self.target_gone();
                        return Err(format!(
                            "{how} after {} of {} bytes{gone}\n{}",
                            got.len(),
                            expected.len(),
                            show::compare(expected, &got)
                        ));
                    }
                    if Instant::now() >= deadline {
                        let got = got.clone();
                        if consume {
                            link.buffered.clear();
                        }
                        let gone = self.target_gone();
                        let how = match got.len() {
                            0 => "nothing arrived: the target sent nothing",
                            _ => "the answer stopped short or is coming too slowly",
                        };
                        return Err(format!(
                            "timed out after {:.1}s with {} of {} bytes{gone}; {how}\n{}",
                            within.as_secs_f64(),
                            got.len(),
                            expected.len(),
                            show::compare(expected, &got)
                        ));
                    }
                }
                Want::End => {
                    if !link.buffered.is_empty() {
                        let got = if consume {
                            std::mem::take(&mut link.buffered)
                        } else {
                            link.buffered.clone()
                        };
                        return Err(format!(
                            "expected end of stream, but {} more bytes arrived: {}",
                            got.len(),
                            show::quoted(&got, 48)
                        ));
                    }
                    if link.ended.is_some() {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        let local = link.stream.local_addr().ok();
                        return Err(format!(
                            "no end of stream within {:.1}s: the connection is still open{}",
                            within.as_secs_f64(),
                            self.still_open_by(local)
                        ));
                    }
                }
            }
            self.fill(conn, deadline).map_err(|m| m.detail)?;
        }
    }

    /// Reads and drops what arrives until the connection is quiet, bounded
    /// by the reply deadline.
    fn discard_answer(&mut self, conn: Conn) -> String {
        let started = Instant::now();
        let give_up = started + self.timing.deadline(Deadline::Reply);
        let quiet = self.timing.deadline(Deadline::Quiet);
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
            let _ = self.fill(conn, (now + quiet).min(give_up));
            match self.links.get(&conn) {
                Some(l) if l.buffered.is_empty() && l.ended.is_none() => return String::new(),
                Some(_) => {}
                None => return String::new(),
            }
        }
    }

    fn expect_idle(&mut self) -> StepResult {
        let Some(p) = self.peer.process() else {
            return Err(miss(
                Level::Must,
                "no process to measure: the harness did not start the target",
            ));
        };
        let mut used = measure_cpu(p, SpinRule::WINDOW, &self.paused);
        if used.is_ambiguous() {
            used = measure_cpu(p, SpinRule::SECOND_WINDOW, &self.paused);
        }
        self.record(None, Event::note(used.note()));
        if used.spins() {
            return Err(miss(Level::Must, used.spin_detail()));
        }
        Ok(())
    }

    fn count_descriptors(&mut self) -> Result<usize, Missed> {
        let Some(p) = self.peer.process() else {
            return Err(miss(
                Level::Must,
                "no process to inspect: the harness did not start the target",
            ));
        };
        Ok(procfs::descriptors(&p.tree()))
    }

    fn client_process(&mut self) -> Result<&mut Process, Missed> {
        match &mut *self.peer {
            Peer::Client { process, .. } => Ok(process),
            _ => Err(miss(
                Level::Must,
                "only a client under test reads input (a bug in the suite)",
            )),
        }
    }

    fn expect_output(&mut self, text: &str, level: Level) -> StepResult {
        let within = self.timing.deadline(Deadline::Output);
        let from = self.output_seen;
        let p = self.client_process()?;
        match p
            .stdout()
            .wait_for(text.as_bytes(), from, Instant::now() + within)
        {
            Some(end) => {
                self.output_seen = end;
                Ok(())
            }
            None => {
                let printed = p.stdout().since(from);
                Err(miss(
                    level,
                    format!(
                        "{} did not appear on the client's output within {:.1}s; it printed {}",
                        show::quoted(text.as_bytes(), 60),
                        within.as_secs_f64(),
                        if printed.is_empty() {
                            "nothing".to_string()
                        } else {
                            show::quoted(&printed, 120)
                        }
                    ),
                ))
            }
        }
    }

    fn expect_clean_exit(&mut self, level: Level) -> StepResult {
        let within = self.timing.deadline(Deadline::Exit);
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(st) = self.client_process()?.exited() {
                break Some(st);
            }
            if Instant::now() >= deadline {
                break None;
            }
            self.close_ended_links();
            thread::sleep(Timing::POLL);
        };
        let p = self.client_process()?;
        let Some(status) = status else {
            return Err(miss(
                level,
                format!(
                    "the client was still running {:.1}s after its input ended",
                    within.as_secs_f64()
                ),
            ));
        };
        p.stderr()
            .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
        let tail = p.stderr().tail(12);
        if !status.success() || tail.contains("Traceback") {
            return Err(miss(
                level,
                format!(
                    "the client ended with {} after its input ended{}",
                    describe_exit(status),
                    stderr_block(p)
                ),
            ));
        }
        Ok(())
    }

    /// Closes each connection whose peer ended its side, as the protocol's
    /// server does when its receive returns zero bytes: a client that
    /// half-closes and waits for the server's close can then exit.
    fn close_ended_links(&mut self) {
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

    fn close_all(&mut self) {
        for (_, mut link) in std::mem::take(&mut self.links) {
            // Unblocks a writer stuck on a target that stopped reading.
            let _ = link.stream.shutdown(Shutdown::Both);
            join_writer(&mut link);
        }
    }
}

fn join_writer(link: &mut Link) {
    if let Some(w) = link.writer.take() {
        let _ = w.join();
    }
}

/// Sleeps deliberately and adds the time slept to `total`.
fn pause_for(d: Duration, total: &Mutex<Duration>) {
    if d.is_zero() {
        return;
    }
    let t0 = Instant::now();
    thread::sleep(d);
    if let Ok(mut t) = total.lock() {
        *t += t0.elapsed();
    }
}

/// The target's CPU share and each of its threads' scheduling over `window`.
fn measure_cpu(p: &mut Process, window: Duration, paused: &Mutex<Duration>) -> crate::spin::CpuUse {
    let before = p.tree();
    let threads_before = procfs::thread_samples(&before);
    let t0 = Instant::now();
    pause_for(window, paused);
    let after = p.tree();
    let threads_after = procfs::thread_samples(&after);
    let elapsed = t0.elapsed();
    let threads = procfs::thread_use(&threads_before, &threads_after, elapsed);
    crate::spin::CpuUse::new(
        window,
        procfs::cpu_fraction(&before, &after, elapsed),
        &threads,
    )
}

#[cfg(test)]
mod tests {
    //! Legal outcome sets: where the protocols allow more than one reaction,
    //! each is accepted; every other reaction is a miss that says what
    //! happened. The target here is a scripted server in a thread.

    use super::*;
    use crate::conversation::Conversation;
    use std::net::TcpListener;

    const C1: Conn = Conn(1);

    /// A one-connection server that reads one request and then acts.
    fn scripted(act: impl FnOnce(TcpStream) + Send + 'static) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            act(s);
        });
        Peer::Remote(addr)
    }

    fn run(peer: &mut Peer, c: Conversation) -> Outcome {
        Session::new(peer, Timing::new(0.5)).run(&c.steps)
    }

    fn assert_first_miss_says(out: &Outcome, text: &str) {
        let detail = out.misses.first().map_or("", |m| m.detail.as_str());
        assert!(
            detail.contains(text),
            "expected a miss saying {text:?}, got: {detail}"
        );
    }

    fn ask() -> Conversation {
        Conversation::new().connect(C1).send(C1, "hi", Cut::Whole)
    }

    #[test]
    fn a_reply_in_several_pieces_is_one_reply() {
        let mut peer = scripted(|mut s| {
            for piece in [&b"H"[..], b"E", b"LLO"] {
                s.write_all(piece).unwrap();
                thread::sleep(Duration::from_millis(20));
            }
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HELLO"));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn a_close_ends_the_stream() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"HI").unwrap();
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HI").expect_end(C1));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn a_reset_also_ends_the_stream() {
        let mut peer = scripted(|s| {
            net::reset(s).unwrap();
        });
        let out = run(&mut peer, ask().expect_end(C1));
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn bytes_before_the_end_are_a_miss_that_shows_them() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"HI!extra").unwrap();
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HI!").expect_end(C1));
        assert_eq!(out.misses.len(), 1);
        assert_first_miss_says(&out, "5 more bytes arrived: \"extra\"");
    }

    #[test]
    fn silence_is_a_timeout_that_says_nothing_arrived() {
        let mut peer = scripted(|s| {
            thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HI"));
        assert_first_miss_says(&out, "nothing arrived");
    }

    #[test]
    fn a_trickle_is_a_timeout_that_says_the_answer_is_too_slow() {
        let mut peer = scripted(|mut s| {
            for b in b"HELLO" {
                if s.write_all(&[*b]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(600));
            }
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HELLO"));
        assert_first_miss_says(&out, "too slowly");
    }

    #[test]
    fn a_wrong_byte_fails_at_once_and_marks_where() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"HXLLO").unwrap();
            thread::sleep(Duration::from_secs(10));
        });
        // A reply deadline of 8 s: a miss found by waiting it out would
        // take that long; one found on the wrong byte takes a read.
        let t0 = Instant::now();
        let out =
            Session::new(&mut peer, Timing::new(4.0)).run(&ask().expect_bytes(C1, "HELLO").steps);
        assert_first_miss_says(&out, "first difference at byte 1");
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "a difference needs no deadline"
        );
    }

    #[test]
    fn a_flood_costs_bounded_memory_and_one_deadline() {
        let mut peer = scripted(|mut s| {
            let chunk = vec![b'A'; 1 << 16];
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) && s.write_all(&chunk).is_ok() {}
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "HI").expect_end(C1));
        assert_eq!(out.misses.len(), 1, "{:?}", out.misses);
        assert_first_miss_says(&out, "different bytes");
    }

    #[test]
    fn a_should_miss_goes_on_and_a_must_miss_stops() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"NO").unwrap();
        });
        let c = ask()
            .expect_at(C1, Want::Bytes(b"HI".to_vec()), Level::Should)
            .expect_bytes(C1, "X")
            .expect_bytes(C1, "Y");
        let out = run(&mut peer, c);
        let levels: Vec<Level> = out.misses.iter().map(|m| m.level).collect();
        assert_eq!(levels, vec![Level::Should, Level::Must]);
    }
}
