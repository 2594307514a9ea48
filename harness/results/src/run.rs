//! What a run found, as typed values: the run's header, each check's result,
//! the summary, and the error that stopped a run early.
//!
//! Every output renders from these types, late: the terminal display, JUnit
//! XML, and the JSON report, whose schema is these types. Tests and graders
//! read a JSON report back into them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{FlakyCredit, Isolation, Level, Record, Role, Verdict};

/// A whole run's results: the JSON report's document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResults {
    /// The schema these results are written in: [`crate::SCHEMA_VERSION`]
    /// for a report this crate's version writes.
    pub schema_version: u32,
    #[serde(flatten)]
    pub run: RunInfo,
    /// The checks that ran, in order. The JSON report writes each with
    /// its `detail` beside its fields: the reporters' words for it, which
    /// a reader may ignore.
    pub checks: Vec<CheckResult>,
    pub summary: Summary,
    /// Why the run stopped before its last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
}

/// Facts about a run, known before its first check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub suite: String,
    pub role: Role,
    /// The command that starts the program under test, or its address.
    pub target: String,
    /// The seed of the generated cuts.
    pub seed: u64,
    /// Where the checks had their sockets: a private loopback per check
    /// (`namespace`, `user-namespace`) or the machine's (`shared`).
    #[serde(default)]
    pub isolation: Isolation,
}

/// The verdict of one check with everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: String,
    pub level: Level,
    pub verdict: Verdict,
    /// The check's one line, as `sockspec list` shows it.
    pub summary: String,
    /// The requirement the check tests.
    pub expectation: String,
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// The waiting the check does by design.
    #[serde(rename = "deliberate_ms", with = "millis")]
    pub deliberate: Duration,
    /// Time spent waiting for the kernel to show that the target read a
    /// piece of a cut or settled: the target's pace, not a pause.
    #[serde(rename = "confirm_ms", with = "millis", default)]
    pub confirming: Duration,
    /// Why the check's conversation did not run, when it did not.
    pub not_run: Option<NotRun>,
    /// For a generated check that missed: the case that missed.
    pub case: Option<FailingCase>,
    /// A measuring step the check never reached, because an earlier step
    /// missed: nothing was judged of what it measures.
    pub unmeasured: Option<String>,
    /// A step the harness could not carry out (a bug in the suite, a
    /// failure of the harness's own I/O): the check is an ERROR.
    pub fault: Option<Fault>,
    /// The check's advice for a miss, shown under the misses.
    pub hint: Option<String>,
    /// The steps that ran, in order (numbered from 1 in the JSON report).
    #[serde(with = "numbered")]
    pub steps: Vec<String>,
    /// The expectations that did not hold.
    pub misses: Vec<Missed>,
    /// What was observed without weighing on the verdict.
    pub notes: Vec<String>,
    /// What was sent and received, with times.
    pub transcript: Vec<Record>,
    /// The last lines the target wrote to stderr, when the check missed.
    pub stderr_tail: Option<String>,
    /// Whether the run was told to expect this check to miss (`--xfail`):
    /// a known deviation of the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expected_to_miss: bool,
    /// The tries before this one (`--retries`), each on a fresh target:
    /// a check that missed and then passed is flaky.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_tries: Vec<Try>,
    /// What an assignment profile says the check is worth and who sees
    /// it, for the graders that read the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading: Option<Grading>,
}

/// A check's worth in an assignment, from its profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grading {
    /// Finite and not negative: the profile is refused otherwise.
    pub points: f64,
    pub visibility: Visibility,
    /// How the check scores when it was flaky.
    #[serde(default)]
    pub flaky: FlakyCredit,
}

// Points are never NaN (see above), so equality is total.
impl Eq for Grading {}

/// Who sees a check's result on a grading platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Visible,
    Hidden,
    AfterDueDate,
}

/// One earlier try of a check that was run again (`--retries`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Try {
    pub verdict: Verdict,
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// What that try missed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misses: Vec<Missed>,
}

/// A check marked `--xfail`, as it came out: an expected miss passes the
/// run; an unexpected pass fails it, so the list of known deviations stays
/// true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XFail {
    MissedAsExpected,
    UnexpectedPass,
}

