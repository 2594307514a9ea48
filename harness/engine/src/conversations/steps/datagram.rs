//! Steps on the harness's datagram sockets (`u1`, `u2`...): send a datagram
//! to the target, expect the next datagram on a socket, expect none on any
//! socket within a window, observe what arrives, and check that a target
//! printed the address a datagram came from. Sockets open on first use; a
//! client under test sends to `u1`, the socket the harness bound on the
//! port the client was given. Whether a datagram meets an expectation is
//! [`crate::judge::expect_datagram::judge`]'s to say; this module receives, asks
//! and words the answer.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::mailbox::{Datagram, DatagramState, Mailbox, Sock};
use super::{fault, miss, miss_with_hint, Domain, Runs, StepError, StepResult};
use crate::conversations::session::{Peer, Session};
use crate::conversations::transcript::{Channel, Event, FromBytes};
use crate::judge::expect_datagram::{judge, DatagramWant, Mismatch};
use crate::judge::show;
use crate::model::hint::EchoLength;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Timing};
use crate::targets::starting::StartWatch;

/// A step on the harness's datagram sockets.
#[derive(Clone, PartialEq, Debug)]
pub enum DatagramStep {
    /// Send `data` as one datagram from `sock` to the target: to the
    /// server's port, or to the client under test where its last datagram
    /// came from.
    Send { sock: Sock, data: Vec<u8> },
    /// Expect the next datagram on `sock` to be `want`, from the target,
    /// within the reply deadline; a miss weighs `level`.
    Expect {
        sock: Sock,
        want: DatagramWant,
        level: Level,
        /// What another non-empty datagram arriving instead likely means,
        /// added to the miss.
        if_other: Option<&'static str>,
    },
    /// Expect the next datagrams on `sock` to be exactly `wants`, one each,
    /// in any order: UDP keeps no order, and a server with several workers
    /// answers in the order they finish. The order seen is reported when it
    /// is not the order of `wants`.
    ExpectEach { sock: Sock, wants: Vec<Vec<u8>> },
    /// Ask whether the target still serves: send `request` from the first
    /// socket of `from`, and from the next ones in turn while no reply
    /// comes; a datagram holding `want` arriving on any of the harness's
    /// sockets is the sign. Where a reply goes is not judged here.
    ExpectServing {
        from: Vec<Sock>,
        request: Vec<u8>,
        want: Vec<u8>,
    },
    /// Expect no datagram on any open socket within `within`; one that
    /// arrives is a miss at `level`, worded with `meaning`.
    ExpectNone {
        within: Deadline,
        level: Level,
        meaning: &'static str,
    },
    /// Record, without consuming it, the length of the next datagram on
    /// `sock` within `within`, as the answer to `question`; never a miss.
    /// `sent` is the length of the request it answers, when what the
    /// target saw of the request is worth saying.
    Observe {
        sock: Sock,
        within: Deadline,
        question: &'static str,
        seen_of: Option<Seen>,
    },
    /// Expect the target's standard output to show the port `sock` sends
    /// from: a server that prints who each message came from.
    ExpectSenderPrinted { sock: Sock, level: Level },
}

/// What the length of an echo says about what the target received: the
/// request's length and the receive size the check was built for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Seen {
    pub sent: usize,
    pub buf: usize,
}

impl DatagramStep {
    pub fn needs_process(&self) -> bool {
        matches!(self, DatagramStep::ExpectSenderPrinted { .. })
    }
}

