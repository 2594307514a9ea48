//! The sentences a person reads about a check, written from its typed
//! result: why it did not run, the case that missed, each miss at its step,
//! the hint, what was observed. The results hold data; the terminal
//! display and JUnit XML say it in these words, and the JSON report writes
//! the same text as each check's `detail`.

use crate::model::level::Level;
use crate::model::verdict::Verdict;
use crate::results::{CheckResult, FailingCase, Missed, NotRun};

/// What went wrong or was observed, in the words a student reads: why
/// the conversation did not run, the case that missed, a measurement
/// not reached, each miss at its step, and what was observed.
pub fn detail(r: &CheckResult) -> String {
    let mut out = String::new();
    if let Some(why) = &r.not_run {
        out.push_str(&format!("{}\n", not_run(why)));
    }
    if let Some(case) = &r.case {
        out.push_str(&failing_case(case, &r.id));
    }
    if let Some(f) = &r.fault {
        out.push_str(&format!(
            "the harness could not carry out \"{}\": {}\nthis is a fault of sockspec or \
             of the machine, not of the program; please report it\n",
            f.step, f.detail
        ));
    }
    if let Some(step) = &r.unmeasured {
        out.push_str(&format!(
            "the check stopped before its measurement (\"{step}\"): an earlier step went \
             wrong, so nothing was judged of what it measures\n"
        ));
    }
    for m in &r.misses {
        out.push_str(&missed(m));
    }
    let missed = matches!(r.verdict, Verdict::Fail | Verdict::Warn);
    if let (true, Some(hint), None) = (missed, &r.hint, &r.unmeasured) {
        out.push_str(&format!("hint: {hint}\n"));
    }
    if missed {
        out.push_str(&format!("more: sockspec explain {}\n", r.id));
    }
    for note in &r.notes {
        out.push_str(&format!("observed: {note}\n"));
    }
    out.truncate(out.trim_end().len());
    out
}

/// A miss as the detail shows it: `at "step":` and what went wrong under
/// it, with the level when it is not MUST.
pub fn missed(m: &Missed) -> String {
    let mut out = String::new();
    if m.level != Level::Must {
        out.push_str(&format!("[{}] ", m.level));
    }
    out.push_str(&format!("at \"{}\":\n", m.step.text));
    let lines: Vec<String> = m
        .detail
        .trim_end()
        .lines()
        .map(|l| format!("  {l}"))
        .collect();
    out.push_str(&lines.join("\n"));
    out.push('\n');
    out
}

/// Why a check's conversation did not run, in one sentence.
pub fn not_run(why: &NotRun) -> String {
    match why {
        NotRun::NeedsProcess => "needs the server's process (to watch its CPU or descriptors, to \
                                 kill it, or to type on its input and read its output); run \
                                 with --server 'CMD' so the harness starts it"
            .to_string(),
        NotRun::StartFailed { message } => {
            format!("the target could not be started for this check: {message}")
        }
        NotRun::StartPrevented { message } => format!(
            "the target could not be started for this check, through no fault of the \
             program: {message}"
        ),
    }
}

/// The case in lines, with how to draw it again for check `id`.
pub fn failing_case(case: &FailingCase, id: &str) -> String {
    match case {
        FailingCase::Fixed { bytes, cut } => {
            format!("failing case: a message of {bytes} bytes, cut: {cut}\n")
        }
        FailingCase::Shrunk {
            bytes,
            shown,
            cut,
            seed,
        } => format!(
            "smallest failing case: a message of {bytes} bytes {shown}, cut: {cut}\n\
             reproduce with: --seed {seed} --only {id}\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Fault, StepRef};

    fn miss(level: Level, text: &str, detail: &str) -> Missed {
        Missed {
            level,
            step: StepRef {
                number: Some(2),
                text: text.into(),
            },
            detail: detail.into(),
        }
    }

    #[test]
    fn a_miss_says_its_step_and_indents_what_went_wrong() {
        let m = miss(
            Level::Must,
            "expect on c1 \"HI\"",
            "nothing arrived\nwithin 2s\n",
        );
        assert_eq!(
            missed(&m),
            concat!(
                r#"at "expect on c1 "HI"":"#,
                "\n  nothing arrived\n  within 2s\n"
            )
        );
        let m = miss(Level::Should, "restart", "could not bind");
        assert!(missed(&m).starts_with("[SHOULD] at \"restart\":"));
    }

    #[test]
    fn the_detail_gives_the_case_the_misses_the_hint_and_what_was_observed() {
        let r = CheckResult {
            case: Some(FailingCase::Shrunk {
                bytes: 200,
                shown: "\"aaaa\"...".into(),
                cut: "whole".into(),
                seed: 1234,
            }),
            misses: vec![miss(
                Level::Must,
                "expect on c1 \"AAAA\"",
                "different bytes",
            )],
            notes: vec!["the server exited during the check (exit status 0)".into()],
            hint: Some("answer every piece".into()),
            ..CheckResult::new("tcp-upper.stream", Level::Must, Verdict::Fail)
        };
        assert_eq!(
            detail(&r),
            "smallest failing case: a message of 200 bytes \"aaaa\"..., cut: whole\n\
             reproduce with: --seed 1234 --only tcp-upper.stream\n\
             at \"expect on c1 \"AAAA\"\":\n  different bytes\n\
             hint: answer every piece\n\
             more: sockspec explain tcp-upper.stream\n\
             observed: the server exited during the check (exit status 0)"
        );
    }

    #[test]
    fn a_check_that_did_not_run_says_why() {
        let r = CheckResult {
            not_run: Some(NotRun::NeedsProcess),
            ..CheckResult::new("tcp-upper.no-spin", Level::Must, Verdict::Skip)
        };
        assert!(
            detail(&r).contains("run with --server 'CMD'"),
            "{}",
            detail(&r)
        );
    }

    #[test]
    fn a_fault_of_the_harness_leads_the_detail_and_blames_nobody_else() {
        let r = CheckResult {
            fault: Some(Fault {
                step: "expect on c2 \"HI\"".into(),
                detail: "c2 is not open".into(),
            }),
            hint: Some("never shown for an error".into()),
            ..CheckResult::new("x.y", Level::Must, Verdict::Error)
        };
        let d = detail(&r);
        assert!(d.starts_with("the harness could not carry out"), "{d}");
        assert!(d.contains("not of the program"), "{d}");
        assert!(!d.contains("hint:") && !d.contains("more:"), "{d}");
    }
}