/// An expectation that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    pub level: Level,
    pub step: StepRef,
    /// What went wrong, readable by a student: expected against actual,
    /// bytes as text and hex.
    pub detail: String,
}

/// Where a miss happened: a step of the check, or something judged beside
/// the steps (`the server's process`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRef {
    /// The step's number among the check's steps, from 1, when the miss
    /// is at one of them (a step run inside a repeat or an `if … comes
    /// next` is not one of the numbered steps, and has none).
    pub number: Option<usize>,
    /// The step as printed.
    pub text: String,
}

/// Why a check's conversation did not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotRun {
    /// The check needs the target's process, which the harness did not start.
    NeedsProcess,
    /// The program could not be started again for this check (it crashed
    /// at start, say): judged at the check's level.
    StartFailed { message: String },
    /// The machine kept the program from starting (another process holds
    /// its port, say): never the program's failure.
    StartPrevented { message: String },
    /// A check it depends on (an assignment profile's `depends`) missed:
    /// one root cause costs one check, not a cascade.
    DependencyMissed { on: String, verdict: Verdict },
}

/// The case of a generated check that missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailingCase {
    /// One of the fixed cases.
    Fixed { bytes: usize, cut: String },
    /// The smallest generated case that still missed, and the seed that
    /// draws it again.
    Shrunk {
        bytes: usize,
        /// The message, quoted and cut short.
        shown: String,
        cut: String,
        seed: u64,
    },
}

/// Counts per verdict and timings of a whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(flatten)]
    pub counts: Counts,
    /// The checks the run selected; fewer ran when it stopped early.
    pub total: usize,
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// FAIL verdicts of checks marked `--xfail`: they fail no run.
    #[serde(default)]
    pub expected_fails: usize,
    /// Checks marked `--xfail` that passed: each fails the run.
    #[serde(default)]
    pub unexpected_passes: usize,
    /// Checks that missed and then passed when run again (`--retries`).
    #[serde(default)]
    pub flaky: usize,
    /// The waiting the checks do by design.
    #[serde(rename = "deliberate_ms", with = "millis")]
    pub deliberate: Duration,
    /// Time the checks spent waiting for the kernel to show that the
    /// target read a piece of a cut or settled.
    #[serde(rename = "confirm_ms", with = "millis", default)]
    pub confirming: Duration,
    /// The harness's own peak resident memory over the run, in KiB: it
    /// stays flat whatever a target floods or claims.
    pub peak_rss_kib: u64,
}

/// How many checks got each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub info: usize,
    pub skip: usize,
    pub error: usize,
}

/// A run that could not go on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum RunError {
    /// The target could not be started or never listened.
    TargetFailed(String),
    /// The harness itself could not set up (no free port, say).
    Harness(String),
}

impl CheckResult {
    /// A result with nothing in it but its verdict, to fill in.
    pub fn new(id: impl Into<String>, level: Level, verdict: Verdict) -> CheckResult {
        CheckResult {
            id: id.into(),
            level,
            verdict,
            summary: String::new(),
            expectation: String::new(),
            duration: Duration::ZERO,
            deliberate: Duration::ZERO,
            confirming: Duration::ZERO,
            not_run: None,
            case: None,
            unmeasured: None,
            fault: None,
            hint: None,
            steps: Vec::new(),
            misses: Vec::new(),
            notes: Vec::new(),
            transcript: Vec::new(),
            stderr_tail: None,
            expected_to_miss: false,
            earlier_tries: Vec::new(),
            grading: None,
        }
    }

    /// Missed, then passed on a later try: the program has a race, and one
    /// run's verdict would grade luck.
    pub fn is_flaky(&self) -> bool {
        matches!(self.verdict, Verdict::Pass | Verdict::Info)
            && self.earlier_tries.iter().any(|t| t.verdict.is_miss())
    }

    /// How many tries missed, of how many: `(missed, tries)`.
    pub fn tries(&self) -> (usize, usize) {
        let missed = self
            .earlier_tries
            .iter()
            .filter(|t| t.verdict.is_miss())
            .count()
            + usize::from(self.verdict.is_miss());
        (missed, self.earlier_tries.len() + 1)
    }

