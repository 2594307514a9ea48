//! The verdict of one check, and how the misses found while running its
//! conversation weigh into one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Level;

/// What a check concluded; named in lowercase in reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// An INFO check's observation; also a check whose misses all came
    /// after cuts the harness could not make, reporting what it saw.
    Info,
    /// Not run, with a reason (e.g. it needs a process the harness did not start).
    Skip,
    /// A SHOULD requirement was missed.
    Warn,
    /// A MUST requirement was missed.
    Fail,
    /// The harness itself could not run the check (not the target's fault).
    Error,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Warn,
        Verdict::Info,
        Verdict::Skip,
        Verdict::Error,
    ];

    /// A requirement missed: FAIL or WARN.
    pub fn is_miss(&self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Warn)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Info => "info",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The verdict for a check of level `check` whose worst miss was `miss`
    /// (`None`: every expectation held).
    ///
    /// A miss can weigh no more than its check: a MUST expectation inside a
    /// SHOULD check is a WARN, and an INFO check only ever observes.
    pub fn judge(check: Level, miss: Option<Level>) -> Verdict {
        if check == Level::Info {
            return Verdict::Info;
        }
        match miss.map(|m| m.min(check)) {
            None | Some(Level::Info) => Verdict::Pass,
            Some(Level::Should) => Verdict::Warn,
            Some(Level::Must) => Verdict::Fail,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_uppercase())
    }
}
