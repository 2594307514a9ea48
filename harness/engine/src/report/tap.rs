//! TAP version 14 (the Test Anything Protocol): one test point per check,
//! written as each check ends, so a TAP consumer shows progress.
//!
//! A point fails where the run's exit status does: FAIL and ERROR are
//! `not ok`; PASS, INFO and WARN are `ok` (a missed SHOULD does not fail a
//! run), WARN and INFO with their detail in the point's YAML block; SKIP
//! is `ok` with a SKIP directive. A check expected to miss (`--xfail`) that
//! missed is `not ok` with a TODO directive, which fails no consumer; one
//! that passed is `not ok`. A run that stops early bails out with
//! the reason, after the points of the checks that ran.

use std::io::{self, Write};

use super::{detail, tries, Reporter};
use crate::model::verdict::Verdict;
use crate::results::{CheckResult, RunEvent, XFail};

pub struct TapReporter<W: Write> {
    out: W,
}

impl<W: Write> TapReporter<W> {
    pub fn new(out: W) -> Self {
        TapReporter { out }
    }

    fn point(&mut self, number: usize, r: &CheckResult) -> io::Result<()> {
        let ok = match (r.verdict, r.against_xfail()) {
            (_, Some(_)) | (Verdict::Fail | Verdict::Error, _) => "not ok",
            _ => "ok",
        };
        let mut detail = detail(r);
        if r.against_xfail() == Some(XFail::UnexpectedPass) {
            detail.insert_str(0, "passed, but expected to miss (--xfail)\n");
        }
        let first = detail.lines().next().unwrap_or("").trim();
        // TAP's TODO is an expected failure: a consumer does not count it.
        let directive = match (r.verdict, r.against_xfail()) {
            (_, Some(XFail::MissedAsExpected)) => " # TODO expected to miss (--xfail)".into(),
            (Verdict::Skip, _) => format!(" # SKIP {}", one_line(first)),
            _ => String::new(),
        };
        writeln!(
            self.out,
            "{ok} {number} - {}{directive}",
            escape(r.id.as_str())
        )?;
        let tries = tries(r);
        if !tries.is_empty() {
            detail = format!("{tries}{detail}");
        }
        if !matches!(r.verdict, Verdict::Pass | Verdict::Skip) || r.expected_to_miss || r.is_flaky()
        {
            // The YAML block: two spaces more than the point, a document
            // of plain keys and one literal block for the detail.
            writeln!(self.out, "  ---")?;
            writeln!(self.out, "  verdict: {}", r.verdict.as_str())?;
            if r.is_flaky() {
                writeln!(self.out, "  flaky: true")?;
            }
            writeln!(self.out, "  level: {}", r.level.as_str())?;
            writeln!(self.out, "  summary: {}", yaml_quoted(&r.summary))?;
            if !detail.trim().is_empty() {
                writeln!(self.out, "  message: |-")?;
                for line in detail.trim_end().lines() {
                    writeln!(self.out, "    {}", line.trim_end())?;
                }
            }
            writeln!(self.out, "  duration_ms: {}", r.duration.as_millis())?;
            writeln!(self.out, "  ...")?;
        }
        Ok(())
    }
}

impl<W: Write> Reporter for TapReporter<W> {
    fn report(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::RunStarted { info, total } => {
                writeln!(self.out, "TAP version 14")?;
                writeln!(self.out, "1..{total}")?;
                writeln!(
                    self.out,
                    "# sockspec {} {} against {} (seed {})",
                    info.suite,
                    info.role.as_str(),
                    one_line(&info.target),
                    info.seed
                )?;
            }
            RunEvent::CheckFinished { index, result, .. } => {
                self.point(index + 1, result)?;
            }
            RunEvent::RunFinished { summary, error, .. } => {
                if let Some(e) = error {
                    writeln!(self.out, "Bail out! {}", one_line(e.message()))?;
                } else {
                    let checks = if summary.total == 1 {
                        "check"
                    } else {
                        "checks"
                    };
                    writeln!(
                        self.out,
                        "# {} {checks} in {:.1}s",
                        summary.total,
                        summary.duration.as_secs_f64()
                    )?;
                }
            }
            RunEvent::CheckStarted { .. } => {}
        }
        self.out.flush()
    }
}

/// Text on one line: a description or directive ends at the line's end.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A description with TAP's two special characters escaped: `#` starts a
/// directive and `\` escapes.
fn escape(s: &str) -> String {
    one_line(s).replace('\\', "\\\\").replace('#', "\\#")
}

/// A YAML scalar in double quotes, safe whatever the text holds.
fn yaml_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_cannot_start_a_directive() {
        assert_eq!(escape("a # b\\c"), "a \\# b\\\\c");
        assert_eq!(one_line("two\nlines"), "two lines");
    }

    #[test]
    fn yaml_text_is_quoted_whatever_it_holds() {
        assert_eq!(yaml_quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
    }
}
