//! The outputs of a run; every one consumes the run's one stream of events.
//!
//! Checks never print. The runner emits [`RunEvent`]s carrying typed
//! [`results`](crate::results), and each reporter (the terminal display, the
//! JSON document, JUnit XML, TAP, Gradescope's results) renders them into its own output, late, so
//! adding a format touches no check.

mod gradescope;
mod json;
mod junit;
mod tap;
mod text;
pub mod wording;

use std::io;

pub use gradescope::GradescopeReporter;
pub use json::JsonReporter;
pub use junit::JunitReporter;
pub use tap::TapReporter;
pub use text::TextReporter;
pub use wording::detail;

use crate::results::{CheckResult, RunEvent};

/// Consumes the events of a run.
pub trait Reporter {
    fn report(&mut self, event: &RunEvent) -> io::Result<()>;
}

/// The full explanation of a check that missed, as plain text: what the
/// protocol requires, what went wrong, the steps, the transcript, the
/// target's stderr. Shared by the terminal and JUnit outputs.
pub fn explanation(r: &CheckResult) -> String {
    let mut out = String::new();
    out.push_str(&format!("{} {}: {}\n", r.level, r.id, r.summary));
    out.push_str(&format!("requirement: {}\n", r.expectation));
    let detail = detail(r);
    if !detail.is_empty() {
        out.push_str(&format!("{detail}\n"));
    }
    if !r.steps.is_empty() {
        out.push_str("steps:\n");
        for (i, step) in r.steps.iter().enumerate() {
            out.push_str(&format!("{:>3}. {step}\n", i + 1));
        }
    }
    if !r.transcript.is_empty() {
        out.push_str("transcript (time since the check began; -> sent, <- received):\n");
        for record in &r.transcript {
            out.push_str(&format!("{}\n", wording::transcript_line(record)));
        }
    }
    if let Some(tail) = &r.stderr_tail {
        out.push_str("the target's stderr ends with:\n");
        for line in tail.lines() {
            out.push_str(&format!("  | {line}\n"));
        }
    }
    out
}

/// The tries of a check run again (`--retries`), in words: how many
/// missed, and what the first miss was. Empty for a check tried once.
pub fn tries(r: &CheckResult) -> String {
    let Some(first) = r.earlier_tries.iter().find(|t| t.verdict.is_miss()) else {
        return String::new();
    };
    let (missed, tries) = r.tries();
    let mut out = if r.is_flaky() {
        format!(
            "flaky: missed {missed} of {tries} tries, each on a fresh target, and then \
             passed: a race in the program, whose verdict one run leaves to luck\n"
        )
    } else {
        format!("missed all {tries} tries, each on a fresh target\n")
    };
    out.push_str(&format!("the first try's {}:\n", first.verdict));
    for miss in &first.misses {
        for line in miss.detail.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}
