//! Runs one conversation against a target and records what happened.
//!
//! The session keeps what every kind of step shares: the target it talks to,
//! the clock and the transcript, the misses and observations, the deliberate
//! pauses, and the dispatch of each step to its domain (`steps/`). Each
//! domain's own state (connections for streams, a descriptor count for the
//! process, how much output was read for stdio) is the domain's type, kept
//! here in [`Domains`], made and closed by the domain. Every wait takes its
//! bound from [`Timing`]; a miss records what was expected, what arrived by
//! then and how long the harness waited. A step the harness itself could not
//! carry out is a fault, kept apart from the target's misses.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conversations::steps::link::Conn;
pub use crate::conversations::steps::writer::Unmade;
pub use crate::conversations::steps::At;
use crate::conversations::steps::{close_domains, Domains, Step, StepError, StepResult};
use crate::conversations::transcript::{Channel, Event, Transcript};
use crate::kernel::loopback;
use crate::model::hint::EchoLength;
use crate::model::level::Level;
pub(crate) use crate::model::timing::pause_for;
use crate::model::timing::{Deadline, Pause, Timing};
use crate::targets::launch::Launched;
use crate::targets::target::{describe_exit, Process};

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
    /// A client the harness started that sends datagrams to `server`, the
    /// harness's socket on 127.0.0.1 and ::1, on one port.
    DatagramClient {
        server: loopback::Pair<UdpSocket>,
        process: Process,
    },
}

impl Peer {
    /// The target's process, when the harness started it.
    pub fn process(&mut self) -> Option<&mut Process> {
        match self {
            Peer::Launched(l) => Some(l.process()),
            Peer::Client { process, .. } | Peer::DatagramClient { process, .. } => Some(process),
            Peer::Remote(_) => None,
        }
    }

    /// Whether the target plays the client (the harness then plays the
    /// server).
    pub fn is_client(&self) -> bool {
        matches!(self, Peer::Client { .. } | Peer::DatagramClient { .. })
    }
}

/// A requirement the target missed during the conversation.
#[derive(Clone, Debug)]
pub struct Miss {
    pub level: Level,
    /// The step, as printed.
    pub step: String,
    /// Where it belongs.
    pub at: At,
    pub detail: String,
    /// The step's own advice, from what it saw: chosen over the check's.
    pub hint: Option<String>,
}

/// A step the harness could not carry out: a bug in the suite or a failure
/// of the harness's own I/O. The check is an ERROR, not the target's miss.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The step, as printed.
    pub step: String,
    /// Where it belongs.
    pub at: At,
    pub detail: String,
}

/// What running a conversation produced.
pub struct Outcome {
    pub misses: Vec<Miss>,
    pub notes: Vec<String>,
    /// Set when the harness could not go on; the conversation stopped there.
    pub fault: Option<Fault>,
    pub transcript: Transcript,
    /// Whether the conversation ended the target on purpose.
    pub killed: bool,
    /// Time spent in deliberate pauses (cuts, settling, CPU windows), as
    /// measured: the floor under the check's run time.
    pub paused: Duration,
    /// Time spent waiting for the kernel to show that the target read a
    /// piece of a cut or settled: the target's own pace, not a pause.
    pub confirming: Duration,
    /// Cuts not made as meant.
    pub unmade: Vec<Unmade>,
    /// Set when the check's misses all followed cuts the harness could not
    /// make, so nothing was judged: the check reports what it saw (INFO).
    pub cut_not_made: bool,
    /// The echoes observed to learn the target's receive size.
    pub echoes: Vec<EchoLength>,
}

impl Outcome {
    /// An outcome about a check as a whole, with no traffic of its own.
    pub fn without_traffic(misses: Vec<Miss>, notes: Vec<String>, paused: Duration) -> Outcome {
        Outcome {
            misses,
            notes,
            fault: None,
            transcript: Transcript::new(Instant::now()),
            killed: false,
            paused,
            confirming: Duration::ZERO,
            unmade: Vec::new(),
            cut_not_made: false,
            echoes: Vec::new(),
        }
    }

    /// Locates the misses and the fault among the steps played from
    /// position `first` on, the steps this outcome reports; those before
    /// are [`At::Earlier`].
    pub fn count_from(&mut self, first: usize) {
        let rebase = |at: &mut At| {
            if let At::Step { index, nested } = *at {
                *at = match index.checked_sub(first) {
                    Some(index) => At::Step { index, nested },
                    None => At::Earlier,
                };
            }
        };
        self.misses.iter_mut().for_each(|m| rebase(&mut m.at));
        if let Some(f) = &mut self.fault {
            rebase(&mut f.at);
        }
    }

    /// The heaviest miss.
    pub fn worst(&self) -> Option<Level> {
        self.misses.iter().map(|m| m.level).max()
    }
}

