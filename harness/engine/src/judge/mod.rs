//! Pure judging: whether the bytes so far meet an expectation, whether a
//! datagram is the one expected, frames decoded from a target's bytes, and
//! bytes shown to a reader. Imports only the vocabulary; tested without
//! sockets or processes.

pub mod body;
pub mod expect;
pub mod expect_datagram;
pub mod expect_frame;
pub mod frame;
pub mod frame_miss;
pub mod header_time;
pub mod show;
