//! The steps a conversation is made of, one module per domain: stream
//! connections ([`stream`], on [`link`]s), datagram sockets ([`datagram`], on
//! [`mailbox`]es), the target's
//! process ([`process`]), its standard input and output ([`stdio`]) and its
//! files ([`files`]). Each domain module holds its steps, how they print,
//! whether they need the target's process, and how they run against a
//! [`Session`](crate::conversations::session::Session). A new kind of step touches its
//! domain's module and nothing shared.

pub mod datagram;
pub mod files;
pub mod link;
pub mod mailbox;
pub mod process;
pub mod stdio;
pub mod stream;
mod stream_close;
mod stream_open;
mod stream_read;
pub(crate) mod writer;

use std::fmt;

use crate::conversations::transcript::Channel;
use crate::judge::show;
use crate::model::level::Level;
use crate::model::timing::Pause;

pub use datagram::DatagramStep;
pub use files::FileStep;
pub use link::Conn;
pub use mailbox::Sock;
pub use process::ProcessStep;
pub use stdio::StdioStep;
pub use stream::StreamStep;

/// One step of a conversation.
#[derive(Clone, PartialEq, Debug)]
pub enum Step {
    Stream(StreamStep),
    Datagram(DatagramStep),
    Process(ProcessStep),
    Stdio(StdioStep),
    Files(FileStep),
    /// Wait deliberately.
    Pause(Pause),
    /// Wait until the target has acted on what it was just sent (a close,
    /// a reset; datagrams: taken every one it is going to take), as the
    /// kernel shows its process, its threads and its sockets.
    Settle,
    /// Run `steps` `times` times (reusing connection numbers).
    Repeat {
        times: u32,
        steps: Vec<Step>,
    },
    /// A message the target may send or leave out, where the protocol
    /// allows both (a blank line a client may send or skip): when the next
    /// message on `on` is `message`, it is taken and `then` runs (its
    /// answer); when another arrives, it is left for the next step. Which
    /// one the target did is recorded as an observation, `sent` or
    /// `skipped`; when nothing arrives, the next step says so.
    IfNext(Box<IfNext>),
}

/// The message of a [`Step::IfNext`], and what follows it.
#[derive(Clone, PartialEq, Debug)]
pub struct IfNext {
    pub on: Channel,
    pub message: Vec<u8>,
    pub then: Vec<Step>,
    pub sent: &'static str,
    pub skipped: &'static str,
}

impl Step {
    /// Whether the step needs the target's process (to watch it, kill it,
    /// or talk to its standard streams): such a check cannot run against a
    /// server the harness did not start.
    pub fn needs_process(&self) -> bool {
        match self {
            Step::Stream(s) => s.needs_process(),
            Step::Datagram(s) => s.needs_process(),
            Step::Process(s) => s.needs_process(),
            Step::Stdio(s) => s.needs_process(),
            Step::Files(s) => s.needs_process(),
            Step::Pause(_) | Step::Settle => false,
            Step::Repeat { steps, .. } => steps.iter().any(Step::needs_process),
            Step::IfNext(n) => n.then.iter().any(Step::needs_process),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Stream(s) => s.fmt(f),
            Step::Datagram(s) => s.fmt(f),
            Step::Process(s) => s.fmt(f),
            Step::Stdio(s) => s.fmt(f),
            Step::Files(s) => s.fmt(f),
            Step::Pause(p) => write!(f, "pause {p}"),
            Step::Settle => f.write_str("wait until the target settles"),
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
            Step::IfNext(n) => {
                write!(
                    f,
                    "if {} {} comes next: ",
                    n.on,
                    show::quoted(&n.message, 48)
                )?;
                for (i, s) in n.then.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str(" (else go on)")
            }
        }
    }
}

macro_rules! into_step {
    ($($domain:ident($ty:ty)),*) => {
        $(impl From<$ty> for Step {
            fn from(s: $ty) -> Step {
                Step::$domain(s)
            }
        })*
    };
}
into_step!(
    Stream(StreamStep),
    Datagram(DatagramStep),
    Process(ProcessStep),
    Stdio(StdioStep),
    Files(FileStep)
);

impl crate::conversations::session::Session<'_> {
    /// Whether the next message on `on` is `message`; taken when it is.
    /// `None` when nothing decided it within the reply deadline (nothing
    /// came, or the target ended its side).
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
}

/// Why a step did not go as required.
#[derive(Debug)]
pub(crate) enum StepError {
    /// The target missed a requirement; ends the conversation when MUST.
    Missed {
        level: Level,
        detail: String,
        /// Advice for what this step saw, chosen over the check's hint.
        hint: Option<String>,
    },
    /// The harness could not do the step: a bug in the suite (a connection
    /// it never opened) or a failure of the harness's own I/O. Ends the
    /// conversation, and the check is an ERROR, never the target's FAIL.
    Fault(String),
}

impl StepError {
    /// The same miss weighed at `level` (a fault stays a fault).
    pub(crate) fn at_level(self, level: Level) -> StepError {
        match self {
            StepError::Missed { detail, hint, .. } => StepError::Missed {
                level,
                detail,
                hint,
            },
            fault => fault,
        }
    }
}

pub(crate) type StepResult = Result<(), StepError>;

/// A requirement the target missed.
pub(crate) fn miss(level: Level, detail: impl Into<String>) -> StepError {
    StepError::Missed {
        level,
        detail: detail.into(),
        hint: None,
    }
}

/// A requirement the target missed, with advice for what the step saw.
pub(crate) fn miss_with_hint(
    level: Level,
    detail: impl Into<String>,
    hint: impl Into<String>,
) -> StepError {
    StepError::Missed {
        level,
        detail: detail.into(),
        hint: Some(hint.into()),
    }
}

/// A step the harness itself could not carry out.
pub(crate) fn fault(detail: impl Into<String>) -> StepError {
    StepError::Fault(detail.into())
}