/// One conversation in progress.
pub struct Session<'p> {
    pub(crate) peer: &'p mut Peer,
    pub(crate) timing: Timing,
    pub(crate) transcript: Arc<Mutex<Transcript>>,
    pub(crate) notes: Vec<String>,
    misses: Vec<Miss>,
    fault: Option<Fault>,
    /// Deliberate pause time, shared with the writer threads.
    pub(crate) paused: Arc<Mutex<Duration>>,
    /// Time waiting for the kernel's view of the target, shared likewise.
    pub(crate) confirming: Arc<Mutex<Duration>>,
    /// Cuts the writer threads did not make as meant.
    pub(crate) unmade: Arc<Mutex<Vec<Unmade>>>,
    /// Each domain's own state, one field per domain.
    pub(crate) domains: Domains,
    /// How many top-level steps were played so far: the position of the
    /// next one.
    played: usize,
    /// Where the step running now is.
    pub(crate) at: At,
}

impl<'p> Session<'p> {
    pub fn new(peer: &'p mut Peer, timing: Timing) -> Self {
        Session {
            peer,
            timing,
            transcript: Arc::new(Mutex::new(Transcript::new(Instant::now()))),
            notes: Vec::new(),
            misses: Vec::new(),
            fault: None,
            paused: Arc::new(Mutex::new(Duration::ZERO)),
            confirming: Arc::new(Mutex::new(Duration::ZERO)),
            unmade: Arc::new(Mutex::new(Vec::new())),
            domains: Domains::default(),
            played: 0,
            at: At::Step {
                index: 0,
                nested: false,
            },
        }
    }

    /// Runs `steps` in order, stopping at the first MUST miss or fault,
    /// then closes every connection.
    pub fn run(mut self, steps: &[Step]) -> Outcome {
        self.play(steps);
        self.finish().0
    }

    /// Runs `steps` on the connections as they are; returns false when a
    /// MUST miss or a fault ended the conversation. Connections stay open
    /// for more.
    pub fn play(&mut self, steps: &[Step]) -> bool {
        for step in steps {
            let index = self.played;
            self.played += 1;
            let at = At::Step {
                index,
                nested: false,
            };
            if !self.run_step(step, at) {
                return false;
            }
        }
        true
    }

    /// How many top-level steps the session played: the position the next
    /// one will have.
    pub fn steps_played(&self) -> usize {
        self.played
    }

