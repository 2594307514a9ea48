//! The steps a conversation is made of, one module per domain: stream
//! connections ([`stream`], on [`link`]s), datagram sockets ([`datagram`], on
//! [`mailbox`]es), the target's
//! process ([`process`]), its standard input and output ([`stdio`]) and its
//! files ([`files`]). Each domain module holds its steps, how they print,
//! whether they need the target's process, the state they keep (a
//! [`Domain`]'s `State`: the connections, a descriptor count, how much
//! output was read), and how they run and end that state against a
//! [`Session`](crate::conversations::session::Session) ([`Runs`]).
//!
//! The domains are listed once, in the `domains!` invocation below: the
//! list makes the [`Step`] enum, the [`Domains`] the session keeps (one
//! state per domain), and the dispatch of a step and of the closing to its
//! domain. A new kind of step is a module here and a line in that list.
//! This file never names the session: the dispatch reaches each domain's
//! code through [`Runs`], which the domain's module implements for the
//! session. The session imports this file; the domains' modules import the
//! session; no file imports one that imports it back.

pub mod datagram;
pub mod files;
pub mod frame;
mod frame_read;
mod frame_send;
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
pub use frame::{FrameCut, FrameOut, FrameStep};
pub use link::Conn;
pub use mailbox::Sock;
pub use process::ProcessStep;
pub use stdio::StdioStep;
pub use stream::StreamStep;

/// A kind of step, and the state its steps keep in a session.
pub(crate) trait Domain {
    /// What the domain keeps during one conversation (its connections, its
    /// counts): made when the session starts, closed when it ends.
    type State: Default;
}

/// How a session runs the steps of domain `D` and ends what the domain
/// holds when the conversation is over. Each domain implements it for
/// [`Session`](crate::conversations::session::Session) in its own module.
pub(crate) trait Runs<D: Domain> {
    fn run(&mut self, step: &D) -> StepResult;
    /// Ends what the domain holds open. By default its state is simply
    /// dropped with the session.
    fn close(&mut self) {}
}

/// Makes, from the one list of domains below, the [`Step`] with a variant
/// per domain beside the steps every domain shares, its `From`, `Display`
/// and `needs_process`, the [`Domains`] a session keeps (one state per
/// domain, a field named after it), and the dispatch of a step to its
/// domain.
macro_rules! domains {
    ($($domain:ident($ty:ty) in $field:ident),* $(,)?) => {
        /// One step of a conversation.
        #[derive(Clone, PartialEq, Debug)]
        pub enum Step {
            $($domain($ty),)*
            /// Wait deliberately.
            Pause(Pause),
            /// Wait until the target has acted on what it was just sent (a
            /// close, a reset; datagrams: taken every one it is going to
            /// take), as the kernel shows its process, its threads and its
            /// sockets.
            Settle,
            /// Run `steps` `times` times (reusing connection numbers).
            Repeat {
                times: u32,
                steps: Vec<Step>,
            },
            /// A message the target may send or leave out, where the
            /// protocol allows both (a blank line a client may send or
            /// skip): when the next message on `on` is `message`, it is
            /// taken and `then` runs (its answer); when another arrives, it
            /// is left for the next step. Which one the target did is
            /// recorded as an observation, `sent` or `skipped`; when nothing
            /// arrives, the next step says so.
            IfNext(Box<IfNext>),
        }

        $(impl From<$ty> for Step {
            fn from(s: $ty) -> Step {
                Step::$domain(s)
            }
        })*

        /// The state of every domain in one session.
        #[derive(Default)]
        pub(crate) struct Domains {
            // A domain may keep nothing yet (files): its field is then unread.
            $(#[allow(dead_code)] pub(crate) $field: <$ty as Domain>::State,)*
        }

        impl Step {
            /// Whether the step needs the target's process (to watch it,
            /// kill it, or talk to its standard streams): such a check
            /// cannot run against a server the harness did not start.
            pub fn needs_process(&self) -> bool {
                match self {
                    $(Step::$domain(s) => s.needs_process(),)*
                    Step::Pause(_) | Step::Settle => false,
                    Step::Repeat { steps, .. } => steps.iter().any(Step::needs_process),
                    Step::IfNext(n) => n.then.iter().any(Step::needs_process),
                }
            }

            /// Whether the step looks at the files the target writes: its
            /// target then works in a folder of its own.
            pub fn touches_files(&self) -> bool {
                match self {
                    Step::Files(_) => true,
                    Step::Repeat { steps, .. } => steps.iter().any(Step::touches_files),
                    Step::IfNext(n) => n.then.iter().any(Step::touches_files),
                    _ => false,
                }
            }

            /// Runs a domain's step on `session`; `None` for the steps the
            /// session runs itself.
            pub(crate) fn run_in<S>(&self, session: &mut S) -> Option<StepResult>
            where
                S: $(Runs<$ty> +)* Sized,
            {
                match self {
                    $(Step::$domain(s) => Some(Runs::<$ty>::run(session, s)),)*
                    _ => None,
                }
            }

            /// Whether the step is one of a domain's (not one the session
            /// runs itself), and how it prints then.
            fn domain_fmt(&self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
                match self {
                    $(Step::$domain(s) => Some(fmt::Display::fmt(s, f)),)*
                    _ => None,
                }
            }
        }

        /// Ends what every domain holds, in the order of the list: stream
        /// connections before datagram sockets.
        pub(crate) fn close_domains<S>(session: &mut S)
        where
            S: $(Runs<$ty> +)* Sized,
        {
            $(Runs::<$ty>::close(session);)*
        }
    };
}

// The domains. A new one is a module above and a line here.
domains! {
    Stream(StreamStep) in stream,
    Datagram(DatagramStep) in datagram,
    Process(ProcessStep) in process,
    Stdio(StdioStep) in stdio,
    Files(FileStep) in files,
    Frame(FrameStep) in frame,
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

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(done) = self.domain_fmt(f) {
            return done;
        }
        match self {
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
            // Printed by their domain, above.
            _ => Ok(()),
        }
    }
}

/// Where a miss or a fault belongs: a step of the conversation, by its
/// position, or something judged beside the steps. Recorded by the session
/// as it runs each step, so that no one needs to find a step again by how
/// it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// A top-level step, by its position among the steps the session
    /// played (from 0); `nested` when the step was one that ran inside it
    /// (in a `Repeat`, or the answer of an `IfNext`).
    Step { index: usize, nested: bool },
    /// A step played before the steps an outcome reports (an earlier
    /// generated case on the same connection).
    Earlier,
    /// The target's process as a whole (a server that crashed).
    Process,
    /// A check's generated cases as a whole.
    GeneratedCases,
}

impl At {
    /// The same place, for a step that runs inside this one.
    pub(crate) fn within(self) -> At {
        match self {
            At::Step { index, .. } => At::Step {
                index,
                nested: true,
            },
            other => other,
        }
    }

    /// The number of the top-level step this is, from 1, when it is one
    /// itself (a nested step is not among the numbered steps).
    pub fn number(self) -> Option<usize> {
        match self {
            At::Step {
                index,
                nested: false,
            } => Some(index + 1),
            _ => None,
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
