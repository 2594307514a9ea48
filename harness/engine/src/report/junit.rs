//! JUnit XML, built with quick-junit: one test suite per run, one test case
//! per check. FAIL is a failure, ERROR an error, SKIP skipped; a WARN passes
//! and carries its explanation in system-out, since JUnit has no warnings.
//! A check expected to miss (`--xfail`) that missed passes with its
//! explanation in system-out; one that passed is a failure.
//! A run that stopped early adds one test case in error, named after the
//! suite, that says why: a CI job always has something to show.

use std::io::{self, Write};

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::{detail, explanation, Reporter};
use crate::model::verdict::Verdict;
use crate::results::{RunEvent, XFail};

pub struct JunitReporter<W: Write> {
    out: W,
    cases: Vec<TestCase>,
}

impl<W: Write> JunitReporter<W> {
    pub fn new(out: W) -> Self {
        JunitReporter {
            out,
            cases: Vec::new(),
        }
    }
}

impl<W: Write> Reporter for JunitReporter<W> {
    fn report(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::CheckFinished { result: r, .. } => {
                let detail = detail(r);
                let first_line = detail.lines().next().unwrap_or(&r.summary).to_string();
                let status = match (r.verdict, r.against_xfail()) {
                    // A known deviation passes the build; its detail stays.
                    (_, Some(XFail::MissedAsExpected)) => TestCaseStatus::success(),
                    (_, Some(XFail::UnexpectedPass)) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message("passed, but expected to miss (--xfail)");
                        s.set_type(r.level.as_str());
                        s
                    }
                    (Verdict::Fail | Verdict::Error, None) => {
                        let kind = if r.verdict == Verdict::Fail {
                            NonSuccessKind::Failure
                        } else {
                            NonSuccessKind::Error
                        };
                        let mut s = TestCaseStatus::non_success(kind);
                        s.set_message(first_line);
                        s.set_type(r.level.as_str());
                        s.set_description(explanation(r));
                        s
                    }
                    (Verdict::Skip, None) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(first_line);
                        s
                    }
                    _ => TestCaseStatus::success(),
                };
                let mut status = status;
                // Each earlier try that missed is a rerun: a flaky success
                // or a failure that missed every time, as nextest writes them,
                // in Maven Surefire's form: a type, and the miss as its
                // stack trace (a rerun holds no text of its own).
                for t in r.earlier_tries.iter().filter(|t| t.verdict.is_miss()) {
                    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                    let first = t.misses.first().map(|m| m.detail.as_str()).unwrap_or("");
                    rerun.set_message(first.lines().next().unwrap_or_default());
                    rerun.set_type(r.level.as_str());
                    rerun.set_time(t.duration);
                    rerun.set_stack_trace(first);
                    status.add_rerun(rerun);
                }
                let mut case = TestCase::new(r.id.as_str(), status);
                case.set_classname(r.protocol());
                case.set_time(r.duration);
                case.add_property(Property::new("level", r.level.as_str()));
                case.add_property(Property::new("verdict", r.verdict.as_str()));
                if r.against_xfail() == Some(XFail::MissedAsExpected) {
                    case.add_property(Property::new("expected_to_miss", "true"));
                    case.set_system_out(format!(
                        "{} as expected (--xfail): {}",
                        r.verdict,
                        explanation(r)
                    ));
                } else if matches!(r.verdict, Verdict::Warn | Verdict::Info) {
                    case.set_system_out(format!("{}: {detail}", r.verdict));
                }
                self.cases.push(case);
            }
            RunEvent::RunFinished {
                info,
                summary,
                error,
                ..
            } => {
                if let Some(e) = error {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(e.message().lines().next().unwrap_or_default());
                    s.set_type(e.kind());
                    s.set_description(e.message());
                    let mut case = TestCase::new(format!("{} (run)", info.suite), s);
                    case.set_classname(info.suite.as_str());
                    self.cases.push(case);
                }
                let mut suite = TestSuite::new(info.suite.as_str());
                suite.set_time(summary.duration);
                suite.add_property(Property::new("role", info.role.as_str()));
                suite.add_property(Property::new("target", info.target.as_str()));
                suite.add_property(Property::new("seed", info.seed.to_string()));
                suite.add_property(Property::new("isolation", info.isolation.as_str()));
                suite.add_test_cases(std::mem::take(&mut self.cases));
                let mut report = Report::new("sockspec");
                report.set_time(summary.duration);
                report.add_test_suite(suite);
                report.serialize(&mut self.out).map_err(io::Error::other)?;
                writeln!(self.out)?;
                self.out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }
}
