//! What a check earns in an assignment: its points when it passed, a share
//! of them when it was flaky, nothing when it missed or did not run.
//!
//! Graders of the reports (the Gradescope results, `sockspec grade`'s
//! summary, an instructor's own script) score from this one rule, so a
//! report and its summary never disagree.

use serde::{Deserialize, Serialize};

use crate::{CheckResult, RunResults, Verdict};

/// How a FLAKY check scores: it missed on one try and passed on another,
/// so the program has a race. `half` by default: a race is a real fault,
/// and one that shows only sometimes costs less than one that always does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlakyCredit {
    /// Its full points, as a pass.
    Full,
    /// Half its points.
    #[default]
    Half,
    /// Nothing, as a miss.
    None,
}

impl FlakyCredit {
    pub fn named(name: &str) -> Option<FlakyCredit> {
        match name {
            "full" => Some(FlakyCredit::Full),
            "half" => Some(FlakyCredit::Half),
            "none" => Some(FlakyCredit::None),
            _ => None,
        }
    }

    fn share(self) -> f64 {
        match self {
            FlakyCredit::Full => 1.0,
            FlakyCredit::Half => 0.5,
            FlakyCredit::None => 0.0,
        }
    }
}

impl CheckResult {
    /// The points this check earned, when a profile gave it any.
    ///
    /// A pass (or an INFO observation) earns them all; a flaky pass its
    /// profile's share; a miss, a skip and an ERROR nothing. An expected
    /// miss (`xfail`) still missed: it keeps the run green, not the points.
    pub fn earned(&self) -> Option<f64> {
        let grading = self.grading?;
        let share = match self.verdict {
            Verdict::Pass | Verdict::Info if self.is_flaky() => grading.flaky.share(),
            Verdict::Pass | Verdict::Info => 1.0,
            Verdict::Fail | Verdict::Warn | Verdict::Skip | Verdict::Error => 0.0,
        };
        Some(grading.points * share)
    }
}

/// A run's score over the checks a profile gave points.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub earned: f64,
    /// The points of the checks in the results. A run that stopped early
    /// holds fewer checks than its profile: a grader adds the points of
    /// the checks that never ran to the maximum it shows.
    pub possible: f64,
}

impl RunResults {
    /// The score of the checks that carry points.
    pub fn score(&self) -> Score {
        self.checks
            .iter()
            .filter_map(|c| Some((c.earned()?, c.grading?.points)))
            .fold(Score::default(), |s, (earned, points)| Score {
                earned: s.earned + earned,
                possible: s.possible + points,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Grading, Level, Try, Visibility};
    use std::time::Duration;

    fn graded(verdict: Verdict, points: f64, flaky: FlakyCredit) -> CheckResult {
        CheckResult {
            grading: Some(Grading {
                points,
                visibility: Visibility::Visible,
                flaky,
            }),
            ..CheckResult::new("tcp-upper.echo", Level::Must, verdict)
        }
    }

    fn missed_once(mut c: CheckResult) -> CheckResult {
        c.earlier_tries.push(Try {
            verdict: Verdict::Fail,
            duration: Duration::ZERO,
            misses: Vec::new(),
        });
        c
    }

    #[test]
    fn a_pass_earns_its_points_and_a_miss_none() {
        assert_eq!(
            graded(Verdict::Pass, 3.0, FlakyCredit::Half).earned(),
            Some(3.0)
        );
        assert_eq!(
            graded(Verdict::Info, 2.0, FlakyCredit::Half).earned(),
            Some(2.0)
        );
        for v in [Verdict::Fail, Verdict::Warn, Verdict::Skip, Verdict::Error] {
            assert_eq!(graded(v, 3.0, FlakyCredit::Full).earned(), Some(0.0), "{v}");
        }
    }

    #[test]
    fn a_flaky_pass_earns_the_profiles_share() {
        let flaky = |credit| missed_once(graded(Verdict::Pass, 4.0, credit)).earned();
        assert_eq!(flaky(FlakyCredit::Full), Some(4.0));
        assert_eq!(flaky(FlakyCredit::Half), Some(2.0));
        assert_eq!(flaky(FlakyCredit::None), Some(0.0));
        // Missed on every try: a miss, not a flake.
        let always = missed_once(graded(Verdict::Fail, 4.0, FlakyCredit::Full));
        assert_eq!(always.earned(), Some(0.0));
    }

    #[test]
    fn an_expected_miss_keeps_the_run_green_but_not_the_points() {
        let mut c = graded(Verdict::Fail, 2.0, FlakyCredit::Full);
        c.expected_to_miss = true;
        assert_eq!(c.earned(), Some(0.0));
    }

    #[test]
    fn a_check_without_points_is_not_scored() {
        let c = CheckResult::new("tcp-upper.echo", Level::Must, Verdict::Pass);
        assert_eq!(c.earned(), None);
    }

    #[test]
    fn flaky_credit_has_three_names() {
        for name in ["full", "half", "none"] {
            assert!(FlakyCredit::named(name).is_some(), "{name}");
        }
        assert_eq!(FlakyCredit::named("most"), None);
    }
}