    /// How the verdict stands against `--xfail`, for a check marked so.
    pub fn against_xfail(&self) -> Option<XFail> {
        if !self.expected_to_miss {
            return None;
        }
        match self.verdict {
            Verdict::Fail | Verdict::Warn => Some(XFail::MissedAsExpected),
            Verdict::Pass | Verdict::Info => Some(XFail::UnexpectedPass),
            Verdict::Skip | Verdict::Error => None,
        }
    }

    /// The protocol part of the id: `tcp-upper` for `tcp-upper.client.echo`.
    pub fn protocol(&self) -> &str {
        self.id.split('.').next().unwrap_or(&self.id)
    }
}

/// A step the harness could not carry out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// The step, as printed.
    pub step: String,
    pub detail: String,
}

impl Summary {
    pub fn count(&self, v: Verdict) -> usize {
        self.counts.get(v)
    }

    /// Whether the checks fail the run: a MUST check failed that was not
    /// expected to (`--xfail`), or one expected to miss passed.
    pub fn checks_fail_the_run(&self) -> bool {
        self.count(Verdict::Fail) > self.expected_fails || self.unexpected_passes > 0
    }
}

impl Counts {
    pub fn get(&self, v: Verdict) -> usize {
        match v {
            Verdict::Pass => self.pass,
            Verdict::Fail => self.fail,
            Verdict::Warn => self.warn,
            Verdict::Info => self.info,
            Verdict::Skip => self.skip,
            Verdict::Error => self.error,
        }
    }

    pub fn add(&mut self, v: Verdict) {
        let n = match v {
            Verdict::Pass => &mut self.pass,
            Verdict::Fail => &mut self.fail,
            Verdict::Warn => &mut self.warn,
            Verdict::Info => &mut self.info,
            Verdict::Skip => &mut self.skip,
            Verdict::Error => &mut self.error,
        };
        *n += 1;
    }

    /// The checks counted, whatever their verdict.
    pub fn sum(&self) -> usize {
        Verdict::ALL.into_iter().map(|v| self.get(v)).sum()
    }
}

impl RunError {
    /// A stable name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            RunError::TargetFailed(_) => "target_failed",
            RunError::Harness(_) => "harness",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            RunError::TargetFailed(m) | RunError::Harness(m) => m,
        }
    }
}

/// A duration as a number of milliseconds, with a fraction.
mod millis {
    use std::time::Duration;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(de::Error::custom(format!(
                "{ms} is not a number of milliseconds"
            )));
        }
        Ok(Duration::from_nanos((ms * 1e6).round() as u64))
    }
}

/// Steps written with their numbers (`3. expect on c1 "HI"`), read back
/// without them.
mod numbered {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(steps: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            steps
                .iter()
                .enumerate()
                .map(|(i, step)| format!("{}. {step}", i + 1)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        Ok(lines
            .into_iter()
            .map(|line| match line.split_once(". ") {
                Some((n, step)) if n.parse::<usize>().is_ok() => step.to_string(),
                _ => line,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_numbered_in_the_json_and_read_back_without_their_numbers() {
        let r = CheckResult {
            steps: vec!["connect c1 (TCP_NODELAY)".into(), "close c1".into()],
            ..CheckResult::new("x.y", Level::Must, Verdict::Pass)
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["steps"][1], "2. close c1");
        let back: CheckResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn durations_are_milliseconds_with_a_fraction() {
        let r = CheckResult {
            duration: Duration::from_micros(148_250),
            ..CheckResult::new("x.y", Level::Must, Verdict::Pass)
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["duration_ms"], 148.25);
        let back: CheckResult = serde_json::from_value(json).unwrap();
        assert_eq!(back.duration, r.duration);
    }

    #[test]
    fn counts_add_up_per_verdict() {
        let mut c = Counts::default();
        for v in [Verdict::Pass, Verdict::Pass, Verdict::Warn, Verdict::Error] {
            c.add(v);
        }
        assert_eq!((c.get(Verdict::Pass), c.get(Verdict::Warn)), (2, 1));
        assert_eq!(c.sum(), 4);
    }

    #[test]
    fn a_run_error_is_written_as_its_kind_and_message() {
        let e = RunError::TargetFailed("never listened".into());
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "kind": e.kind(), "message": "never listened" })
        );
        assert_eq!(serde_json::from_value::<RunError>(json).unwrap(), e);
    }
}
