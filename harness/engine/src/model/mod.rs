//! The vocabulary: the types everything else speaks in, and the pure
//! functions over them. A miss's weight and a verdict, every deadline and
//! pause with the measurement behind it, cuts, suite parameters, the names
//! of connections and sockets, the hint the evidence calls for, the exit
//! statuses. Imports nothing of the engine but itself; tested without
//! sockets or processes.

pub mod cut;
pub mod exit;
pub mod hint;
pub mod level;
pub mod names;
pub mod profile;
pub mod timing;
pub mod transport;
pub mod verdict;