impl fmt::Display for DatagramStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramStep::Send { sock, data } => {
                write!(f, "send from {sock} one datagram {}", show::sized(data, 48))
            }
            DatagramStep::Expect {
                sock, want, level, ..
            } => {
                write!(f, "expect on {sock} {want}")?;
                if *level != Level::Must {
                    write!(f, " [{level}]")?;
                }
                Ok(())
            }
            DatagramStep::ExpectEach { sock, wants } => {
                write!(
                    f,
                    "expect on {sock} {} datagrams, one for each request, in any order",
                    wants.len()
                )
            }
            DatagramStep::ExpectServing { from, request, .. } => {
                write!(f, "send {}", show::sized(request, 48))?;
                if let Some((first, rest)) = from.split_first() {
                    write!(f, " from {first}")?;
                    if !rest.is_empty() {
                        let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
                        write!(f, " (then from {} while no reply comes)", rest.join(", "))?;
                    }
                }
                f.write_str(" and expect its reply on any socket: the server still serves")
            }
            DatagramStep::ExpectNone { within, .. } => {
                write!(f, "expect no other datagram ({} window)", within.name())
            }
            DatagramStep::Observe { sock, question, .. } => {
                write!(f, "observe on {sock}: {question}")
            }
            DatagramStep::ExpectSenderPrinted { sock, .. } => {
                write!(f, "expect output showing the port {sock} sent from")
            }
        }
    }
}

impl Domain for DatagramStep {
    type State = DatagramState;
}

impl Runs<DatagramStep> for Session<'_> {
    fn run(&mut self, step: &DatagramStep) -> StepResult {
        self.run_datagram(step)
    }

    /// Closes the harness's sockets.
    fn close(&mut self) {
        self.domains.datagram.mailboxes.clear();
    }
}

