//! What a run found, as typed values: the run's header, each check's result,
//! the summary, the error that stopped a run early, and the stream of events
//! a run emits as it goes.
//!
//! Every output renders from these types, late: the terminal display, JUnit
//! XML, and the JSON report, whose schema is these types. The types are the
//! results crate's, so that tests and graders read a JSON report back into
//! them without the engine; only the live stream of events is the engine's.
//! Nothing here runs or prints anything, and nothing here imports the runner
//! or the reporters.

pub use sockspec_results::{
    CheckResult, Counts, FailingCase, Fault, FlakyCredit, Grading, Isolation, Missed, NotRun,
    RunError, RunInfo, RunResults, Score, StepRef, Summary, Try, Visibility, XFail, SCHEMA_VERSION,
};

/// Something that happened in a run, in order: the run starts, each check
/// starts and finishes, the run finishes (after its last check, or early).
pub enum RunEvent<'a> {
    RunStarted {
        info: &'a RunInfo,
        /// The checks the run will play.
        total: usize,
    },
    CheckStarted {
        index: usize,
        total: usize,
        id: &'a str,
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
        /// The selected checks a run that stopped early never finished, in
        /// order (none when it went to its end): each a SKIP with nothing
        /// judged, carrying what the suite and the profile say of it (its
        /// summary, requirement and grading), so that a grader's maximum
        /// counts every check the run was to play.
        not_reached: &'a [CheckResult],
    },
}
