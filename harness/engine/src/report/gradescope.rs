//! Gradescope's autograder results (`results.json`): one document per run,
//! written when the run ends, in the format Gradescope's autograder
//! specification gives. Top-level `score` (the sum of the tests'),
//! `execution_time` in seconds, an `output` that says what ran and how it
//! ended, and one test per selected check: `name` (its id), `number`,
//! `score`, `max_score`, `status` (`passed` or `failed`), `output`,
//! `visibility` and `tags`.
//!
//! What a check earns is [`CheckResult::earned`], the one scoring rule; a
//! check the run gives no grading (no `--profile`) is worth one point. A
//! run that stopped early lists the checks it never reached too, each
//! worth nothing, so the maximum is the assignment's.
//!
//! A visible check's output explains it as the terminal does (what was
//! sent, how it was cut, what came back, the target's stderr). A check the
//! profile makes `hidden` or `after_due_date` says its verdict and summary
//! alone: its steps and transcript would show the bytes it expects. The
//! run's stdout (the text progress beside this file) explains every check,
//! so the document asks Gradescope to keep it from students.

use std::io::{self, Write};

use serde::Serialize;

use super::{detail, explanation, tries, Reporter};
use crate::model::verdict::Verdict;
use crate::results::{
    CheckResult, FlakyCredit, Grading, RunError, RunEvent, RunInfo, Summary, Visibility, XFail,
};

pub struct GradescopeReporter<W: Write> {
    out: W,
    checks: Vec<CheckResult>,
}

impl<W: Write> GradescopeReporter<W> {
    pub fn new(out: W) -> Self {
        GradescopeReporter {
            out,
            checks: Vec::new(),
        }
    }
}

