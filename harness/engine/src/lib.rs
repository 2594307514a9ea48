//! The sockspec engine: everything a protocol suite needs to drive a black-box
//! program over loopback sockets and judge it.
//!
//! A suite describes each check as a [`Conversation`](conversation::Conversation):
//! a value listing what to send, how to cut it on the wire and what to expect.
//! The engine starts the target ([`target`]), runs the conversation with tuned
//! sockets ([`net`], [`cut`]), watches the target's process ([`procfs`]),
//! records a [`Transcript`](transcript::Transcript), turns what happened into a
//! [`Verdict`](verdict::Verdict) and streams [`RunEvent`](results::RunEvent)s
//! carrying typed [`results`] to the [`report`]ers.
//! Suites never wait, time or print by themselves.

pub mod check;
pub mod conversation;
pub mod cut;
pub mod exit;
pub mod frame;
pub mod generated;
pub mod launch;
pub mod loopback;
pub mod net;
pub mod netns;
pub mod ports;
pub mod procfs;
pub mod profile;
pub mod report;
pub mod results;
pub mod run;
pub mod select;
pub mod session;
pub mod show;
pub mod sockdiag;
pub mod spin;
pub mod target;
pub mod tcpsock;
pub mod timing;
pub mod transcript;
pub mod verdict;

pub use check::{Body, Check, CheckId, Generated, Level, Role, Suite};
pub use conversation::{Conn, Conversation, Step, Want};
pub use cut::{Cut, Piece};
pub use profile::Profile;
pub use timing::{Deadline, Pause, Timing};
pub use verdict::Verdict;
