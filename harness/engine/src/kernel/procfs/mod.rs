//! What Linux's `/proc` tells about a target without touching its sockets,
//! one module per thing it touches: the socket tables (where the kernel's
//! socket dump is missing), the processes of a target and their CPU, how
//! their threads were scheduled, and the descriptors they hold.

mod fds;
mod net;
pub mod outside;
mod process;
mod sched;

pub use fds::*;
pub use net::*;
pub use process::*;
pub use sched::*;
