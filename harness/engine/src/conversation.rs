//! A check as data: the steps of one conversation with the target.
//!
//! A suite builds a [`Conversation`] (connect, send this cut this way, expect
//! that within a deadline, half-close, reset, kill the target...) and the
//! engine's [`session`](crate::session) runs it. Because a conversation is a
//! value, a failure can print every step it took and `--seed` can replay it.

use std::fmt;

use crate::check::Level;
use crate::cut::Cut;
use crate::show;
use crate::timing::{Deadline, Pause};

/// A connection of the conversation, by number: `c1`, `c2`...
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Conn(pub u8);

impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// What an expectation waits for on a connection.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Want {
    /// Exactly these bytes next, in any number of pieces. Bytes after them
    /// stay buffered for the next expectation.
    Bytes(Vec<u8>),
    /// Exactly these bytes and then nothing more for a quiet moment: a whole
    /// message from a client, with no stray newline after it.
    Message(Vec<u8>),
    /// These bytes next, and any white space that arrived with them is
    /// passed over: for checks about something other than stray newlines,
    /// so that one fault is not blamed in every check.
    Line(Vec<u8>),
    /// End of stream. A close and a reset are both accepted: the protocols
    /// allow a peer to end either way.
    End,
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Bytes(b) => write!(f, "{}", show::quoted(b, 48)),
            Want::Message(b) => write!(f, "exactly {}", show::quoted(b, 48)),
            Want::Line(b) => write!(
                f,
                "{} (white space after it passed over)",
                show::quoted(b, 48)
            ),
            Want::End => f.write_str("end of stream (close or reset)"),
        }
    }
}

/// One step of a conversation.
#[derive(Clone, PartialEq, Debug)]
pub enum Step {
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
    /// Wait deliberately.
    Pause(Pause),
    /// Run `steps` `times` times (reusing connection numbers).
    Repeat { times: u32, steps: Vec<Step> },
    /// Measure the CPU of the target's whole process tree and expect it idle.
    ExpectIdle,
    /// Remember the target's count of open descriptors.
    CountDescriptors,
    /// Expect the count of open descriptors back where it was remembered.
    ExpectDescriptorsBack { slack: usize },
    /// Kill the target and all its descendants, as a crash would.
    KillTarget,
    /// Start the target again on the same port and expect it to listen.
    RestartTarget,
    /// Write to the client's standard input.
    Input(Vec<u8>),
    /// Close the client's standard input (end of input).
    EndInput,
    /// Expect `text` on the client's standard output (after what earlier
    /// expectations matched).
    ExpectOutput { text: String, level: Level },
    /// Expect the client to exit with status 0 and no traceback.
    ExpectCleanExit { level: Level },
    /// Expect that no further connection arrives within `within`.
    ExpectNoConnection { within: Deadline, level: Level },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Connect {
                conn,
                small_buffers,
            } => {
                write!(f, "connect {conn} (TCP_NODELAY")?;
                if *small_buffers {
                    f.write_str(", smallest buffers")?;
                }
                f.write_str(")")
            }
            Step::Accept { conn } => write!(f, "accept {conn} from the client"),
            Step::Send { conn, data, cut } => {
                write!(f, "send on {conn} {}, cut: {cut}", show::sized(data, 48))
            }
            Step::Expect { conn, want, level } => {
                write!(f, "expect on {conn} {want}")?;
                if *level != Level::Must {
                    write!(f, " [{level}]")?;
                }
                Ok(())
            }
            Step::Observe {
                conn,
                want,
                question,
                ..
            } => {
                write!(f, "observe on {conn} {want}: {question}")
            }
            Step::ShutdownWrite { conn } => write!(f, "half-close {conn} (shutdown write)"),
            Step::Reset { conn } => write!(f, "reset {conn} (SO_LINGER 0, close)"),
            Step::Close { conn } => write!(f, "close {conn}"),
            Step::Pause(p) => write!(f, "pause {p}"),
            Step::Repeat { times, steps } => {
                write!(f, "repeat {times} times: ")?;
                for (i, s) in steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
            Step::ExpectIdle => f.write_str("measure the target's CPU, expect it idle"),
            Step::CountDescriptors => f.write_str("count the target's open descriptors"),
            Step::ExpectDescriptorsBack { slack } => {
                write!(f, "expect the descriptor count back (within {slack})")
            }
            Step::KillTarget => f.write_str("kill the target (SIGKILL, whole process tree)"),
            Step::RestartTarget => f.write_str("restart the target on the same port"),
            Step::Input(b) => write!(f, "type {}", show::quoted(b, 60)),
            Step::EndInput => f.write_str("end the input"),
            Step::ExpectOutput { text, .. } => {
                write!(f, "expect output {}", show::quoted(text.as_bytes(), 60))
            }
            Step::ExpectCleanExit { .. } => f.write_str("expect exit status 0, no traceback"),
            Step::ExpectNoConnection { .. } => f.write_str("expect no other connection"),
        }
    }
}

