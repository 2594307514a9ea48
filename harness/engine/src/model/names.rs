//! The names a conversation gives its stream connections (`c1`, `c2`...)
//! and datagram sockets (`u1`, `u2`...): a leaf, so the steps that hold
//! them, the writer that sends on them and the transcript that records
//! them can all speak of them without depending on each other. The types
//! are the results crate's, whose transcripts name them.

pub use sockspec_results::{Conn, Sock};
