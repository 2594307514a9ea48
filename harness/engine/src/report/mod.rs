//! One stream of events from a run; every output format consumes it.
//!
//! Checks never print. The runner emits [`Event`]s, and each reporter (the
//! terminal display, the JSON document, JUnit XML) turns them into its own
//! output, so adding a format touches no check.

mod json;
mod junit;
mod text;

use std::io;

pub use json::JsonReporter;
pub use junit::JunitReporter;
pub use text::TextReporter;

use crate::check::CheckId;
use crate::run::{CheckResult, RunError, RunInfo, Summary};

/// Something that happened in a run.
pub enum Event<'a> {
    RunStarted(&'a RunInfo),
    CheckStarted {
        index: usize,
        total: usize,
        id: CheckId,
    },
    CheckFinished {
        index: usize,
        total: usize,
        result: &'a CheckResult,
    },
    /// The run ended: after its last check, or early with `error` (the
    /// target could not be started, the harness could not go on).
    RunFinished {
        info: &'a RunInfo,
        summary: &'a Summary,
        error: Option<&'a RunError>,
    },
}

/// Consumes the events of a run.
pub trait Reporter {
    fn report(&mut self, event: &Event) -> io::Result<()>;
}

/// The full explanation of a check that missed, as plain text: what the
/// protocol requires, what went wrong, the steps, the transcript, the
/// target's stderr. Shared by the terminal and JUnit outputs.
pub fn explanation(r: &CheckResult) -> String {
    let mut out = String::new();
    out.push_str(&format!("{} {}: {}\n", r.level, r.id, r.summary));
    out.push_str(&format!("requirement: {}\n", r.expectation));
    if !r.detail.is_empty() {
        out.push_str(&format!("{}\n", r.detail));
    }
    if !r.conversation.is_empty() {
        out.push_str("steps:\n");
        out.push_str(&r.conversation);
    }
    if !r.transcript.is_empty() {
        out.push_str("transcript (time since the check began; -> sent, <- received):\n");
        out.push_str(&r.transcript.to_string());
    }
    if let Some(tail) = &r.stderr_tail {
        out.push_str("the target's stderr ends with:\n");
        for line in tail.lines() {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    out
}
