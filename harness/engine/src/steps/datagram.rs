//! Steps on datagram sockets. None yet: the datagram protocols add their
//! steps here (send a datagram, expect one from an address, expect none
//! within a window), with their display and execution, as `stream.rs` does
//! for connections.

use std::fmt;

use super::StepResult;
use crate::session::Session;

/// A step on one of the harness's datagram sockets.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DatagramStep {}

impl DatagramStep {
    pub fn needs_process(&self) -> bool {
        match *self {}
    }
}

impl fmt::Display for DatagramStep {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl Session<'_> {
    pub(crate) fn run_datagram(&mut self, step: &DatagramStep) -> StepResult {
        match *step {}
    }
}
