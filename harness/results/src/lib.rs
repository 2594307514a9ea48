//! The machine-readable contract of the `sockspec` command: the results of
//! a run as serde types (the JSON report's schema), the exit statuses, and
//! the schema's version.
//!
//! A tool that reads sockspec's JSON reports (an autograder, a dashboard)
//! depends on this crate alone, not on the engine that runs the checks:
//!
//! ```
//! use sockspec_results::{RunResults, Verdict, SCHEMA_VERSION};
//!
//! let report = r#"{
//!   "schema_version": 1,
//!   "suite": "tcp-upper", "role": "server", "target": "python3 server.py",
//!   "seed": 7, "isolation": "shared",
//!   "checks": [],
//!   "summary": { "pass": 0, "fail": 0, "warn": 0, "info": 0, "skip": 0,
//!                "error": 0, "total": 0, "duration_ms": 1.5,
//!                "deliberate_ms": 0.0, "confirm_ms": 0.0, "peak_rss_kib": 4096 }
//! }"#;
//! let run: RunResults = serde_json::from_str(report).unwrap();
//! assert_eq!(run.schema_version, SCHEMA_VERSION);
//! assert_eq!(run.summary.count(Verdict::Fail), 0);
//! ```
//!
//! The types hold data: what the engine observed and concluded. The
//! sentences a person reads are written by the reporters, from these.

pub mod exit;
mod isolation;
mod level;
mod names;
mod role;
mod run;
mod score;
mod transcript;
mod verdict;

pub use isolation::Isolation;
pub use level::Level;
pub use names::{Conn, Sock};
pub use role::Role;
pub use run::{
    CheckResult, Counts, FailingCase, Fault, Grading, Missed, NotRun, RunError, RunInfo,
    RunResults, StepRef, Summary, Try, Visibility, XFail,
};
pub use score::{FlakyCredit, Score};
pub use transcript::{Channel, Entry, Event, Omitted, Record};
pub use verdict::Verdict;

/// The version of the JSON report's schema, written as its top-level
/// `schema_version`. It grows when a field changes meaning or goes away;
/// a new field does not change it.
pub const SCHEMA_VERSION: u32 = 1;
