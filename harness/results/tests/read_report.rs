//! A JSON report the engine wrote reads back with this crate alone: the
//! engine's pinned report of every kind of result (its snapshot, kept
//! beside the engine's tests) parses into these types, field for field.

use sockspec_results::{FailingCase, NotRun, Record, RunResults, Verdict, SCHEMA_VERSION};

/// The document under the snapshot's header.
fn pinned_report() -> RunResults {
    let snap = include_str!(
        "../../engine/tests/snapshots/reports__the_json_report_of_every_kind_of_result.snap"
    );
    let json = snap
        .splitn(3, "---\n")
        .nth(2)
        .expect("a snapshot is a header between two --- lines, then its document");
    serde_json::from_str(json).expect("the engine's JSON report reads back")
}

#[test]
fn a_report_written_by_the_engine_reads_back_with_its_version() {
    let run = pinned_report();
    assert_eq!(run.schema_version, SCHEMA_VERSION);
    assert_eq!(run.run.suite, "tcp-upper");
    assert_eq!(run.checks.len(), run.summary.total);
}

#[test]
fn every_check_reads_back_with_its_verdict_its_case_and_its_transcript() {
    let run = pinned_report();
    let verdicts: Vec<Verdict> = run.checks.iter().map(|c| c.verdict).collect();
    for v in verdicts.iter() {
        assert_eq!(
            run.summary.count(*v),
            verdicts.iter().filter(|w| *w == v).count()
        );
    }
    assert!(run
        .checks
        .iter()
        .any(|c| matches!(c.case, Some(FailingCase::Shrunk { .. }))));
    assert!(run
        .checks
        .iter()
        .any(|c| matches!(c.not_run, Some(NotRun::NeedsProcess))));
    assert!(run
        .checks
        .iter()
        .flat_map(|c| &c.transcript)
        .any(|r| matches!(r, Record::Omitted(_))));
}
