//! The sockspec engine: everything a protocol suite needs to drive a black-box
//! program over loopback sockets and judge it.
//!
//! A suite describes each check as a [`Conversation`](conversation::Conversation):
//! a value listing what to send, how to cut it on the wire and what to expect.
//! The engine starts the target ([`target`]) as part of its run's
//! [`Fleet`](fleet::Fleet), runs the conversation with tuned
//! sockets ([`net`], [`cut`]), watches the target's process ([`procfs`]),
//! records a [`Transcript`](transcript::Transcript), turns what happened into a
//! [`Verdict`](verdict::Verdict) and streams [`RunEvent`](results::RunEvent)s
//! carrying typed [`results`] to the [`report`]ers.
//! Suites never wait, time or print by themselves.

pub mod busy;
pub mod check;
pub(crate) mod confirm;
pub mod conversation;
pub mod cut;
pub mod exit;
pub mod expect;
pub mod expect_datagram;
pub mod fleet;
pub mod frame;
pub mod generated;
pub mod hint;
pub mod launch;
pub mod level;
pub mod loopback;
pub mod net;
pub mod names;
pub mod netns;
pub mod ports;
pub mod procfs;
pub mod profile;
pub(crate) mod pty;
pub mod report;
pub mod results;
pub mod run;
pub mod select;
pub mod session;
pub mod show;
pub mod sockdiag;
pub mod spin;
pub mod steps;
pub mod suggest;
pub mod target;
pub mod tcpsock;
pub mod timing;
pub mod transcript;
pub mod transport;
pub mod udpsock;
pub mod verdict;

pub use check::{Body, Check, CheckId, Generated, Role, Suite};
pub use conversation::Conversation;
pub use cut::{Cut, Gap, Piece};
pub use expect::Want;
pub use expect_datagram::DatagramWant;
pub use level::Level;
pub use profile::Profile;
pub use steps::{Conn, Sock, Step};
pub use timing::{Deadline, Pause, Timing};
pub use transport::Transport;
pub use verdict::Verdict;
