//! Steps on the harness's datagram sockets (`u1`, `u2`...): send a datagram
//! to the target, expect the next datagram on a socket, expect none on any
//! socket within a window, observe what arrives, and check that a target
//! printed the address a datagram came from. Sockets open on first use; a
//! client under test sends to `u1`, the socket the harness bound on the
//! port the client was given. Whether a datagram meets an expectation is
//! [`crate::expect_datagram::judge`]'s to say; this module receives, asks
//! and words the answer.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::mailbox::{Datagram, Mailbox, Sock};
use super::{fault, miss, StepError, StepResult};
use crate::expect_datagram::{judge, DatagramWant, Mismatch};
use crate::level::Level;
use crate::session::{Peer, Session};
use crate::show;
use crate::timing::Deadline;
use crate::transcript::{Channel, Event};

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
/// request's length and the receive size of the profile.
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
    /// `u1` is the socket the harness bound for it to send to.
    fn mailbox(&mut self, sock: Sock) -> Result<&mut Mailbox, StepError> {
        if !self.mailboxes.contains_key(&sock) {
            let mailbox = match (&*self.peer, sock) {
                (Peer::DatagramClient { server, .. }, Sock(1)) => server
                    .try_clone()
                    .map(Mailbox::on)
                    .map_err(|e| fault(format!("could not use the harness's socket: {e}")))?,
                _ => Mailbox::open()
                    .map_err(|e| fault(format!("could not open a datagram socket: {e}")))?,
            };
            if let Some(local) = mailbox.local() {
                self.record_on(Some(sock.into()), Event::note(format!("bound to {local}")));
            }
            self.mailboxes.insert(sock, mailbox);
        }
        self.mailboxes
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
                .mailboxes
                .get(&sock)
                .and_then(|m| m.last_sender)
                .or_else(|| self.mailboxes.values().find_map(|m| m.last_sender)),
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
        let sent = mailbox.socket.send_to(data, to);
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
        let mailbox = self.mailbox(sock)?;
        if mailbox.queue.is_empty() {
            match mailbox.receive(deadline) {
                Ok(Some(d)) => {
                    self.record_on(
                        Some(sock.into()),
                        Event::received_datagram(&d.bytes, d.len, d.from),
                    );
                }
                Ok(None) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    let gone = self.target_gone();
                    return Err(miss(
                        Level::Must,
                        format!("the target's port is closed (port unreachable){gone}"),
                    ));
                }
                Err(e) => return Err(fault(format!("receiving a datagram failed: {e}"))),
            }
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
        let within = self.timing.deadline(Deadline::Reply);
        let Some(got) = self.next_datagram(sock, Instant::now() + within, true)? else {
            let gone = self.target_gone();
            let elsewhere = self.arrived_elsewhere(sock);
            return Err(miss(
                Level::Must,
                format!(
                    "no datagram arrived on {sock} within {:.1}s{gone}{elsewhere}",
                    within.as_secs_f64()
                ),
            ));
        };
        match judge(want, &got.bytes, got.from, self.reply_source()) {
            Ok(()) => Ok(()),
            Err(Mismatch::Sender { expected }) => Err(miss(
                Level::Must,
                format!(
                    "a datagram came from {}, not from the server's port {}: a reply must \
                     be sent from the socket the request arrived on",
                    got.from,
                    expected.port()
                ),
            )),
            Err(Mismatch::Bytes { .. }) => {
                let expected = match want {
                    DatagramWant::Exactly(b) => b.as_slice(),
                    DatagramWant::Any => &[],
                };
                let what = match (got.len, expected.len()) {
                    (0, _) => "an empty datagram arrived".to_string(),
                    (n, e) if n != e => format!("a datagram of {n} bytes arrived, not {e}"),
                    _ => "a different datagram arrived".to_string(),
                };
                let likely = match if_other {
                    Some(why) if got.len > 0 => format!("\n{why}"),
                    _ => String::new(),
                };
                Err(miss(
                    Level::Must,
                    format!(
                        "{what}\n{}{likely}",
                        show::compare(expected, &got.bytes).trim_end()
                    ),
                ))
            }
        }
    }

    /// For a datagram that never came: what the harness's other sockets
    /// received meanwhile (a reply sent to the wrong client), in a few
    /// words.
    fn arrived_elsewhere(&mut self, missing_on: Sock) -> String {
        let others: Vec<Sock> = self
            .mailboxes
            .keys()
            .copied()
            .filter(|s| *s != missing_on)
            .collect();
        let mut seen = Vec::new();
        for sock in others {
            while let Ok(Some(_)) = self.next_datagram_now(sock) {}
            if let Some(m) = self.mailboxes.get(&sock) {
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
        let Some(mailbox) = self.mailboxes.get_mut(&sock) else {
            return Ok(None);
        };
        if mailbox.queue.len() >= 8 {
            return Ok(None);
        }
        let got = mailbox.receive(Instant::now())?;
        if let Some(d) = &got {
            self.record_on(
                Some(sock.into()),
                Event::received_datagram(&d.bytes, d.len, d.from),
            );
        }
        Ok(got)
    }

    fn expect_no_datagram(&mut self, within: Deadline, meaning: &str) -> StepResult {
        let window = self.timing.deadline(within);
        let t0 = Instant::now();
        let deadline = t0 + window;
        if matches!(&*self.peer, Peer::DatagramClient { .. }) {
            // A client sends to u1 whether or not a step used it yet.
            self.mailbox(Sock(1))?;
        }
        let socks: Vec<Sock> = self.mailboxes.keys().copied().collect();
        // Anything already queued arrived unasked.
        for sock in &socks {
            if let Some(d) = self.mailboxes.get(sock).and_then(|m| m.queue.front()) {
                return Err(unexpected(*sock, d, meaning));
            }
        }
        // Each socket is watched in turn, in slices, until the window ends.
        let slice = crate::timing::Timing::POLL;
        let mut found = None;
        'watch: while Instant::now() < deadline {
            for sock in &socks {
                let until = (Instant::now() + slice).min(deadline);
                if let Some(d) = self.next_datagram(*sock, until, false)? {
                    found = Some((*sock, d));
                    break 'watch;
                }
            }
            if socks.is_empty() {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
        }
        self.add_paused(t0.elapsed());
        match found {
            Some((sock, d)) => Err(unexpected(sock, &d, meaning)),
            None => Ok(()),
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
            (Some(d), Some(Seen { sent, buf })) => format!(
                "a reply of {} bytes, so the target saw {}",
                d.len,
                crate::expect_datagram::seen_of(sent, d.len, buf)
            ),
            (Some(d), None) => format!("yes, a datagram of {} bytes", d.len),
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

/// A datagram where none was expected.
fn unexpected(sock: Sock, d: &Datagram, meaning: &str) -> StepError {
    miss(
        Level::Must,
        format!(
            "{sock} received another datagram, of {} bytes from {}: {}; {meaning}",
            d.len,
            d.from,
            show::quoted(&d.bytes, 48)
        ),
    )
}
