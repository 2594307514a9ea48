//! What each report says, pinned: hand-made results played through the
//! terminal display, the JSON document and JUnit XML, compared with the
//! snapshots under `tests/snapshots/`. A changed word or a changed field is
//! a reviewed diff (`cargo insta review`, or `INSTA_UPDATE=always` and
//! `git diff`).

use std::time::Duration;

use sockspec_engine::conversations::check::{Level, Role};
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::conversations::transcript::{Entry, Event, FromBytes, Omitted, Record};
use sockspec_engine::judge::show;
use sockspec_engine::model::verdict::Verdict;
use sockspec_engine::report::{
    GradescopeReporter, JsonReporter, JunitReporter, Reporter, TextReporter,
};
use sockspec_engine::results::{
    CheckResult, FailingCase, FlakyCredit, Grading, Isolation, Missed, NotRun, RunError, RunEvent,
    RunInfo, RunResults, StepRef, Summary, Try, Visibility, SCHEMA_VERSION,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn steps(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

fn at(at_us: u64, conn: Option<u8>, event: Event) -> Record {
    Record::Entry(Entry {
        at_us,
        conn: conn.map(|c| Conn(c).into()),
        event,
    })
}

fn missed(level: Level, number: Option<usize>, text: &str, detail: &str) -> Missed {
    Missed {
        level,
        step: StepRef {
            number,
            text: text.into(),
        },
        detail: detail.into(),
    }
}

fn echo_passes() -> CheckResult {
    CheckResult {
        summary: "one message gets its upper back".into(),
        expectation: "a message sent on a new connection comes back with its ASCII letters in \
                      upper case"
            .into(),
        duration: ms(148),
        steps: steps(&[
            "connect c1 (TCP_NODELAY)",
            "send on c1 \"hello, world\" (12 bytes), cut: whole",
            "expect on c1 \"HELLO, WORLD\"",
            "close c1",
        ]),
        transcript: vec![
            at(110, Some(1), Event::Connected { local_port: 41776 }),
            at(320, Some(1), Event::wrote(b"hello, world")),
            at(1_450, Some(1), Event::read(b"HELLO, WORLD")),
            at(1_600, Some(1), Event::note("closed by the harness")),
        ],
        ..CheckResult::new("tcp-upper.echo", Level::Must, Verdict::Pass)
    }
}

fn many_messages_passes() -> CheckResult {
    CheckResult {
        summary: "three messages on one connection, each answered".into(),
        expectation: "a connection stays open for as many messages as the client sends".into(),
        duration: ms(237),
        deliberate: ms(200),
        steps: steps(&[
            "connect c1 (TCP_NODELAY)",
            "repeat 3 times: send on c1 \"one\" (3 bytes), cut: whole; expect on c1 \"ONE\"; \
             pause 100ms",
            "close c1",
        ]),
        ..CheckResult::new("tcp-upper.many-messages", Level::Must, Verdict::Pass)
    }
}

/// Binary bytes came back decoded and re-encoded as UTF-8: the difference
/// is shown as text and as hex.
fn binary_fails() -> CheckResult {
    let expected = b"\x00\x01\x02 ABC \xfe\xff";
    let actual = "\x00\x01\x02 ABC \u{fffd}\u{fffd}".as_bytes();
    let detail = format!(
        "different bytes arrived\n{}",
        show::compare(expected, actual).trim_end()
    );
    CheckResult {
        summary: "bytes that are not text come back unchanged, letters in upper case".into(),
        expectation: "the server handles bytes, not text: every byte that is not an ASCII \
                      letter comes back as it was sent"
            .into(),
        duration: ms(31),
        steps: steps(&[
            "connect c1 (TCP_NODELAY)",
            "send on c1 \"\\x00\\x01\\x02 abc \\xfe\\xff\" (10 bytes), cut: whole",
            "expect on c1 \"\\x00\\x01\\x02 ABC \\xfe\\xff\"",
            "close c1",
        ]),
        misses: vec![missed(
            Level::Must,
            Some(3),
            "expect on c1 \"\\x00\\x01\\x02 ABC \\xfe\\xff\"",
            &detail,
        )],
        notes: vec!["a plain exchange after the check was answered".into()],
        transcript: vec![
            at(95, Some(1), Event::Connected { local_port: 41790 }),
            at(180, Some(1), Event::wrote(b"\x00\x01\x02 abc \xfe\xff")),
            at(2_310, Some(1), Event::read(actual)),
        ],
        stderr_tail: Some(
            "Traceback (most recent call last):\n  File \"server.py\", line 21, in <module>\n    \
             text = data.decode()\nUnicodeDecodeError: 'utf-8' codec can't decode byte 0xfe"
                .into(),
        ),
        ..CheckResult::new("tcp-upper.binary", Level::Must, Verdict::Fail)
    }
}

/// A MUST expectation inside a SHOULD check: a warning.
fn restart_warns() -> CheckResult {
    CheckResult {
        summary: "killed with a connection open, it restarts on the same port at once".into(),
        expectation: "the server sets SO_REUSEADDR before bind, so a new instance binds the \
                      port while the old connection sits in TIME_WAIT"
            .into(),
        duration: ms(412),
        deliberate: ms(50),
        steps: steps(&[
            "connect c1 (TCP_NODELAY)",
            "kill the target (SIGKILL, whole process tree)",
            "restart the target on the same port",
        ]),
        misses: vec![missed(
            Level::Must,
            Some(3),
            "restart the target on the same port",
            "restarted at once on port 9999, the new instance could not bind it (address \
             already in use)\nset SO_REUSEADDR on the listening socket before bind()",
        )],
        transcript: vec![
            at(120, Some(1), Event::Connected { local_port: 41802 }),
            at(9_800, None, Event::note("killed the target (SIGKILL)")),
        ],
        stderr_tail: Some("OSError: [Errno 98] Address already in use".into()),
        ..CheckResult::new("tcp-upper.restart", Level::Should, Verdict::Warn)
    }
}

fn no_spin_skipped() -> CheckResult {
    CheckResult {
        summary: "no CPU spent while no client is connected".into(),
        expectation: "a server waiting for clients blocks in accept or recv and spends no CPU"
            .into(),
        not_run: Some(NotRun::NeedsProcess),
        ..CheckResult::new("tcp-upper.no-spin", Level::Must, Verdict::Skip)
    }
}

fn reset_errs() -> CheckResult {
    CheckResult {
        summary: "a client that aborts with a reset does not stop the server".into(),
        expectation: "a reset ends that connection only; the next client is served".into(),
        duration: ms(5_020),
        not_run: Some(NotRun::StartPrevented {
            message: "another program holds port 9999 (pid 4242: python3 other.py)".into(),
        }),
        ..CheckResult::new("tcp-upper.reset", Level::Must, Verdict::Error)
    }
}

/// A generated check's smallest failing case, its seed, and a transcript
/// too long to keep whole.
fn stream_fails() -> CheckResult {
    let mut transcript = vec![at(80, Some(1), Event::Connected { local_port: 41811 })];
    transcript.extend((0..3).map(|i| at(200 + i * 15, Some(1), Event::wrote(b"a"))));
    transcript.push(Record::Omitted(Omitted { count: 194 }));
    transcript.extend((0..2).map(|i| at(3_900 + i * 15, Some(1), Event::wrote(b"a"))));
    transcript.push(at(4_300, Some(1), Event::read(&[b'a'; 200])));
    let detail = format!(
        "different bytes arrived\n{}",
        show::compare(&[b'A'; 200], &[b'a'; 200]).trim_end()
    );
    CheckResult {
        summary: "bytes sent in any cut come back as upper of all of them, in order".into(),
        expectation: "however the bytes are cut on the wire, the replies together are upper \
                      of everything sent, in order"
            .into(),
        duration: ms(1_840),
        deliberate: ms(1_210),
        case: Some(FailingCase::Shrunk {
            bytes: 200,
            shown: show::quoted(&[b'a'; 200], 32),
            cut: "one byte at a time".into(),
            seed: 1234,
        }),
        steps: steps(&[
            "connect c1 (TCP_NODELAY)",
            "send on c1 \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"... (200 bytes in \
             all), cut: one byte at a time",
            "expect on c1 \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"... \
             (200 bytes in all)",
        ]),
        misses: vec![missed(
            Level::Must,
            Some(3),
            "expect on c1 \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"... \
             (200 bytes in all)",
            &detail,
        )],
        transcript,
        ..CheckResult::new("tcp-upper.stream", Level::Must, Verdict::Fail)
    }
}

fn info() -> RunInfo {
    RunInfo {
        suite: "tcp-upper".into(),
        role: Role::Server,
        target: "python3 server.py {port}".into(),
        seed: 42,
        isolation: Isolation::Namespace,
    }
}

/// A run of these checks out of `total`, stopped early by `error` or not.
fn run_of(checks: Vec<CheckResult>, total: usize, error: Option<RunError>) -> RunResults {
    let mut summary = Summary {
        total,
        duration: ms(9),
        peak_rss_kib: 8_412,
        ..Summary::default()
    };
    for c in &checks {
        summary.counts.add(c.verdict);
        summary.duration += c.duration;
        summary.deliberate += c.deliberate;
    }
    RunResults {
        schema_version: SCHEMA_VERSION,
        run: info(),
        checks,
        summary,
        error,
    }
}

/// Plays a run's events through a reporter, as the runner emits them.
fn play(reporter: &mut dyn Reporter, run: &RunResults) {
    play_stopped(reporter, run, &[]);
}

/// The same, for a run that stopped before the checks `not_reached`.
fn play_stopped(reporter: &mut dyn Reporter, run: &RunResults, not_reached: &[CheckResult]) {
    let total = run.summary.total;
    let info = &run.run;
    reporter
        .report(&RunEvent::RunStarted { info, total })
        .unwrap();
    for (index, result) in run.checks.iter().enumerate() {
        reporter
            .report(&RunEvent::CheckStarted {
                index,
                total,
                id: &result.id,
            })
            .unwrap();
        reporter
            .report(&RunEvent::CheckFinished {
                index,
                total,
                result,
            })
            .unwrap();
    }
    reporter
        .report(&RunEvent::RunFinished {
            info,
            summary: &run.summary,
            error: run.error.as_ref(),
            not_reached,
        })
        .unwrap();
}

fn text(run: &RunResults, colour: bool) -> String {
    let mut out = Vec::new();
    play(&mut TextReporter::new(&mut out, colour, false), run);
    String::from_utf8(out).unwrap()
}

fn json(run: &RunResults) -> String {
    let mut out = Vec::new();
    play(&mut JsonReporter::new(&mut out), run);
    String::from_utf8(out).unwrap()
}

fn gradescope(run: &RunResults, not_reached: &[CheckResult]) -> String {
    let mut out = Vec::new();
    play_stopped(&mut GradescopeReporter::new(&mut out), run, not_reached);
    String::from_utf8(out).unwrap()
}

fn junit(run: &RunResults) -> String {
    let mut out = Vec::new();
    play(&mut JunitReporter::new(&mut out), run);
    String::from_utf8(out).unwrap()
}

/// Every kind of check result in one run.
fn every_kind() -> RunResults {
    run_of(
        vec![
            echo_passes(),
            binary_fails(),
            restart_warns(),
            no_spin_skipped(),
            reset_errs(),
            stream_fails(),
        ],
        6,
        None,
    )
}

fn stopped_early() -> RunResults {
    run_of(
        vec![echo_passes()],
        12,
        Some(RunError::TargetFailed(
            "the server ended (exit status 1) before listening on port 9999\n\
             its stderr ends with:\n  OSError: [Errno 98] Address already in use"
                .into(),
        )),
    )
}

#[test]
fn a_passing_run_is_a_line_per_check_and_a_summary() {
    let run = run_of(vec![echo_passes(), many_messages_passes()], 2, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn a_failure_explains_itself_with_bytes_as_text_and_hex() {
    let run = run_of(vec![echo_passes(), binary_fails()], 2, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn a_warning_says_what_the_protocol_recommends() {
    let run = run_of(vec![restart_warns()], 1, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn a_skipped_check_says_why_and_how_to_run_it() {
    let run = run_of(vec![echo_passes(), no_spin_skipped()], 2, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn an_error_is_the_machine_s_never_the_program_s() {
    let run = run_of(vec![reset_errs()], 1, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn a_generated_failure_gives_its_smallest_case_and_seed() {
    let run = run_of(vec![stream_fails()], 1, None);
    insta::assert_snapshot!(text(&run, false));
}

#[test]
fn a_run_stopped_early_says_why_under_the_checks_that_ran() {
    insta::assert_snapshot!(text(&stopped_early(), false));
}

#[test]
fn colour_off_writes_no_escape_codes() {
    let shown = text(&every_kind(), false);
    assert!(!shown.contains('\x1b'), "{shown}");
}

#[test]
fn colour_marks_the_verdicts_and_the_summary() {
    let run = run_of(
        vec![echo_passes(), restart_warns(), no_spin_skipped()],
        3,
        None,
    );
    insta::assert_snapshot!(text(&run, true).replace('\x1b', "\\e"));
}

#[test]
fn the_json_report_of_every_kind_of_result() {
    insta::assert_snapshot!(json(&every_kind()));
}

#[test]
fn the_json_report_of_a_run_stopped_early() {
    insta::assert_snapshot!(json(&stopped_early()));
}

#[test]
fn a_json_report_reads_back_into_the_results_it_was_written_from() {
    for run in [every_kind(), stopped_early()] {
        let back: RunResults = serde_json::from_str(&json(&run)).unwrap();
        assert_eq!(back, run);
    }
}

#[test]
fn the_json_detail_is_the_one_the_text_shows() {
    let run = every_kind();
    let doc: serde_json::Value = serde_json::from_str(&json(&run)).unwrap();
    for (written, result) in doc["checks"].as_array().unwrap().iter().zip(&run.checks) {
        assert_eq!(written["detail"], sockspec_engine::report::detail(result));
    }
}

#[test]
fn the_junit_report_of_every_kind_of_result() {
    insta::assert_snapshot!(junit(&every_kind()));
}

#[test]
fn the_junit_report_of_a_run_stopped_early() {
    insta::assert_snapshot!(junit(&stopped_early()));
}

fn worth(points: f64, visibility: Visibility) -> Option<Grading> {
    Some(Grading {
        points,
        visibility,
        flaky: FlakyCredit::Half,
    })
}

/// Every kind of check result, graded as an assignment profile grades
/// them: points, and a hidden and an after-the-due-date check whose
/// outputs say their verdict and summary alone.
#[test]
fn the_gradescope_results_of_every_kind_of_result() {
    let mut run = every_kind();
    let gradings = [
        worth(2.0, Visibility::Visible),
        worth(3.0, Visibility::Hidden),
        worth(1.5, Visibility::AfterDueDate),
        worth(1.0, Visibility::Visible),
        worth(1.0, Visibility::Visible),
        worth(4.0, Visibility::Visible),
    ];
    for (check, grading) in run.checks.iter_mut().zip(gradings) {
        check.grading = grading;
    }
    insta::assert_snapshot!(gradescope(&run, &[]));
}

/// Without a profile each check is worth one visible point.
#[test]
fn the_gradescope_results_of_an_ungraded_run() {
    let run = run_of(vec![echo_passes(), binary_fails()], 2, None);
    insta::assert_snapshot!(gradescope(&run, &[]));
}

/// The checks a run never reached score nothing and say why, so the
/// maximum is the assignment's.
#[test]
fn the_gradescope_results_of_a_run_stopped_early() {
    let not_reached = [
        CheckResult {
            summary: "three messages on one connection, each answered".into(),
            grading: worth(2.0, Visibility::Visible),
            ..CheckResult::new("tcp-upper.many-messages", Level::Must, Verdict::Skip)
        },
        CheckResult {
            summary: "bytes sent in any cut come back as upper of all of them, in order".into(),
            grading: worth(3.0, Visibility::Hidden),
            ..CheckResult::new("tcp-upper.stream", Level::Must, Verdict::Skip)
        },
    ];
    let mut run = stopped_early();
    run.summary.total = 1 + not_reached.len();
    insta::assert_snapshot!(gradescope(&run, &not_reached));
}

/// A check run again (`--retries`): one that missed and then passed is a
/// passing case with a flakyFailure per missed try, one that missed every
/// try a failure with a rerunFailure, each in Maven Surefire's form (a
/// type, and the miss as its stack trace).
#[test]
fn the_junit_report_of_retried_checks() {
    let missed_try = |c: &CheckResult| Try {
        verdict: Verdict::Fail,
        duration: ms(240),
        misses: c.misses.clone(),
    };
    let failing = binary_fails();
    let flaky = CheckResult {
        earlier_tries: vec![missed_try(&failing)],
        ..echo_passes()
    };
    let always = CheckResult {
        earlier_tries: vec![missed_try(&failing)],
        ..binary_fails()
    };
    insta::assert_snapshot!(junit(&run_of(vec![flaky, always], 2, None)));
}
