//! The sockspec engine: everything a protocol suite needs to drive a black-box
//! program over loopback sockets and judge it.
//!
//! A suite describes each check as a [`Conversation`]:
//! a value listing what to send, how to cut it on the wire and what to expect.
//! The engine starts the target ([`targets`]) as part of its run's
//! [`Fleet`](targets::fleet::Fleet), runs the conversation with tuned
//! sockets ([`kernel::net`], [`model::cut`]), watches the target's process ([`kernel::procfs`]),
//! records a [`Transcript`](conversations::transcript::Transcript), turns what happened into a
//! [`Verdict`] and streams [`RunEvent`](results::RunEvent)s
//! carrying typed [`results`] to the [`report`]ers.
//! Suites never wait, time or print by themselves.
//!
//! The modules are layers, each importing only the ones listed before it:
//! [`model`], [`judge`], [`kernel`], [`targets`], [`conversations`],
//! [`results`], [`runs`], [`report`]. `tests/layers.rs` holds the order.

pub mod conversations;
pub mod judge;
pub mod kernel;
pub mod model;
pub mod report;
pub mod results;
pub mod runs;
pub mod targets;

pub use conversations::check::{Body, Check, CheckId, Generated, Role, Suite};
pub use conversations::conversation::Conversation;
pub use conversations::steps::{Conn, Sock, Step};
pub use judge::expect::Want;
pub use judge::expect_datagram::DatagramWant;
pub use model::cut::{Cut, Gap, Piece};
pub use model::level::Level;
pub use model::profile::Profile;
pub use model::timing::{Deadline, Pause, Timing};
pub use model::transport::Transport;
pub use model::verdict::Verdict;
