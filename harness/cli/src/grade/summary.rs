//! What an instructor reads of a graded class: `summary.csv` (one row per
//! submission: its score, its counts, its status and the checks it missed)
//! and `summary.md` (the checks the class missed most first, the score
//! distribution, the isolation the machine granted). Both are rendered
//! from the submissions' JSON reports alone, so a merge of shards renders
//! them the same way, and every file is written whole under a temporary
//! name and renamed: a batch stopped at any moment leaves valid files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use sockspec_engine::model::verdict::Verdict;
use sockspec_engine::results::{NotRun, RunError, RunResults};

use super::shard::Planned;

/// How a submission's run went, as a word for the CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every check ran to a verdict (whatever the verdicts).
    Graded,
    /// The server never listened on its port (or a UDP server never bound).
    NoListen,
    /// The program ended before it was ready, or crashed during a check.
    Crashed,
    /// Nothing passed, and the program stopped answering: its checks
    /// missed on their deadlines.
    Timeout,
    /// Another process held the fixed port: the machine's doing, not the
    /// submission's; grade it again.
    PortBusy,
    /// The harness failed (or a check ended in ERROR): not the
    /// submission's doing; grade it again.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Graded => "graded",
            Status::NoListen => "no-listen",
            Status::Crashed => "crashed",
            Status::Timeout => "timeout",
            Status::PortBusy => "port-busy",
            Status::Error => "error",
        }
    }

    /// Whether the score stands: the submission's own doing, whatever it
    /// is, and not the machine's or the harness's.
    pub fn stands(self) -> bool {
        !matches!(self, Status::PortBusy | Status::Error)
    }

    /// The status of a run, from its report.
    pub fn of(run: &RunResults) -> Status {
        if let Some(error) = &run.error {
            return Status::of_error(error);
        }
        let checks = &run.checks;
        if checks.iter().any(|c| {
            matches!(c.not_run, Some(NotRun::StartPrevented { .. })) && c.verdict == Verdict::Error
        }) {
            return Status::PortBusy;
        }
        if checks.iter().any(|c| c.verdict == Verdict::Error) {
            return Status::Error;
        }
        // The engine judges the server's process beside the steps, and
        // says so when it crashed in the middle of a check.
        let crashed = checks.iter().any(|c| {
            c.misses
                .iter()
                .any(|m| m.step.number.is_none() && m.detail.starts_with("the server crashed"))
                || matches!(c.not_run, Some(NotRun::StartFailed { .. }))
        });
        if crashed {
            return Status::Crashed;
        }
        let passed = checks
            .iter()
            .any(|c| matches!(c.verdict, Verdict::Pass | Verdict::Info));
        let waited = checks.iter().any(|c| {
            c.misses.iter().any(|m| {
                m.detail.starts_with("timed out after") || m.detail.starts_with("no reply within")
            })
        });
        if !passed && waited {
            return Status::Timeout;
        }
        Status::Graded
    }

    /// The status of a run that stopped before its first check was judged.
    pub fn of_error(error: &RunError) -> Status {
        match error {
            RunError::Harness(_) => Status::Error,
            RunError::TargetFailed(message) => {
                if message.contains("already in use by") || message.contains("something else is") {
                    Status::PortBusy
                } else if message.contains("did not listen on") || message.contains("did not bind")
                {
                    Status::NoListen
                } else if message.contains("could not run `") {
                    Status::Error
                } else {
                    // The server ended before it listened: a crash at start.
                    Status::Crashed
                }
            }
        }
    }
}

/// One submission's line of the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub submission: String,
    pub score: f64,
    pub max_score: f64,
    pub passed: usize,
    pub failed: usize,
    pub warned: usize,
    pub flaky: usize,
    pub skipped: usize,
    pub status: Status,
    /// The checks that failed or warned, in suite order.
    pub failed_checks: Vec<String>,
    /// Each planned check's outcome, for the class's distribution.
    pub outcomes: BTreeMap<String, Outcome>,
}

/// How one check came out for one submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Flaky,
    Fail,
    Warn,
    Skip,
    Error,
    /// The run stopped before the check (the server never listened, say).
    NotRun,
}

