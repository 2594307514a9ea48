//! Targets: a program under test as a process with its output drained
//! (its standard output a terminal, `pty`), the run that owns every
//! process it starts ([`fleet`]), and a server started, waited for
//! (readiness by transport, from the kernel) and ended with its leftovers
//! ([`launch`]).

pub mod fleet;
pub mod folder;
pub mod launch;
pub(crate) mod pty;
pub mod starting;
pub mod target;
