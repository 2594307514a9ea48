//! What the kernel says, and the sockets it hands the harness: `/proc` and
//! the socket dump read as typed facts (a target's processes, CPU, threads
//! and descriptors; who listens on a port or holds a connection; TIME_WAIT
//! and how to clear the harness's own; whether a target has read all a
//! connection carried), a private loopback per check, a target's private
//! view of the files, the spin rule, and the harness's tuned sockets on
//! both loopbacks. Below everything that acts; imports only the vocabulary
//! and the judging.

pub mod busy;
pub mod confine;
pub(crate) mod confirm;
pub mod loopback;
pub mod net;
pub mod netns;
pub mod ports;
pub mod procfs;
pub mod sockdiag;
pub mod spin;
pub mod tcpsock;
pub(crate) mod trial;
pub mod udpsock;