impl Row {
    /// The row of a submission, from its report and the assignment's plan:
    /// every planned check counts in the maximum, run or not.
    pub fn new(submission: &str, run: &RunResults, plan: &[Planned]) -> Row {
        let mut row = Row {
            submission: submission.to_string(),
            score: 0.0,
            max_score: plan.iter().map(|p| p.points).sum(),
            passed: 0,
            failed: 0,
            warned: 0,
            flaky: 0,
            skipped: 0,
            status: Status::of(run),
            failed_checks: Vec::new(),
            outcomes: plan
                .iter()
                .map(|p| (p.id.clone(), Outcome::NotRun))
                .collect(),
        };
        for c in &run.checks {
            row.score += c.earned().unwrap_or(0.0);
            let outcome = match c.verdict {
                Verdict::Pass | Verdict::Info if c.is_flaky() => Outcome::Flaky,
                Verdict::Pass | Verdict::Info => Outcome::Pass,
                Verdict::Fail => Outcome::Fail,
                Verdict::Warn => Outcome::Warn,
                Verdict::Skip => Outcome::Skip,
                Verdict::Error => Outcome::Error,
            };
            match outcome {
                Outcome::Pass => row.passed += 1,
                Outcome::Flaky => {
                    row.passed += 1;
                    row.flaky += 1
                }
                Outcome::Fail => row.failed += 1,
                Outcome::Warn => row.warned += 1,
                Outcome::Skip => row.skipped += 1,
                Outcome::Error | Outcome::NotRun => {}
            }
            if matches!(outcome, Outcome::Fail | Outcome::Warn) {
                row.failed_checks.push(c.id.clone());
            }
            row.outcomes.insert(c.id.clone(), outcome);
        }
        row
    }
}

/// A score as people write it: `7`, `6.5`, never `6.499999`.
pub fn points(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// The CSV's columns, in order.
pub const COLUMNS: [&str; 10] = [
    "submission",
    "score",
    "max_score",
    "passed",
    "failed",
    "warned",
    "flaky",
    "skipped",
    "status",
    "failed_checks",
];

/// `summary.csv`: a header and one row per submission, sorted by name;
/// the failed checks separated by spaces in one field.
pub fn csv(rows: &[Row]) -> io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| a.submission.cmp(&b.submission));
    for r in sorted {
        w.write_record([
            r.submission.clone(),
            points(r.score),
            points(r.max_score),
            r.passed.to_string(),
            r.failed.to_string(),
            r.warned.to_string(),
            r.flaky.to_string(),
            r.skipped.to_string(),
            r.status.as_str().to_string(),
            r.failed_checks.join(" "),
        ])?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

/// What the Markdown summary says of the grading as a whole.
pub struct About<'a> {
    pub suite: &'a str,
    pub role: &'a str,
    pub plan: &'a [Planned],
    /// One sentence on the isolation the machine granted.
    pub isolation: String,
    /// Why submissions ran one after another, when they did.
    pub one_at_a_time: Option<&'a str>,
    /// Submissions not graded yet (an interrupted or running batch).
    pub left: usize,
}

