//! The sentences a person reads about a check, written from its typed
//! result: why it did not run, the case that missed, each miss at its step,
//! the hint, what was observed, and each line of its transcript. The
//! results hold data; the terminal display and JUnit XML say it in these
//! words, and the JSON report writes the same text as each check's
//! `detail`.

use crate::model::level::Level;
use crate::model::verdict::Verdict;
use crate::results::{CheckResult, FailingCase, Missed, NotRun};
use sockspec_results::{Entry, Event, Omitted, Record};

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
        NotRun::DependencyMissed { on, verdict } => format!(
            "not run: it depends on {on}, which gave {verdict}; that check's miss is the one \
             to fix first"
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

/// A whole transcript, a line each.
pub fn transcript(records: &[Record]) -> String {
    records.iter().map(|r| transcript_line(r) + "\n").collect()
}

/// One line of a transcript: the time since the check began, the
/// connection or socket, and what happened; or the count of the entries
/// dropped from the middle, where they were.
pub fn transcript_line(record: &Record) -> String {
    match record {
        Record::Entry(e) => entry_line(e),
        Record::Omitted(Omitted { count }) => {
            format!("            ... {count} entries omitted ...")
        }
    }
}

/// An entry at its time, on its connection or socket when it has one.
pub fn entry_line(entry: &Entry) -> String {
    let ms = entry.at_us as f64 / 1000.0;
    let event = event_line(&entry.event);
    match entry.conn {
        Some(c) => format!("{ms:>9.1}ms {c} {event}"),
        None => format!("{ms:>9.1}ms     {event}"),
    }
}

/// What happened, with `->` for what the harness sent and `<-` for what
/// it received.
pub fn event_line(event: &Event) -> String {
    match event {
        Event::Connected { local_port } => format!("connected from port {local_port}"),
        Event::Accepted { peer } => format!("accepted from {peer}"),
        Event::Wrote { len, head } => format!("-> {len} bytes {head}"),
        Event::Read { len, head } => format!("<- {len} bytes {head}"),
        Event::Closed => "<- end of stream".into(),
        Event::ResetByPeer => "<- connection reset by peer".into(),
        Event::ShutdownWrite => "-> half-close (FIN)".into(),
        Event::SentReset => "-> reset (RST)".into(),
        Event::SentDatagram { len, head, to } => {
            format!("-> datagram of {len} bytes to {to} {head}")
        }
        Event::ReceivedDatagram { len, head, from } => {
            format!("<- datagram of {len} bytes from {from} {head}")
        }
        Event::ReadByTarget { after_us } => format!(
            "   read by the target before the next piece was sent ({:.1}ms)",
            *after_us as f64 / 1000.0
        ),
        Event::NotYetRead { waited_ms } => format!(
            "   not yet read after {waited_ms}ms: the next piece may have been merged with it"
        ),
        Event::Note { text } => text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::conversations::transcript::FromBytes;
    use crate::model::names::{Conn, Sock};
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

    fn at(
        at_us: u64,
        conn: Option<crate::conversations::transcript::Channel>,
        event: Event,
    ) -> Record {
        Record::Entry(Entry { at_us, conn, event })
    }

    #[test]
    fn an_accepted_connection_shows_the_clients_address() {
        let peer: SocketAddr = "[::1]:53124".parse().unwrap();
        assert_eq!(
            event_line(&Event::Accepted { peer }),
            "accepted from [::1]:53124"
        );
    }

    #[test]
    fn a_transcript_line_gives_its_time_its_connection_and_what_happened() {
        let line = transcript_line(&at(1_450, Some(Conn(1).into()), Event::read(b"HI")));
        assert_eq!(line, "      1.4ms c1 <- 2 bytes \"HI\"");
        let line = transcript_line(&at(120, None, Event::note("killed the target (SIGKILL)")));
        assert_eq!(line, "      0.1ms     killed the target (SIGKILL)");
    }

    #[test]
    fn a_datagram_is_one_line_with_its_length_and_its_peer() {
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let event = Event::received_datagram(b"HI", 2048, from);
        let line = transcript_line(&at(0, Some(Sock(2).into()), event));
        assert!(
            line.contains("u2 <- datagram of 2048 bytes from 127.0.0.1:40000 \"HI\""),
            "{line}"
        );
    }

    #[test]
    fn dropped_entries_are_counted_where_they_were() {
        let line = transcript_line(&Record::Omitted(Omitted { count: 5 }));
        assert!(line.contains("... 5 entries omitted ..."), "{line}");
    }
}