impl<W: Write> Reporter for GradescopeReporter<W> {
    fn report(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::CheckFinished { result, .. } => self.checks.push((*result).clone()),
            RunEvent::RunFinished {
                info,
                summary,
                error,
                not_reached,
            } => {
                let ran = std::mem::take(&mut self.checks);
                let doc = document(info, summary, *error, ran, not_reached);
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                writeln!(self.out)?;
                self.out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A check's worth when the run gave it none (no `--profile`): one
/// visible point.
fn one_point() -> Grading {
    Grading {
        points: 1.0,
        visibility: Visibility::Visible,
        flaky: FlakyCredit::default(),
    }
}

/// The check with its grading, [`one_point`] when the run gave it none,
/// and that grading.
fn graded(mut r: CheckResult) -> (CheckResult, Grading) {
    let grading = *r.grading.get_or_insert_with(one_point);
    (r, grading)
}

/// The results document, as Gradescope reads it.
#[derive(Serialize)]
struct Results {
    score: f64,
    /// Seconds.
    execution_time: f64,
    output: String,
    output_format: &'static str,
    visibility: Visibility,
    /// The autograder's stdout is the text progress, which explains hidden
    /// checks too: never shown to students.
    stdout_visibility: Visibility,
    tests: Vec<Test>,
}

#[derive(Serialize)]
struct Test {
    name: String,
    number: String,
    score: f64,
    max_score: f64,
    status: &'static str,
    output: String,
    /// Plain text: transcripts hold `<`, `*` and backquotes, which
    /// Markdown or HTML would eat.
    output_format: &'static str,
    visibility: Visibility,
    tags: Vec<String>,
}

fn document(
    info: &RunInfo,
    summary: &Summary,
    error: Option<&RunError>,
    ran: Vec<CheckResult>,
    not_reached: &[CheckResult],
) -> Results {
    let mut tests: Vec<Test> = ran.into_iter().map(test).collect();
    let why = error.map_or("the run stopped early", |e| {
        e.message().lines().next().unwrap_or_default()
    });
    tests.extend(not_reached.iter().map(|r| unreached(r, why)));
    for (i, t) in tests.iter_mut().enumerate() {
        t.number = (i + 1).to_string();
    }
    let score = tests.iter().map(|t| t.score).sum();
    let possible: f64 = tests.iter().map(|t| t.max_score).sum();
    Results {
        score,
        execution_time: (summary.duration.as_secs_f64() * 1000.0).round() / 1000.0,
        output: overall(info, summary, error, score, possible, not_reached.len()),
        output_format: "text",
        visibility: Visibility::Visible,
        stdout_visibility: Visibility::Hidden,
        tests,
    }
}

/// A check that finished.
fn test(r: CheckResult) -> Test {
    let (r, grading) = graded(r);
    let score = r.earned().unwrap_or(0.0);
    // A flaky pass that earns less than its points is a fault shown.
    let passed = matches!(r.verdict, Verdict::Pass | Verdict::Info)
        && (!r.is_flaky() || score >= grading.points);
    let mut tags = vec![r.level.as_str().to_string(), r.verdict.as_str().to_string()];
    if r.is_flaky() {
        tags.push("flaky".into());
    }
    if r.expected_to_miss {
        tags.push("xfail".into());
    }
    Test {
        number: String::new(),
        score,
        max_score: grading.points,
        status: if passed { "passed" } else { "failed" },
        output: match grading.visibility {
            Visibility::Visible => shown(&r),
            Visibility::Hidden | Visibility::AfterDueDate => withheld(&r, grading.visibility),
        },
        output_format: "text",
        visibility: grading.visibility,
        tags,
        name: r.id,
    }
}

/// A selected check the run never reached: worth nothing, and why.
fn unreached(r: &CheckResult, why: &str) -> Test {
    let grading = r.grading.unwrap_or_else(one_point);
    Test {
        name: r.id.clone(),
        number: String::new(),
        score: 0.0,
        max_score: grading.points,
        status: "failed",
        output: format!(
            "NOT RUN {}: {}\nthe run stopped before this check: {why}\n",
            r.id, r.summary
        ),
        output_format: "text",
        visibility: grading.visibility,
        tags: vec![r.level.as_str().to_string(), "not-run".into()],
    }
}

/// The verdict as a word: FLAKY for a check that missed and then passed.
fn label(r: &CheckResult) -> String {
    if r.is_flaky() {
        "FLAKY".into()
    } else {
        r.verdict.to_string()
    }
}

/// A visible check's output: its verdict, then what the terminal shows of
/// it (the whole explanation of a miss).
fn shown(r: &CheckResult) -> String {
    let mut out = format!("{}\n", label(r));
    out.push_str(&tries(r));
    match r.against_xfail() {
        Some(XFail::MissedAsExpected) => out.push_str("expected to miss (--xfail)\n"),
        Some(XFail::UnexpectedPass) => out.push_str("passed, but expected to miss (--xfail)\n"),
        None => {}
    }
    match r.verdict {
        Verdict::Fail | Verdict::Warn | Verdict::Error => out.push_str(&explanation(r)),
        Verdict::Pass | Verdict::Info | Verdict::Skip => {
            out.push_str(&format!("{} {}: {}\n", r.level, r.id, r.summary));
            out.push_str(&format!("requirement: {}\n", r.expectation));
            let detail = detail(r);
            if !detail.is_empty() {
                out.push_str(&format!("{detail}\n"));
            }
        }
    }
    out
}

/// A hidden check's output: its verdict and summary, nothing of its steps,
/// its misses or its transcript.
fn withheld(r: &CheckResult, visibility: Visibility) -> String {
    let shown = match visibility {
        Visibility::AfterDueDate => "shown after the due date",
        _ => "hidden",
    };
    format!(
        "{} {}: {}\nthis check is {shown}: what it sends and expects is not shown\n",
        label(r),
        r.id,
        r.summary
    )
}

/// The run as a whole: what ran against what, the counts and the score,
/// and why it stopped when it stopped early.
fn overall(
    info: &RunInfo,
    summary: &Summary,
    error: Option<&RunError>,
    score: f64,
    possible: f64,
    unreached: usize,
) -> String {
    let mut out = format!(
        "sockspec {} against the {} `{}` (seed {}, isolation {})\n",
        info.suite,
        info.role.as_str(),
        info.target,
        info.seed,
        info.isolation.as_str()
    );
    let counts: Vec<String> = Verdict::ALL
        .into_iter()
        .filter(|v| summary.count(*v) > 0)
        .map(|v| format!("{} {}", summary.count(v), v.as_str()))
        .collect();
    out.push_str(&format!(
        "{} of {} checks ran: {}; score {} of {}\n",
        summary.counts.sum(),
        summary.total,
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        },
        points(score),
        points(possible)
    ));
    if let Some(e) = error {
        out.push_str(&format!(
            "the run stopped before {unreached} of its checks, which score nothing: {}\n",
            e.message()
        ));
    }
    out
}

/// Points as a person writes them: 3, 2.5.
fn points(p: f64) -> String {
    format!("{}", (p * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::level::Level;

    #[test]
    fn points_drop_a_zero_fraction() {
        assert_eq!(points(3.0), "3");
        assert_eq!(points(2.5), "2.5");
        assert_eq!(points(1.0 / 3.0), "0.33");
    }

    #[test]
    fn a_check_without_grading_is_one_visible_point() {
        let t = test(CheckResult::new("x.y", Level::Must, Verdict::Pass));
        assert_eq!((t.score, t.max_score, t.status), (1.0, 1.0, "passed"));
        assert_eq!(t.visibility, Visibility::Visible);
    }

    #[test]
    fn a_hidden_check_says_its_verdict_and_summary_alone() {
        let r = CheckResult {
            summary: "one message gets its upper back".into(),
            steps: vec!["expect on c1 \"HELLO\"".into()],
            grading: Some(Grading {
                points: 2.0,
                visibility: Visibility::Hidden,
                flaky: FlakyCredit::Half,
            }),
            ..CheckResult::new("tcp-upper.echo", Level::Must, Verdict::Fail)
        };
        let t = test(r);
        assert_eq!((t.score, t.max_score, t.status), (0.0, 2.0, "failed"));
        assert!(t.output.starts_with("FAIL tcp-upper.echo: one message"));
        assert!(!t.output.contains("HELLO"), "{}", t.output);
    }
}