/// `summary.md`: which checks the class missed most, the score
/// distribution, then each submission's line.
pub fn markdown(about: &About, rows: &[Row]) -> String {
    let mut out = String::new();
    let max: f64 = about.plan.iter().map(|p| p.points).sum();
    let _ = writeln!(
        out,
        "# {} ({} checks): {} submission{} graded\n",
        about.suite,
        about.role,
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    if about.left > 0 {
        let _ = writeln!(
            out,
            "{} more not graded yet: this summary covers the submissions graded so far.\n",
            about.left
        );
    }
    let _ = writeln!(out, "Isolation: {}", about.isolation);
    if let Some(why) = about.one_at_a_time {
        let _ = writeln!(out, "\nSubmissions ran one after another: {why}.");
    }
    let _ = writeln!(out, "\n## Checks, most missed first\n");
    let _ = writeln!(
        out,
        "| check | points | pass | fail | warn | flaky | skip | not run | error |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut tallies: Vec<(usize, &Planned, BTreeMap<&'static str, usize>)> = about
        .plan
        .iter()
        .enumerate()
        .map(|(order, p)| {
            let mut t: BTreeMap<&'static str, usize> = BTreeMap::new();
            for r in rows {
                let key = match r.outcomes.get(&p.id).copied().unwrap_or(Outcome::NotRun) {
                    Outcome::Pass => "pass",
                    Outcome::Flaky => "flaky",
                    Outcome::Fail => "fail",
                    Outcome::Warn => "warn",
                    Outcome::Skip => "skip",
                    Outcome::Error => "error",
                    Outcome::NotRun => "not run",
                };
                *t.entry(key).or_default() += 1;
            }
            (order, p, t)
        })
        .collect();
    let n = |t: &BTreeMap<&str, usize>, k: &str| t.get(k).copied().unwrap_or(0);
    tallies.sort_by_key(|(order, _, t)| {
        (
            std::cmp::Reverse(n(t, "fail") + n(t, "warn")),
            std::cmp::Reverse(n(t, "skip") + n(t, "not run")),
            *order,
        )
    });
    for (_, p, t) in &tallies {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.id,
            points(p.points),
            n(t, "pass"),
            n(t, "fail"),
            n(t, "warn"),
            n(t, "flaky"),
            n(t, "skip"),
            n(t, "not run"),
            n(t, "error")
        );
    }
    let _ = writeln!(out, "\n## Scores (out of {})\n", points(max));
    let mut scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    if let (Some(top), Some(bottom)) = (scores.first(), scores.last()) {
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        let mid = scores.len() / 2;
        let median = if scores.len() % 2 == 1 {
            scores[mid]
        } else {
            (scores[mid - 1] + scores[mid]) / 2.0
        };
        let _ = writeln!(
            out,
            "mean {}, median {}, lowest {}, highest {}\n",
            points(mean),
            points(median),
            points(*bottom),
            points(*top)
        );
        let _ = writeln!(out, "| score | submissions | |");
        let _ = writeln!(out, "|---:|---:|---|");
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in &scores {
            let shown = points(*s);
            match counts.last_mut() {
                Some((last, n)) if *last == shown => *n += 1,
                _ => counts.push((shown, 1)),
            }
        }
        for (score, count) in counts {
            let _ = writeln!(out, "| {score} | {count} | {} |", "#".repeat(count));
        }
    }
    let _ = writeln!(out, "\n## Submissions\n");
    let _ = writeln!(out, "| submission | score | status | missed |");
    let _ = writeln!(out, "|---|---:|---|---|");
    let mut sorted: Vec<&Row> = rows.iter().collect();
    sorted.sort_by(|a, b| a.submission.cmp(&b.submission));
    for r in sorted {
        let _ = writeln!(
            out,
            "| {} | {}/{} | {} | {} |",
            r.submission.replace('|', "\\|"),
            points(r.score),
            points(r.max_score),
            r.status.as_str(),
            r.failed_checks.join(", ")
        );
    }
    out
}

/// Writes `bytes` to `path` whole or not at all: to a temporary name in
/// the same folder, then renamed over it, so a reader (or a batch stopped
/// at this moment) never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, failed: &[&str]) -> Row {
        Row {
            submission: name.into(),
            score: 6.5,
            max_score: 10.0,
            passed: 3,
            failed: failed.len(),
            warned: 0,
            flaky: 0,
            skipped: 0,
            status: Status::Graded,
            failed_checks: failed.iter().map(|s| s.to_string()).collect(),
            outcomes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_name_with_a_comma_a_quote_or_a_newline_is_quoted_and_reads_back() {
        let odd = "o'brien, \"pat\"\nsmith";
        let bytes = csv(&[row(odd, &["tcp-upper.echo", "tcp-upper.large"])]).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("\"o'brien, \"\"pat\"\"\nsmith\""),
            "quoted as RFC 4180 says: {text}"
        );
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(reader.headers().unwrap(), COLUMNS.as_slice());
        let record = reader.records().next().unwrap().unwrap();
        assert_eq!(&record[0], odd);
        assert_eq!(&record[1], "6.5");
        assert_eq!(&record[9], "tcp-upper.echo tcp-upper.large");
    }

    #[test]
    fn rows_are_sorted_by_name() {
        let bytes = csv(&[row("zoe", &[]), row("adam", &[])]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.find("adam").unwrap() < text.find("zoe").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn points_are_written_as_people_write_them() {
        assert_eq!(points(7.0), "7");
        assert_eq!(points(6.5), "6.5");
        assert_eq!(points(0.1 + 0.2), "0.3");
        assert_eq!(points(0.0), "0");
    }

    #[test]
    fn a_run_that_never_started_says_why() {
        let status = |m: &str| Status::of_error(&RunError::TargetFailed(m.into()));
        assert_eq!(
            status("the server did not listen on port 4 within 10.0s; if its port is written"),
            Status::NoListen
        );
        assert_eq!(
            status("the server ended (exit status 1) before listening on port 4"),
            Status::Crashed
        );
        assert_eq!(
            status("port 9000 is already in use by python3 (pid 7) before the target was started"),
            Status::PortBusy
        );
        assert_eq!(
            Status::of_error(&RunError::Harness("no free port".into())),
            Status::Error
        );
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }
}
