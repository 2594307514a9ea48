//! The terminal display: a status line per check as it finishes (with a
//! transient "running" line on a terminal), the explanation of each miss
//! right under its line, and a one-line summary.

use std::io::{self, Write};

use super::{detail, explanation, tries, Reporter};
use crate::model::verdict::Verdict;
use crate::results::{RunEvent, XFail};

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

pub struct TextReporter<W: Write> {
    out: W,
    colour: bool,
    /// Whether to draw a transient progress line (terminals only).
    live: bool,
    missed: Vec<String>,
}

impl<W: Write> TextReporter<W> {
    pub fn new(out: W, colour: bool, live: bool) -> Self {
        TextReporter {
            out,
            colour,
            live,
            missed: Vec::new(),
        }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn verdict_code(v: Verdict) -> &'static str {
        match v {
            Verdict::Pass => "1;32",
            Verdict::Fail | Verdict::Error => "1;31",
            Verdict::Warn => "1;33",
            Verdict::Info => "1;36",
            Verdict::Skip => "1;90",
        }
    }
}

impl<W: Write> Reporter for TextReporter<W> {
    fn report(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::RunStarted { info, total } => {
                writeln!(
                    self.out,
                    "{} {} against {} `{}` ({}, seed {}, isolation {})",
                    self.paint("sockspec", "1"),
                    info.suite,
                    info.role.as_str(),
                    info.target,
                    plural(*total, "check"),
                    info.seed,
                    info.isolation.as_str()
                )?;
            }
            RunEvent::CheckStarted { index, total, id } => {
                if self.live {
                    let w = total.to_string().len();
                    write!(
                        self.out,
                        "\r\x1b[2K     {} ({:>w$}/{total}) {id}",
                        self.paint("RUN", "1;34"),
                        index + 1
                    )?;
                }
            }
            RunEvent::CheckFinished {
                index,
                total,
                result: r,
            } => {
                if self.live {
                    write!(self.out, "\r\x1b[2K")?;
                }
                let w = total.to_string().len();
                let label = if r.is_flaky() {
                    "FLAKY".to_string()
                } else {
                    r.verdict.to_string()
                };
                let status = format!("{label:>8}");
                writeln!(
                    self.out,
                    "{} [{:>7.3}s] ({:>w$}/{total}) {}",
                    self.paint(
                        &status,
                        if r.is_flaky() {
                            Self::verdict_code(Verdict::Warn)
                        } else {
                            Self::verdict_code(r.verdict)
                        }
                    ),
                    r.duration.as_secs_f64(),
                    index + 1,
                    r.id
                )?;
                if !r.earlier_tries.is_empty() {
                    for line in tries(r).lines() {
                        let code = if r.is_flaky() { "33" } else { "90" };
                        writeln!(self.out, "           {}", self.paint(line, code))?;
                    }
                    if r.is_flaky() {
                        self.missed.push(format!("FLAKY {}", r.id));
                    }
                }
                match r.against_xfail() {
                    Some(XFail::MissedAsExpected) => {
                        let line = "expected to miss (--xfail): it does not fail the run";
                        writeln!(self.out, "           {}", self.paint(line, "90"))?;
                    }
                    Some(XFail::UnexpectedPass) => {
                        let line = "expected to miss (--xfail), but it passed: this fails the \
                                    run; take it off the --xfail list";
                        writeln!(self.out, "           {}", self.paint(line, "1;31"))?;
                        self.missed
                            .push(format!("{} {} (expected to miss)", r.verdict, r.id));
                    }
                    None => {}
                }
                match r.verdict {
                    Verdict::Fail | Verdict::Warn | Verdict::Error => {
                        for line in explanation(r).lines() {
                            writeln!(self.out, "           {line}")?;
                        }
                        let expected = if r.expected_to_miss {
                            " (expected)"
                        } else {
                            ""
                        };
                        self.missed
                            .push(format!("{} {}{expected}", r.verdict, r.id));
                    }
                    Verdict::Skip | Verdict::Info => {
                        for line in detail(r).lines() {
                            writeln!(self.out, "           {}", self.paint(line, "90"))?;
                        }
                    }
                    // A passing check's observations (what an echo showed
                    // the server received, whether a second client was
                    // served at once) are facts worth a line.
                    Verdict::Pass => {
                        for note in &r.notes {
                            let line = format!("observed: {note}");
                            writeln!(self.out, "           {}", self.paint(&line, "90"))?;
                        }
                    }
                }
            }
            RunEvent::RunFinished {
                summary,
                error: Some(e),
                ..
            } => {
                writeln!(self.out, "------------")?;
                writeln!(
                    self.out,
                    "{} [{:>7.3}s] {}",
                    self.paint("Stopped", "1;31"),
                    summary.duration.as_secs_f64(),
                    e.message().lines().next().unwrap_or_default()
                )?;
            }
            RunEvent::RunFinished { summary, .. } => {
                let parts: Vec<String> = [
                    (Verdict::Pass, "passed"),
                    (Verdict::Fail, "failed"),
                    (Verdict::Warn, "warned"),
                    (Verdict::Info, "info"),
                    (Verdict::Skip, "skipped"),
                    (Verdict::Error, "errors"),
                ]
                .iter()
                .filter(|(v, _)| {
                    summary.count(*v) > 0 || *v == Verdict::Pass || *v == Verdict::Fail
                })
                .map(|(v, word)| {
                    self.paint(
                        &format!("{} {word}", summary.count(*v)),
                        Self::verdict_code(*v),
                    )
                })
                .collect();
                let mut parts = parts;
                if summary.flaky > 0 {
                    parts.push(self.paint(&format!("{} flaky", summary.flaky), "33"));
                }
                if summary.expected_fails > 0 {
                    parts.push(format!(
                        "{} failed as expected (--xfail)",
                        summary.expected_fails
                    ));
                }
                if summary.unexpected_passes > 0 {
                    parts.push(self.paint(
                        &format!("{} passed unexpectedly", summary.unexpected_passes),
                        "1;31",
                    ));
                }
                let total = summary.counts.sum();
                writeln!(self.out, "------------")?;
                for m in &self.missed {
                    writeln!(self.out, "     {m}")?;
                }
                writeln!(
                    self.out,
                    "{} [{:>7.3}s] {}: {}",
                    self.paint("Summary", "1"),
                    summary.duration.as_secs_f64(),
                    plural(total, "check"),
                    parts.join(", ")
                )?;
            }
        }
        self.out.flush()
    }
}