    /// Closes what every domain holds open (connections, sockets) and hands
    /// back what happened and the peer.
    pub fn finish(mut self) -> (Outcome, &'p mut Peer) {
        close_domains(&mut self);
        let transcript = match Arc::try_unwrap(self.transcript) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => shared
                .lock()
                .map(|t| t.clone())
                .unwrap_or_else(|e| e.into_inner().clone()),
        };
        let paused = self.paused.lock().map(|d| *d).unwrap_or_default();
        let confirming = self.confirming.lock().map(|d| *d).unwrap_or_default();
        let unmade = self.unmade.lock().map(|u| u.clone()).unwrap_or_default();
        let outcome = Outcome {
            misses: self.misses,
            notes: self.notes,
            fault: self.fault,
            transcript,
            // The process domain's: whether a step ended the target.
            killed: self.domains.process.killed,
            paused,
            confirming,
            unmade,
            cut_not_made: false,
            // The datagram domain's: what the target's receive takes.
            echoes: std::mem::take(&mut self.domains.datagram.echoes),
        };
        (outcome, self.peer)
    }

    /// Records a miss found after the step it belongs to had run (what
    /// followed a whole message, judged once the harness had answered).
    pub(crate) fn late_miss(&mut self, level: Level, step: String, at: At, detail: String) {
        self.misses.push(Miss {
            level,
            step,
            at,
            detail,
            hint: None,
        });
    }

    /// Whether a MUST miss or a fault was recorded.
    pub fn failed(&self) -> bool {
        self.fault.is_some() || self.misses.iter().any(|m| m.level == Level::Must)
    }

    /// Runs one step found at `at` (the steps inside it, of a `Repeat` or an
    /// `IfNext`, belong to the same place); returns false when a MUST miss
    /// or a fault ended the conversation.
    fn run_step(&mut self, step: &Step, at: At) -> bool {
        self.at = at;
        if let Step::Repeat { times, steps } = step {
            for _ in 0..*times {
                for inner in steps {
                    if !self.run_step(inner, at.within()) {
                        return false;
                    }
                }
            }
            return true;
        }
        if let Step::IfNext(n) = step {
            match self.next_is(n.on, &n.message) {
                Ok(Some(came)) => {
                    let note = if came { n.sent } else { n.skipped };
                    self.record_on(Some(n.on), Event::note(note));
                    self.notes.push(note.to_string());
                    if came {
                        for inner in &n.then {
                            if !self.run_step(inner, at.within()) {
                                return false;
                            }
                        }
                    }
                }
                // Nothing came: the next step waits for it and says so.
                Ok(None) => {}
                Err(StepError::Fault(detail)) => {
                    self.fault = Some(Fault {
                        step: step.to_string(),
                        at,
                        detail,
                    });
                    return false;
                }
                // A target that is gone is the next step's to report.
                Err(StepError::Missed { .. }) => {}
            }
            return true;
        }
        match self.step(step) {
            Ok(()) => true,
            Err(StepError::Missed {
                level,
                detail,
                hint,
            }) => {
                self.misses.push(Miss {
                    level,
                    step: step.to_string(),
                    at,
                    detail,
                    hint,
                });
                level != Level::Must
            }
            Err(StepError::Fault(detail)) => {
                self.fault = Some(Fault {
                    step: step.to_string(),
                    at,
                    detail,
                });
                false
            }
        }
    }

    /// Sends a step to its domain, or runs one every domain shares.
    fn step(&mut self, step: &Step) -> StepResult {
        if let Some(done) = step.run_in(self) {
            return done;
        }
        match step {
            Step::Pause(p) => {
                pause_for(p.duration(), &self.paused);
                Ok(())
            }
            Step::Settle => {
                self.settle();
                Ok(())
            }
            // Unrolled by `run_step`; the domains' steps ran above.
            _ => Ok(()),
        }
    }

    /// Whether the next message on `on` is `message`; taken when it is.
    /// `None` when nothing decided it within the reply deadline (nothing
    /// came, or the target ended its side). Asks the domain of the channel:
    /// streams for a connection, datagrams for a socket.
    pub(crate) fn next_is(
        &mut self,
        on: Channel,
        message: &[u8],
    ) -> Result<Option<bool>, StepError> {
        match on {
            Channel::Conn(conn) => self.next_bytes_are(conn, message),
            Channel::Sock(sock) => self.next_datagram_is(sock, message),
        }
    }

    pub(crate) fn record(&self, conn: Option<Conn>, event: Event) {
        if let Ok(mut t) = self.transcript.lock() {
            t.record(conn, event);
        }
    }

    /// Adds time spent watching on purpose (a window in which nothing may
    /// happen) to the deliberate waits.
    pub(crate) fn add_paused(&self, d: Duration) {
        if let Ok(mut t) = self.paused.lock() {
            *t += d;
        }
    }

    /// Waits until the target has acted on what it was just sent (a close,
    /// a reset): it exited, or it listens with every connection the
    /// harness closed closed and all its processes asleep, as the kernel
    /// shows them. A target the harness did not start cannot be watched:
    /// a fixed pause stands in.
    pub(crate) fn settle(&mut self) {
        let timing = self.timing;
        let started = Instant::now();
        let note = match &mut *self.peer {
            Peer::Launched(l) => {
                l.settle(&timing);
                let waited = started.elapsed();
                if let Ok(mut c) = self.confirming.lock() {
                    *c += waited;
                }
                let ms = waited.as_secs_f64() * 1000.0;
                match l.process().exited() {
                    Some(st) => {
                        format!("the target exited ({}) within {ms:.1}ms", describe_exit(st))
                    }
                    None if waited >= timing.deadline(Deadline::Settle) => {
                        format!("the target had not settled after {ms:.1}ms: it is still running")
                    }
                    None => format!("the target settled within {ms:.1}ms: asleep"),
                }
            }
            _ => {
                pause_for(Pause::Settle.duration(), &self.paused);
                format!(
                    "time-paced: the target's process is not the harness's to watch; paused {}",
                    Pause::Settle
                )
            }
        };
        self.record(None, Event::note(note));
    }

    /// Words for a miss that may be explained by the target having exited.
    pub(crate) fn target_gone(&mut self) -> String {
        match self.peer.process().and_then(|p| p.exited()) {
            Some(st) => format!(" (the target has exited: {})", describe_exit(st)),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Legal outcome sets: where the protocols allow more than one reaction,
    //! each is accepted; every other reaction is a miss that says what
    //! happened. The target here is a scripted server in a thread.

    use super::*;
    use crate::conversations::conversation::Conversation;
    use crate::judge::expect::Want;
    use crate::kernel::net;
    use crate::model::cut::Cut;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

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

    fn reply_or_close() -> Conversation {
        ask().expect_one_of(C1, [Want::Bytes(b"ERR\n".to_vec()), Want::End])
    }

    #[test]
    fn reply_or_close_accepts_the_reply() {
        let mut peer = scripted(|mut s| {
            // The reply in two pieces: the close alternative has missed
            // after the first, the reply still needs the second.
            s.write_all(b"ER").unwrap();
            thread::sleep(Duration::from_millis(20));
            s.write_all(b"R\n").unwrap();
        });
        let out = run(&mut peer, reply_or_close());
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn reply_or_close_accepts_the_close() {
        let mut peer = scripted(drop);
        let out = run(&mut peer, reply_or_close());
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn reply_or_close_misses_a_third_outcome_and_names_both_alternatives() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"OK\n").unwrap();
            thread::sleep(Duration::from_secs(1));
        });
        let out = run(&mut peer, reply_or_close());
        assert_eq!(out.misses.len(), 1, "{:?}", out.misses);
        assert_first_miss_says(
            &out,
            "expected one of: the bytes \"ERR\\n\", or end of stream (close or reset); \
             got 3 bytes \"OK\\n\"",
        );
    }

    #[test]
    fn reply_or_close_says_how_a_short_reply_ended() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"ER").unwrap();
        });
        let out = run(&mut peer, reply_or_close());
        assert_first_miss_says(&out, "got 2 bytes \"ER\", then the connection was closed");
    }

    #[test]
    fn reply_or_close_says_when_neither_came() {
        let mut peer = scripted(|s| {
            thread::sleep(Duration::from_secs(3));
            drop(s);
        });
        let out = run(&mut peer, reply_or_close());
        assert_first_miss_says(&out, "got nothing within 1.0s");
        assert_first_miss_says(&out, "the connection is still open");
    }

    /// A datagram server that receives one request and answers it with
    /// `reply`, or not at all.
    fn scripted_datagrams(reply: Option<&'static [u8]>) -> Peer {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            let Ok((_, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            if let Some(reply) = reply {
                let _ = socket.send_to(reply, from);
            }
        });
        Peer::Remote(addr)
    }

    fn datagram_or_silence() -> Conversation {
        use crate::judge::expect_datagram::DatagramWant;
        let u1 = crate::conversations::steps::Sock(1);
        Conversation::new()
            .send_datagram(u1, "hi")
            .expect_datagram_at(
                u1,
                DatagramWant::OneOf(vec![
                    DatagramWant::Exactly(b"ERR".to_vec()),
                    DatagramWant::Nothing,
                ]),
                Level::Must,
            )
    }

    #[test]
    fn datagram_or_silence_accepts_both_and_misses_another_datagram_naming_both() {
        let out = run(&mut scripted_datagrams(Some(b"ERR")), datagram_or_silence());
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let out = run(&mut scripted_datagrams(None), datagram_or_silence());
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let out = run(&mut scripted_datagrams(Some(b"OK")), datagram_or_silence());
        assert_first_miss_says(
            &out,
            "expected one of: a datagram \"ERR\" (3 bytes), or no datagram within the \
             deadline; got a datagram \"OK\" (2 bytes)",
        );
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

    #[test]
    fn a_miss_is_found_at_its_step_s_position_even_when_an_earlier_step_prints_alike() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"AB").unwrap();
        });
        let out = run(&mut peer, ask().expect_bytes(C1, "A").expect_bytes(C1, "A"));
        let at: Vec<At> = out.misses.iter().map(|m| m.at).collect();
        assert_eq!(
            at,
            [At::Step {
                index: 3,
                nested: false
            }]
        );
    }

    #[test]
    fn a_miss_inside_a_repeat_belongs_to_the_repeat() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"AB").unwrap();
        });
        let round = Conversation::new().expect_bytes(C1, "A");
        let out = run(&mut peer, ask().repeat(2, round));
        let at: Vec<At> = out.misses.iter().map(|m| m.at).collect();
        assert_eq!(
            at,
            [At::Step {
                index: 2,
                nested: true
            }]
        );
    }

    #[test]
    fn steps_played_in_several_parts_are_counted_from_the_first() {
        let mut peer = scripted(|mut s| {
            s.write_all(b"AB").unwrap();
        });
        let mut session = Session::new(&mut peer, Timing::new(0.5));
        assert!(session.play(&ask().steps));
        assert_eq!(session.steps_played(), 2);
        let part = Conversation::new()
            .expect_bytes(C1, "A")
            .expect_bytes(C1, "A");
        session.play(&part.steps);
        let (mut out, _) = session.finish();
        out.count_from(2);
        assert_eq!(
            out.misses.first().map(|m| m.at),
            Some(At::Step {
                index: 1,
                nested: false
            })
        );
    }

    #[test]
    fn a_step_on_a_connection_never_opened_is_a_fault_of_the_harness_not_a_miss() {
        let mut peer = scripted(|_| {});
        let c = ask().expect_bytes(Conn(2), "HI");
        let out = run(&mut peer, c);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        let fault = out.fault.expect("a fault");
        assert!(fault.detail.contains("c2 is not open"), "{}", fault.detail);
        assert!(
            fault.detail.contains("a bug in the suite"),
            "{}",
            fault.detail
        );
    }
}