impl Session<'_> {
    pub(crate) fn run_datagram(&mut self, step: &DatagramStep) -> StepResult {
        match step {
            DatagramStep::Send { sock, data } => self.send_datagram(*sock, data),
            DatagramStep::Expect {
                sock,
                want,
                level,
                if_other,
            } => self
                .expect_datagram(*sock, want, *if_other)
                .map_err(|e| e.at_level(*level)),
            DatagramStep::ExpectEach { sock, wants } => self.expect_each(*sock, wants),
            DatagramStep::ExpectServing {
                from,
                request,
                want,
            } => self.expect_serving(from, request, want),
            DatagramStep::ExpectNone {
                within,
                level,
                meaning,
            } => self
                .expect_no_datagram(*within, meaning)
                .map_err(|e| e.at_level(*level)),
            DatagramStep::Observe {
                sock,
                within,
                question,
                seen_of,
            } => self.observe_datagram(*sock, *within, question, *seen_of),
            DatagramStep::ExpectSenderPrinted { sock, level } => self
                .expect_sender_printed(*sock)
                .map_err(|e| e.at_level(*level)),
        }
    }

    /// The mailbox of `sock`, opened on first use. A client under test's
    /// `u1` is the socket the harness bound for it to send to, on both
    /// loopbacks; any other socket is on the loopback of the target's
    /// address.
    fn mailbox(&mut self, sock: Sock) -> Result<&mut Mailbox, StepError> {
        if !self.domains.datagram.mailboxes.contains_key(&sock) {
            let toward = self.datagram_target(sock);
            let mut v4_only = None;
            let mailbox = match (&*self.peer, sock) {
                (Peer::DatagramClient { server, .. }, Sock(1)) => {
                    v4_only = server.v6_absent().map(|e| {
                        format!(
                            "bound on 127.0.0.1 only: this machine has no IPv6 loopback ({e}); \
                             a client that sends to ::1, or to localhost resolved to ::1, \
                             reaches nobody"
                        )
                    });
                    let sockets: std::io::Result<Vec<_>> =
                        server.sockets().map(|s| s.try_clone()).collect();
                    sockets
                        .map(Mailbox::on)
                        .map_err(|e| fault(format!("could not use the harness's socket: {e}")))?
                }
                _ => Mailbox::open(toward)
                    .map_err(|e| fault(format!("could not open a datagram socket: {e}")))?,
            };
            let locals: Vec<String> = mailbox.locals().iter().map(|a| a.to_string()).collect();
            if !locals.is_empty() {
                self.record_on(
                    Some(sock.into()),
                    Event::note(format!("bound to {}", locals.join(" and "))),
                );
            }
            if let Some(why) = v4_only {
                self.record_on(Some(sock.into()), Event::note(why));
            }
            self.domains.datagram.mailboxes.insert(sock, mailbox);
        }
        self.domains
            .datagram
            .mailboxes
            .get_mut(&sock)
            .ok_or_else(|| fault(format!("{sock} could not be opened")))
    }

    /// Where the target receives: a server's address, or the address a
    /// client under test last sent from (to any of the harness's sockets).
    fn datagram_target(&self, sock: Sock) -> Option<SocketAddr> {
        match &*self.peer {
            Peer::Launched(l) => Some(l.addr()),
            Peer::Remote(a) => Some(*a),
            Peer::Client { .. } => None,
            Peer::DatagramClient { .. } => self
                .domains
                .datagram
                .mailboxes
                .get(&sock)
                .and_then(|m| m.last_sender)
                .or_else(|| {
                    self.domains
                        .datagram
                        .mailboxes
                        .values()
                        .find_map(|m| m.last_sender)
                }),
        }
    }

    /// The address a reply from the target must come from: a server answers
    /// from the port it was sent to; a client may send from any port.
    fn reply_source(&self) -> Option<SocketAddr> {
        match &*self.peer {
            Peer::Launched(l) => Some(l.addr()),
            Peer::Remote(a) => Some(*a),
            _ => None,
        }
    }

    fn send_datagram(&mut self, sock: Sock, data: &[u8]) -> StepResult {
        self.mailbox(sock)?;
        let Some(to) = self.datagram_target(sock) else {
            return Err(fault(format!(
                "{sock} has nobody to send to: the client under test has sent nothing yet \
                 (a bug in the suite: expect its datagram first)"
            )));
        };
        let mailbox = self.mailbox(sock)?;
        let sent = mailbox.send_to(data, to);
        match sent {
            Ok(_) => {
                self.record_on(Some(sock.into()), Event::sent_datagram(data, to));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let gone = self.target_gone();
                Err(miss(
                    Level::Must,
                    format!("nothing receives on {to} any more (port unreachable){gone}"),
                ))
            }
            Err(e) => Err(fault(format!(
                "could not send a datagram of {} bytes to {to}: {e}",
                data.len()
            ))),
        }
    }

    /// The next datagram on `sock`, from its queue or the socket, by
    /// `deadline`.
    fn next_datagram(
        &mut self,
        sock: Sock,
        deadline: Instant,
        consume: bool,
    ) -> Result<Option<Datagram>, StepError> {
        if self.mailbox(sock)?.queue.is_empty() && self.receive_on(sock, deadline)?.is_none() {
            return Ok(None);
        }
        let mailbox = self.mailbox(sock)?;
        Ok(if consume {
            mailbox.queue.pop_front()
        } else {
            mailbox.queue.front().cloned()
        })
    }

    fn expect_datagram(
        &mut self,
        sock: Sock,
        want: &DatagramWant,
        if_other: Option<&str>,
    ) -> StepResult {
        // A client under test's first datagram comes once its program has
        // started, as a stream client's first connection does: it gets the
        // accept deadline, a reply the reply deadline.
        let first_from_client = matches!(&*self.peer, Peer::DatagramClient { .. })
            && self
                .domains
                .datagram
                .mailboxes
                .values()
                .all(|m| m.last_sender.is_none());
        let (got, within, why_longer) = if first_from_client {
            self.first_datagram(sock)?
        } else {
            let within = self.timing.deadline(Deadline::Reply);
            (
                self.next_datagram(sock, Instant::now() + within, true)?,
                within,
                "",
            )
        };
        let Some(got) = got else {
            if want.met_by_silence() {
                return Ok(());
            }
            let gone = self.target_gone();
            let elsewhere = self.arrived_elsewhere(sock);
            if let DatagramWant::OneOf(_) = want {
                return Err(miss(
                    Level::Must,
                    format!(
                        "expected {want}; got no datagram on {sock} within {:.1}s{gone}{elsewhere}",
                        within.as_secs_f64()
                    ),
                ));
            }
            return Err(miss(
                Level::Must,
                format!(
                    "no datagram arrived on {sock} within {:.1}s{why_longer}{gone}{elsewhere}",
                    within.as_secs_f64()
                ),
            ));
        };
        match judge(want, &got.bytes, got.from, self.reply_source()) {
            Ok(()) => Ok(()),
            Err(Mismatch::Sender { expected }) => Err(wrong_sender(got.from, expected)),
            Err(Mismatch::Arrived | Mismatch::NoneOf) => Err(miss(
                Level::Must,
                format!(
                    "expected {want}; got a datagram {}",
                    show::sized(&got.bytes, 48)
                ),
            )),
            Err(Mismatch::Bytes { .. }) => {
                let expected = want.bytes();
                let what = match (got.len, expected.len()) {
                    (0, _) => "an empty datagram arrived".to_string(),
                    (n, e) if n != e => format!("a datagram of {n} bytes arrived, not {e}"),
                    _ => "a different datagram arrived".to_string(),
                };
                // A line typed earlier is that line sent, whatever else an
                // unexpected datagram might have been.
                let typed = self.domains.stdio.typed.contains(&got.bytes);
                let likely = match if_other {
                    _ if typed && got.len > 0 => format!(
                        "\nit holds {}, a line typed earlier: the client sent that line",
                        show::quoted(&got.bytes, 60)
                    ),
                    Some(why) if got.len > 0 => format!("\n{why}"),
                    _ => String::new(),
                };
                let detail = format!(
                    "{what}\n{}{likely}",
                    show::compare(expected, &got.bytes).trim_end()
                );
                // A client's line followed by white space: the newline
                // travelled with the text.
                let newline = matches!(&*self.peer, Peer::DatagramClient { .. })
                    && !expected.is_empty()
                    && got.bytes.len() > expected.len()
                    && got.bytes.starts_with(expected)
                    && got.bytes[expected.len()..]
                        .iter()
                        .all(u8::is_ascii_whitespace);
                // The expected bytes and then only zero bytes: the program
                // sent its whole receive buffer.
                let padded = got.bytes.len() > expected.len()
                    && got.bytes.starts_with(expected)
                    && got.bytes[expected.len()..].iter().all(|&b| b == 0);
                if padded {
                    let zeros = got.bytes.len() - expected.len();
                    let what = if expected.is_empty() {
                        format!("{zeros} zero bytes")
                    } else {
                        format!("the expected bytes followed by {zeros} zero bytes")
                    };
                    return Err(miss_with_hint(
                        Level::Must,
                        detail,
                        format!(
                            "the datagram is {what}: the program sent its whole buffer; send \
                             only the bytes received (Java: new String(packet.getData(), 0, \
                             packet.getLength()); C: sendto with the length recvfrom returned)"
                        ),
                    ));
                }
                if newline {
                    return Err(miss_with_hint(
                        Level::Must,
                        detail,
                        "the datagram holds the line and the newline after it: strip the \
                         line before sending it (line.strip(), or rstrip('\\n')), so only \
                         its text travels",
                    ));
                }
                Err(miss(Level::Must, detail))
            }
        }
    }

    fn expect_each(&mut self, sock: Sock, wants: &[Vec<u8>]) -> StepResult {
        let within = self.timing.deadline(Deadline::Reply);
        // The requests not answered yet, by their place among `wants`.
        let mut open: Vec<usize> = (0..wants.len()).collect();
        let mut order = Vec::with_capacity(wants.len());
        // The lengths of replies that begin with their request's answer but
        // carry more.
        let mut longer = Vec::new();
        while !open.is_empty() {
            let Some(got) = self.next_datagram(sock, Instant::now() + within, true)? else {
                let gone = self.target_gone();
                let elsewhere = self.arrived_elsewhere(sock);
                let missing: Vec<String> =
                    open.iter().map(|&i| show::quoted(&wants[i], 24)).collect();
                return Err(miss(
                    Level::Must,
                    format!(
                        "{} of {} replies arrived on {sock}; none arrived within {:.1}s for {}{gone}{elsewhere}",
                        order.len(),
                        wants.len(),
                        within.as_secs_f64(),
                        missing.join(", ")
                    ),
                ));
            };
            if let Err(Mismatch::Sender { expected }) = judge(
                &DatagramWant::Any,
                &got.bytes,
                got.from,
                self.reply_source(),
            ) {
                return Err(wrong_sender(got.from, expected));
            }
            // A reply is its request's when it is exactly the expected
            // bytes or, failing that, begins with them: a server that sends
            // its whole receive buffer (padded with zeros, or with the
            // string's terminator) still answers each request once, to its
            // sender, which is what is judged here; its content is for the
            // echo check.
            let exact = open.iter().position(|&i| wants[i] == got.bytes);
            let padded = || {
                open.iter()
                    .position(|&i| !wants[i].is_empty() && got.bytes.starts_with(&wants[i]))
            };
            match exact.or_else(|| padded().inspect(|_| longer.push(got.len))) {
                Some(at) => order.push(open.remove(at)),
                None => {
                    // The unanswered request it is nearest to: one of the
                    // same length, else the oldest.
                    let nearest = open
                        .iter()
                        .copied()
                        .find(|&i| wants[i].len() == got.len)
                        .unwrap_or(open[0]);
                    let what = if got.len == 0 {
                        "an empty datagram".to_string()
                    } else {
                        format!("a datagram of {} bytes", got.len)
                    };
                    return Err(miss(
                        Level::Must,
                        format!(
                            "{what} arrived that is the reply to none of the {} requests \
                             still unanswered, in any order; beside the nearest:\n{}",
                            open.len(),
                            show::compare(&wants[nearest], &got.bytes).trim_end()
                        ),
                    ));
                }
            }
        }
        if let Some(len) = longer.first() {
            let note = format!(
                "replies began with the expected answer and carried more (a datagram of \
                 {len} bytes): each request was still answered once, to its sender; what a \
                 reply holds is for the echo check to judge"
            );
            self.record_on(Some(sock.into()), Event::note(note.clone()));
            // Said once per check, however many sockets it expected on.
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
        if order.windows(2).any(|w| w[0] > w[1]) {
            let seen: Vec<String> = order.iter().map(|i| (i + 1).to_string()).collect();
            let note = format!(
                "the replies came in another order than the requests: those to requests {}, \
                 each matching its own (UDP keeps no order)",
                seen.join(", ")
            );
            self.record_on(Some(sock.into()), Event::note(note.clone()));
            self.notes.push(note);
        }
        Ok(())
    }

    fn expect_serving(&mut self, from: &[Sock], request: &[u8], want: &[u8]) -> StepResult {
        let mut asked = Vec::new();
        for (n, sock) in from.iter().enumerate() {
            self.send_datagram(*sock, request)?;
            asked.push(sock.to_string());
            // The last probe waits for a reply as long as any request does;
            // the ones before it as long as a reply on loopback takes with
            // a wide margin.
            let within = if n + 1 == from.len() {
                self.timing.deadline(Deadline::Reply)
            } else {
                self.timing.deadline(Deadline::Quiet)
            };
            if let Some(on) = self.await_anywhere(want, Instant::now() + within)? {
                if on != from[0] {
                    let note = format!(
                        "the server still serves: the probe sent from {} was answered on {on} \
                         (where its replies go is for the senders check to judge)",
                        asked.join(" and then from ")
                    );
                    self.record_on(Some(on.into()), Event::note(note.clone()));
                    self.notes.push(note);
                }
                // A slow reply to an earlier probe is no extra datagram.
                self.take_everywhere(want);
                return Ok(());
            }
        }
        let gone = self.target_gone();
        let within = if gone.is_empty() {
            format!(
                " within {:.1}s",
                self.timing.deadline(Deadline::Reply).as_secs_f64()
            )
        } else {
            String::new()
        };
        Err(miss(
            Level::Must,
            format!(
                "no reply to {} sent from {} arrived on any of the harness's sockets{within}: \
                 the server no longer serves{gone}",
                show::quoted(request, 32),
                asked.join(" and "),
            ),
        ))
    }

    /// Waits until a datagram holding `want` is queued on any socket, and
    /// takes it: the socket it arrived on, or `None` at the deadline.
    fn await_anywhere(
        &mut self,
        want: &[u8],
        deadline: Instant,
    ) -> Result<Option<Sock>, StepError> {
        let socks: Vec<Sock> = self.domains.datagram.mailboxes.keys().copied().collect();
        for polls in 0u32.. {
            for sock in &socks {
                while let Ok(Some(_)) = self.next_datagram_now(*sock) {}
                let Some(m) = self.domains.datagram.mailboxes.get_mut(sock) else {
                    continue;
                };
                if let Some(at) = m.queue.iter().position(|d| holds(&d.bytes, want)) {
                    m.queue.remove(at);
                    return Ok(Some(*sock));
                }
            }
            // A target that has exited answers nothing more; what it sent
            // before it ended was taken above.
            let exited = self.peer.process().is_some_and(|p| p.exited().is_some());
            if Instant::now() >= deadline || exited {
                return Ok(None);
            }
            // A reply on loopback takes a fraction of a millisecond: look
            // often at first, then less.
            let pause = match polls {
                0..20 => Timing::FIRST_POLL,
                _ => Timing::POLL,
            };
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        }
        Ok(None)
    }

    /// Takes every queued datagram holding `want` ([`holds`]), on every
    /// socket.
    fn take_everywhere(&mut self, want: &[u8]) {
        let socks: Vec<Sock> = self.domains.datagram.mailboxes.keys().copied().collect();
        for sock in socks {
            while let Ok(Some(_)) = self.next_datagram_now(sock) {}
            if let Some(m) = self.domains.datagram.mailboxes.get_mut(&sock) {
                m.queue.retain(|d| !holds(&d.bytes, want));
            }
        }
    }

    /// For a datagram that never came: what the harness's other sockets
    /// received meanwhile (a reply sent to the wrong client), in a few
    /// words.
    fn arrived_elsewhere(&mut self, missing_on: Sock) -> String {
        let others: Vec<Sock> = self
            .domains
            .datagram
            .mailboxes
            .keys()
            .copied()
            .filter(|s| *s != missing_on)
            .collect();
        let mut seen = Vec::new();
        for sock in others {
            while let Ok(Some(_)) = self.next_datagram_now(sock) {}
            if let Some(m) = self.domains.datagram.mailboxes.get(&sock) {
                for d in &m.queue {
                    seen.push(format!("{sock} received {}", show::quoted(&d.bytes, 32)));
                }
            }
        }
        if seen.is_empty() {
            return String::new();
        }
        format!(
            "; meanwhile {}: the reply went to another socket than the request's sender",
            seen.join(", ")
        )
    }

    /// Takes into `sock`'s queue a datagram already waiting, if any.
    fn next_datagram_now(&mut self, sock: Sock) -> io::Result<Option<Datagram>> {
        let Some(mailbox) = self.domains.datagram.mailboxes.get_mut(&sock) else {
            return Ok(None);
        };
        if mailbox.queue.len() >= 8 {
            return Ok(None);
        }
        let previous_to = mailbox.last_to;
        let got = mailbox.receive(Instant::now())?;
        if let Some(d) = &got {
            self.record_received(sock, d, previous_to);
        }
        Ok(got)
    }

    /// Watches every socket until `within` has passed; the late window
    /// instead lasts until that long after the last datagram that arrived
    /// (and at least a quiet window), so a reply repeated hundreds of
    /// milliseconds later is still seen. Every datagram that arrives
    /// meanwhile is counted.
    fn expect_no_datagram(&mut self, within: Deadline, meaning: &str) -> StepResult {
        let t0 = Instant::now();
        if matches!(&*self.peer, Peer::DatagramClient { .. }) {
            // A client sends to u1 whether or not a step used it yet.
            self.mailbox(Sock(1))?;
        }
        let last = self
            .domains
            .datagram
            .mailboxes
            .values()
            .filter_map(|m| m.last_arrival)
            .max();
        let deadline = match (within, last) {
            (Deadline::Late, Some(at)) => {
                (t0 + self.timing.deadline(Deadline::Quiet)).max(at + self.timing.deadline(within))
            }
            (Deadline::Late, None) => t0 + self.timing.deadline(Deadline::Quiet),
            _ => t0 + self.timing.deadline(within),
        };
        let socks: Vec<Sock> = self.domains.datagram.mailboxes.keys().copied().collect();
        // Anything already queued arrived unasked.
        let mut extra: Vec<(Sock, Datagram, Instant)> = Vec::new();
        for sock in &socks {
            if let Some(m) = self.domains.datagram.mailboxes.get_mut(sock) {
                extra.extend(m.queue.drain(..).map(|d| (*sock, d, t0)));
            }
        }
        // Each socket is watched in turn, in slices, until the window ends;
        // a flood is counted up to a bound, not read forever.
        let slice = Timing::POLL;
        while Instant::now() < deadline && extra.len() < EXTRA_COUNTED {
            for sock in &socks {
                let until = (Instant::now() + slice).min(deadline);
                if let Some(d) = self.receive_on(*sock, until)? {
                    extra.push((*sock, d, Instant::now()));
                    if let Some(m) = self.domains.datagram.mailboxes.get_mut(sock) {
                        m.queue.pop_back();
                    }
                }
            }
            if socks.is_empty() {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
        }
        self.add_paused(t0.elapsed());
        let Some((sock, first, at)) = extra.first() else {
            return Ok(());
        };
        let late = match last {
            Some(before) if *at > before => format!(
                ", {} ms after the last datagram expected",
                at.duration_since(before).as_millis()
            ),
            _ => String::new(),
        };
        let first = format!(
            "of {} bytes from {}{late}: {}",
            first.len,
            first.from,
            show::quoted(&first.bytes, 48)
        );
        let what = match extra.len() {
            1 => format!("{sock} received another datagram, {first}"),
            n if n >= EXTRA_COUNTED => {
                format!("{n} or more datagrams arrived; the first on {sock}, {first}")
            }
            n => format!("{n} more datagrams arrived; the first on {sock}, {first}"),
        };
        Err(miss(Level::Must, format!("{what}; {meaning}")))
    }

    /// A client's first datagram: it comes once the client's program runs,
    /// so the wait is the accept deadline, stretched while the program is
    /// still starting ([`StartWatch`]). Gives what arrived, how long was
    /// waited and words for a stretched wait.
    fn first_datagram(
        &mut self,
        sock: Sock,
    ) -> Result<(Option<Datagram>, Duration, &'static str), StepError> {
        let mut watch = StartWatch::new(self.timing);
        let slice = Duration::from_millis(100);
        loop {
            // Looked at before the receive: a client that sent and exited
            // left its datagram in the queue for one last receive.
            let exited = self
                .peer
                .process()
                .is_none_or(|process| process.exited().is_some());
            if let Some(d) = self.next_datagram(sock, Instant::now() + slice, true)? {
                return Ok((Some(d), watch.waited(), ""));
            }
            let keep = match self.peer.process() {
                Some(process) if !exited => watch.keep_waiting(process),
                _ => false,
            };
            if !keep {
                return Ok((None, watch.waited(), watch.why_longer()));
            }
        }
    }

    /// Receives one datagram on `sock` into its queue by `deadline`, and
    /// records it.
    fn receive_on(&mut self, sock: Sock, deadline: Instant) -> Result<Option<Datagram>, StepError> {
        let mailbox = self.mailbox(sock)?;
        let previous_to = mailbox.last_to;
        match mailbox.receive(deadline) {
            Ok(Some(d)) => {
                self.record_received(sock, &d, previous_to);
                Ok(Some(d))
            }
            Ok(None) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let gone = self.target_gone();
                Err(miss(
                    Level::Must,
                    format!("the target's port is closed (port unreachable){gone}"),
                ))
            }
            Err(e) => Err(fault(format!("receiving a datagram failed: {e}"))),
        }
    }

    fn observe_datagram(
        &mut self,
        sock: Sock,
        within: Deadline,
        question: &str,
        seen: Option<Seen>,
    ) -> StepResult {
        let window = self.timing.deadline(within);
        let got = self.next_datagram(sock, Instant::now() + window, false)?;
        let answer = match (got, seen) {
            (None, _) => format!("no datagram within {:.1}s", window.as_secs_f64()),
            (Some(d), Some(Seen { sent, buf })) => {
                self.domains.datagram.echoes.push(EchoLength {
                    sent,
                    reply: d.len,
                    buf,
                });
                format!(
                    "a reply of {} bytes, so the target saw {}",
                    d.len,
                    crate::judge::expect_datagram::seen_of(sent, d.len, buf)
                )
            }
            (Some(d), None) => {
                // A line sent again is a resend, not the line after it.
                let at = self.domains.stdio.typed.iter().position(|l| *l == d.bytes);
                match at {
                    Some(i) if i + 1 < self.domains.stdio.typed.len() => format!(
                        "no: it sent {} again, a line it had already sent (a resend)",
                        show::quoted(&d.bytes, 60)
                    ),
                    Some(_) => format!("yes, {}", show::quoted(&d.bytes, 60)),
                    None => format!("yes, a datagram of {} bytes", d.len),
                }
            }
        };
        let note = format!("{question}: {answer}");
        self.record_on(Some(sock.into()), Event::note(note.clone()));
        self.notes.push(note);
        Ok(())
    }

    fn expect_sender_printed(&mut self, sock: Sock) -> StepResult {
        let port = self
            .mailbox(sock)?
            .local()
            .map(|a| a.port())
            .ok_or_else(|| fault(format!("{sock} has no address")))?;
        let within = self.timing.deadline(Deadline::Output);
        let p = self.own_process("read the output of")?;
        let needle = port.to_string();
        match p
            .stdout()
            .wait_for(needle.as_bytes(), 0, Instant::now() + within)
        {
            Some(_) => Ok(()),
            None => Err(miss(
                Level::Must,
                format!(
                    "its output never showed the sender's port {port}; it printed {}",
                    show::quoted(&p.stdout().since(0), 120)
                ),
            )),
        }
    }

    /// Records a datagram received on `sock`. On a socket bound to both
    /// loopbacks, the address the client sent to is said first, whenever
    /// it is not the one of the datagram before (`previous_to`).
    fn record_received(&self, sock: Sock, d: &Datagram, previous_to: Option<SocketAddr>) {
        let both = self
            .domains
            .datagram
            .mailboxes
            .get(&sock)
            .is_some_and(|m| m.locals().len() > 1);
        if both && previous_to != Some(d.to) {
            self.record_on(
                Some(sock.into()),
                Event::note(format!("the client sent to {}", d.to)),
            );
        }
        self.record_on(
            Some(sock.into()),
            Event::received_datagram(&d.bytes, d.len, d.from),
        );
    }

    /// Whether the next datagram on `sock` holds exactly `message`, taken
    /// when it does; `None` when none came within the reply deadline.
    pub(crate) fn next_datagram_is(
        &mut self,
        sock: Sock,
        message: &[u8],
    ) -> Result<Option<bool>, StepError> {
        let within = self.timing.deadline(Deadline::Reply);
        let Some(next) = self.next_datagram(sock, Instant::now() + within, false)? else {
            return Ok(None);
        };
        let same = next.len == message.len() && next.bytes == message;
        if same {
            self.next_datagram(sock, Instant::now(), true)?;
        }
        Ok(Some(same))
    }

    pub(crate) fn record_on(&self, channel: Option<Channel>, event: Event) {
        if let Ok(mut t) = self.transcript.lock() {
            t.record_on(channel, event);
        }
    }
}

/// How many datagrams where none may come are counted before the watch
/// stops: a flood is named as such, not read to the end of the window.
const EXTRA_COUNTED: usize = 64;

/// A reply from another port than the server's.
fn wrong_sender(from: SocketAddr, expected: SocketAddr) -> StepError {
    miss(
        Level::Must,
        format!(
            "a datagram came from {from}, not from the server's port {}: a reply must be sent \
             from the socket the request arrived on",
            expected.port()
        ),
    )
}

/// Whether a datagram is a sign that the probe `want` was served: it holds
/// the probe's text, whatever its case and whatever surrounds it. A server
/// that pads every reply to its buffer's size, or echoes without upper-casing,
/// still serves; what is wrong with its replies is for the checks that judge
/// replies to say.
fn holds(datagram: &[u8], want: &[u8]) -> bool {
    !want.is_empty()
        && datagram
            .windows(want.len())
            .any(|w| w.eq_ignore_ascii_case(want))
}