/// The steps of one check's conversation, built with a small vocabulary.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Conversation {
    pub steps: Vec<Step>,
}

impl Conversation {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    pub fn connect(self, conn: Conn) -> Self {
        self.step(Step::Connect {
            conn,
            small_buffers: false,
        })
    }

    /// Connects with the smallest socket buffers the kernel allows, so the
    /// target's sends meet a slow, small window.
    pub fn connect_small(self, conn: Conn) -> Self {
        self.step(Step::Connect {
            conn,
            small_buffers: true,
        })
    }

    pub fn accept(self, conn: Conn) -> Self {
        self.step(Step::Accept { conn })
    }

    pub fn send(self, conn: Conn, data: impl Into<Vec<u8>>, cut: Cut) -> Self {
        self.step(Step::Send {
            conn,
            data: data.into(),
            cut,
        })
    }

    /// Sends several messages joined in one write.
    pub fn send_merged(self, conn: Conn, messages: &[&[u8]]) -> Self {
        let cut = Cut::Merged(messages.iter().map(|m| m.len()).collect());
        self.send(conn, messages.concat(), cut)
    }

    pub fn expect(self, conn: Conn, want: Want) -> Self {
        self.expect_at(conn, want, Level::Must)
    }

    pub fn expect_at(self, conn: Conn, want: Want, level: Level) -> Self {
        self.step(Step::Expect { conn, want, level })
    }

    pub fn expect_bytes(self, conn: Conn, bytes: impl Into<Vec<u8>>) -> Self {
        self.expect(conn, Want::Bytes(bytes.into()))
    }

    pub fn expect_end(self, conn: Conn) -> Self {
        self.expect(conn, Want::End)
    }

    pub fn shutdown_write(self, conn: Conn) -> Self {
        self.step(Step::ShutdownWrite { conn })
    }

    pub fn reset(self, conn: Conn) -> Self {
        self.step(Step::Reset { conn })
    }

    pub fn close(self, conn: Conn) -> Self {
        self.step(Step::Close { conn })
    }

    pub fn pause(self, pause: Pause) -> Self {
        self.step(Step::Pause(pause))
    }

    pub fn input(self, text: &str) -> Self {
        self.step(Step::Input(text.as_bytes().to_vec()))
    }

    pub fn expect_output(self, text: &str) -> Self {
        self.step(Step::ExpectOutput {
            text: text.to_string(),
            level: Level::Must,
        })
    }

    /// Appends another conversation's steps.
    pub fn then(mut self, other: Conversation) -> Self {
        self.steps.extend(other.steps);
        self
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_prints_as_numbered_steps() {
        let c = Conversation::new()
            .connect(Conn(1))
            .send(Conn(1), "hi", Cut::Whole)
            .expect_bytes(Conn(1), "HI");
        assert_eq!(
            c.to_string(),
            "  1. connect c1 (TCP_NODELAY)\n  2. send on c1 \"hi\" (2 bytes), cut: whole\n  3. expect on c1 \"HI\"\n"
        );
    }
}
