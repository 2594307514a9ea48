//! Steps on the target's files. None yet: the file-upload protocol adds its
//! steps here (expect a file of this size and digest in the target's
//! working directory), with their display and execution.

use std::fmt;

use super::{Domain, Runs, StepResult};
use crate::conversations::session::Session;

/// A step about the files the target writes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FileStep {}

impl FileStep {
    pub fn needs_process(&self) -> bool {
        match *self {}
    }
}

impl fmt::Display for FileStep {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl Domain for FileStep {
    /// Nothing yet: the files expected are the target's, on disk.
    type State = ();
}

impl Runs<FileStep> for Session<'_> {
    fn run(&mut self, step: &FileStep) -> StepResult {
        match *step {}
    }
}
