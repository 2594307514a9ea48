//! Steps on the target's standard streams: type a line on its input, end
//! the input, expect text on its output, expect a clean exit. A client under
//! test reads its lines from standard input and prints its replies; a
//! server that reads its standard input (a chat server, which types each
//! reply) uses the same steps.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use super::{fault, miss, miss_with_hint, Domain, Runs, StepResult};
use crate::conversations::session::Session;
use crate::conversations::transcript::Event;
use crate::judge::show;
use crate::kernel::busy;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Timing};
use crate::targets::launch::stderr_block;
use crate::targets::target::{describe_exit, Process};

/// A step on the target's standard input or output.
#[derive(Clone, PartialEq, Debug)]
pub enum StdioStep {
    /// Write to the target's standard input.
    Input(Vec<u8>),
    /// Type `before`, the path of the file made for the target (`{file}`)
    /// and a newline: for a client that asks for the file to upload, or
    /// reads commands such as `put <path>`.
    InputFilePath { before: String },
    /// Close the target's standard input (end of input).
    EndInput,
    /// Expect `text` on the target's standard output (after what earlier
    /// expectations matched).
    ExpectOutput {
        text: String,
        level: Level,
        /// The likely reason when it does not appear, added to the miss.
        if_missing: Option<&'static str>,
    },
    /// Expect every one of `parts` on the target's standard output or its
    /// standard error, in any order (after what earlier expectations
    /// matched on each): one answer made of parts whose order and stream
    /// are the target's choice.
    ExpectAnswer {
        parts: Vec<String>,
        level: Level,
        /// The likely reason when a part does not appear, added to the miss.
        if_missing: Option<&'static str>,
    },
    /// Record, never as a miss, whether `text` was printed whole, or in
    /// parts with the bytes that went elsewhere (a reply longer than the
    /// target's receive size, the rest of which it printed as its next
    /// answer). Looked at once `until` is printed or the target has ended,
    /// within the output deadline.
    ObserveWhole { text: Vec<u8>, until: Vec<u8> },
    /// Expect the target to exit with status 0 after its input ended, and
    /// `not_on_stderr` (a traceback's first line, say) nowhere in the end of
    /// its stderr.
    ExpectCleanExit {
        level: Level,
        not_on_stderr: Option<&'static str>,
    },
}

impl StdioStep {
    pub fn needs_process(&self) -> bool {
        true
    }
}

impl fmt::Display for StdioStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StdioStep::Input(b) => write!(f, "type {}", show::quoted(b, 60)),
            StdioStep::InputFilePath { before } if before.is_empty() => {
                f.write_str("type the given file's path and a newline")
            }
            StdioStep::InputFilePath { before } => write!(
                f,
                "type {} then the given file's path and a newline",
                show::quoted(before.as_bytes(), 40)
            ),
            StdioStep::EndInput => f.write_str("end the input"),
            StdioStep::ExpectOutput { text, .. } => {
                write!(f, "expect output {}", show::quoted(text.as_bytes(), 60))
            }
            StdioStep::ExpectAnswer { parts, .. } => {
                let quoted: Vec<String> = parts
                    .iter()
                    .map(|p| show::quoted(p.as_bytes(), 40))
                    .collect();
                write!(
                    f,
                    "expect output {}, in any order, on stdout or stderr",
                    quoted.join(" and ")
                )
            }
            StdioStep::ObserveWhole { text, .. } => {
                write!(
                    f,
                    "observe whether the output shows {} whole",
                    show::sized(text, 32)
                )
            }
            StdioStep::ExpectCleanExit { not_on_stderr, .. } => {
                f.write_str("expect exit status 0")?;
                if let Some(text) = not_on_stderr {
                    write!(f, ", no {text:?} on stderr")?;
                }
                Ok(())
            }
        }
    }
}

/// What the stdio domain keeps during a conversation.
#[derive(Default)]
pub(crate) struct StdioState {
    /// How much of the target's output expectations matched.
    pub(crate) output_seen: u64,
    /// The same for its error output.
    pub(crate) error_seen: u64,
    /// The lines typed on the target's input so far, to tell a line the
    /// program sent from something it made up.
    pub(crate) typed: Vec<Vec<u8>>,
}

impl Domain for StdioStep {
    type State = StdioState;
}

impl Runs<StdioStep> for Session<'_> {
    fn run(&mut self, step: &StdioStep) -> StepResult {
        self.run_stdio(step)
    }
}

impl Session<'_> {
    pub(crate) fn run_stdio(&mut self, step: &StdioStep) -> StepResult {
        match step {
            StdioStep::Input(bytes) => {
                self.record(
                    None,
                    Event::note(format!("typed {}", show::quoted(bytes, 80))),
                );
                self.domains.stdio.typed.extend(
                    bytes
                        .split(|&b| b == b'\n')
                        .map(|l| l.trim_ascii().to_vec())
                        .filter(|l| !l.is_empty()),
                );
                let who = self.who();
                let p = self.own_process("use the standard streams of")?;
                p.write_input(bytes).map_err(|e| {
                    miss(
                        Level::Must,
                        format!("could not write to the {who}'s standard input: {e}"),
                    )
                })
            }
            StdioStep::InputFilePath { before } => {
                let p = self.own_process("use the standard streams of")?;
                let Some(path) = p.given_file() else {
                    return Err(fault(
                        "no file was made for the target to type the path of (a bug in the suite)",
                    ));
                };
                let mut line = before.as_bytes().to_vec();
                line.extend_from_slice(path.as_os_str().as_encoded_bytes());
                line.push(b'\n');
                self.run_stdio(&StdioStep::Input(line))
            }
            StdioStep::EndInput => {
                self.own_process("use the standard streams of")?
                    .close_input();
                self.record(None, Event::note("ended the input"));
                Ok(())
            }
            StdioStep::ExpectOutput {
                text,
                level,
                if_missing,
            } => self.expect_output(text, *level, *if_missing),
            StdioStep::ExpectAnswer {
                parts,
                level,
                if_missing,
            } => self.expect_answer(parts, *level, *if_missing),
            StdioStep::ObserveWhole { text, until } => self.observe_whole(text, until),
            StdioStep::ExpectCleanExit {
                level,
                not_on_stderr,
            } => self.expect_clean_exit(*level, *not_on_stderr),
        }
    }

    fn expect_answer(
        &mut self,
        parts: &[String],
        level: Level,
        if_missing: Option<&str>,
    ) -> StepResult {
        let within = self.timing.deadline(Deadline::Output);
        let deadline = Instant::now() + within;
        let (out_from, err_from) = (
            self.domains.stdio.output_seen,
            self.domains.stdio.error_seen,
        );
        let who = self.who();
        let p = self.own_process("use the standard streams of")?;
        // Where each part ended, on stdout or on stderr.
        let mut out_end = out_from;
        let mut err_end = err_from;
        let mut missing: Vec<&String> = parts.iter().collect();
        loop {
            let now = Instant::now();
            missing.retain(|part| {
                let needle = part.as_bytes();
                if let Some(end) = p.stdout().wait_for(needle, out_from, now) {
                    out_end = out_end.max(end);
                    false
                } else if let Some(end) = p.stderr().wait_for(needle, err_from, now) {
                    err_end = err_end.max(end);
                    false
                } else {
                    true
                }
            });
            if missing.is_empty() || now >= deadline {
                break;
            }
            thread::sleep(Timing::POLL.min(deadline.saturating_duration_since(now)));
        }
        if missing.is_empty() {
            self.domains.stdio.output_seen = out_end;
            self.domains.stdio.error_seen = err_end;
            return Ok(());
        }
        let printed = |bytes: Vec<u8>| {
            if bytes.is_empty() {
                "nothing".to_string()
            } else {
                show::quoted(&bytes, 120)
            }
        };
        let absent: Vec<String> = missing
            .iter()
            .map(|part| show::quoted(part.as_bytes(), 60))
            .collect();
        Err(miss(
            level,
            format!(
                "{} did not appear on the {who}'s output or its error output within {:.1}s; \
                 it printed {} on its output and {} on its error output{}",
                absent.join(" and "),
                within.as_secs_f64(),
                printed(p.stdout().since(out_from)),
                printed(p.stderr().since(err_from)),
                if_missing.map(|w| format!("\n{w}")).unwrap_or_default()
            ),
        ))
    }

    fn observe_whole(&mut self, text: &[u8], until: &[u8]) -> StepResult {
        let deadline = Instant::now() + self.timing.deadline(Deadline::Output);
        let from = self.domains.stdio.output_seen;
        let p = self.own_process("use the standard streams of")?;
        // Printed after everything it follows, or the end of the output.
        while p.stdout().wait_for(until, from, deadline).is_none() {
            if p.exited().is_some() {
                p.stdout()
                    .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(Timing::POLL);
        }
        let printed = p.stdout().since(from);
        let note = whole_or_parts(text, &printed, until);
        self.record(None, Event::note(note.clone()));
        self.notes.push(note);
        Ok(())
    }

    /// The target's role, as a reader names it.
    pub(crate) fn who(&self) -> &'static str {
        if self.peer.is_client() {
            "client"
        } else {
            "server"
        }
    }

    fn expect_output(&mut self, text: &str, level: Level, if_missing: Option<&str>) -> StepResult {
        let within = self.timing.deadline(Deadline::Output);
        let timing = self.timing;
        let from = self.domains.stdio.output_seen;
        let err_from = self.domains.stdio.error_seen;
        let who = self.who();
        let p = self.own_process("use the standard streams of")?;
        let (found, waited) = wait_for_output(p, text.as_bytes(), from, timing);
        // Past the deadline only while output kept coming: that is the
        // time to report.
        let within = if waited > within + Duration::from_millis(500) {
            waited
        } else {
            within
        };
        match found {
            Some(end) => {
                self.domains.stdio.output_seen = end;
                Ok(())
            }
            None => {
                let printed = p.stdout().since(from);
                let on_stderr = p.stderr().since(err_from);
                let missing = format!(
                    "{} did not appear on the {who}'s output within {:.1}s",
                    show::quoted(text.as_bytes(), 60),
                    within.as_secs_f64(),
                );
                let why = if_missing.map(|w| format!("\n{w}")).unwrap_or_default();
                if !printed.is_empty() || on_stderr.is_empty() {
                    let seen = if printed.is_empty() {
                        "nothing".to_string()
                    } else {
                        show::quoted(&printed, 120)
                    };
                    let detail = format!("{missing}; it printed {seen}{why}");
                    if let Some(escaped) = escaped_bytes(text.as_bytes()) {
                        if contains(&printed, escaped.as_bytes()) {
                            return Err(miss_with_hint(
                                level,
                                detail,
                                format!(
                                    "the {who} printed the bytes of the text escaped \
                                     ({}...), not the text: it printed the bytes object it \
                                     received; decode it before printing \
                                     (data.decode('utf-8') in Python)",
                                    &escaped[..escaped.len().min(24)]
                                ),
                            ));
                        }
                    }
                    // Waiting for its next line with no whole line shown:
                    // what it printed may be held in its stdio buffer.
                    let unended = printed.last() != Some(&b'\n');
                    let tree: Vec<i32> = p.tree().iter().map(|s| s.pid).collect();
                    if unended && tree.iter().any(|&pid| busy::reading(pid, 0)) {
                        return Err(miss_with_hint(
                            level,
                            detail,
                            format!(
                                "the {who} is waiting to read its next input line, and the text \
                                 is not on its output: printed without a newline, it may be \
                                 sitting in the program's output buffer (a terminal shows a \
                                 line at its newline); end it with a newline or flush after \
                                 printing: fflush(stdout) in C (or setvbuf(stdout, NULL, \
                                 _IONBF, 0) once), print(..., flush=True) in Python, \
                                 System.out.flush() in Java"
                            ),
                        ));
                    }
                    return Err(miss(level, detail));
                }
                // A program that prints its messages on stderr did print:
                // say where, and what, rather than "nothing".
                let detail = format!(
                    "{missing}; nothing on its standard output; {} on its standard error: \
                     {}{why}",
                    byte_count(on_stderr.len()),
                    show::quoted(&on_stderr, 120),
                );
                if contains(&on_stderr, text.as_bytes()) {
                    Err(miss_with_hint(
                        level,
                        detail,
                        format!(
                            "the {who} printed the text on its standard error: print it on \
                             standard output (print(), console.log, System.out, printf), not \
                             through logging, console.error or sys.stderr"
                        ),
                    ))
                } else {
                    Err(miss(level, detail))
                }
            }
        }
    }

    fn expect_clean_exit(&mut self, level: Level, not_on_stderr: Option<&str>) -> StepResult {
        let within = self.timing.deadline(Deadline::Exit);
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(st) = self.own_process("use the standard streams of")?.exited() {
                break Some(st);
            }
            if Instant::now() >= deadline {
                break None;
            }
            self.close_ended_links();
            thread::sleep(Timing::POLL);
        };
        let p = self.own_process("use the standard streams of")?;
        let Some(status) = status else {
            return Err(miss(
                level,
                format!(
                    "the client was still running {:.1}s after its input ended",
                    within.as_secs_f64()
                ),
            ));
        };
        p.stderr()
            .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
        let tail = p.stderr().tail(12);
        if !status.success() || not_on_stderr.is_some_and(|t| tail.contains(t)) {
            return Err(miss(
                level,
                format!(
                    "the client ended with {} after its input ended{}",
                    describe_exit(status),
                    stderr_block(p)
                ),
            ));
        }
        Ok(())
    }
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `n bytes`, or `1 byte`.
fn byte_count(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// In words: whether `printed` shows `text` whole, and if not, how much of
/// it came first and where the rest went: on its own before the next reply
/// (`next`), or in that reply's place.
fn whole_or_parts(text: &[u8], printed: &[u8], next: &[u8]) -> String {
    let found = |part: &[u8]| printed.windows(part.len()).position(|w| w == part);
    if text.is_empty() || found(text).is_some() {
        return format!("the reply of {} bytes was printed whole", text.len());
    }
    // The longest start of the text that was printed: what one receive got.
    let (mut lo, mut hi) = (0, text.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if found(&text[..mid]).is_some() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let rest = &text[lo..];
    if lo == 0 {
        return format!(
            "the reply of {} bytes was not printed: none of it shows on the output",
            text.len()
        );
    }
    let after = found(&text[..lo]).map_or(0, |at| at + lo);
    let later = printed.get(after..).unwrap_or_default();
    let rest_at = later.windows(rest.len()).position(|w| w == rest);
    let next_at = later.windows(next.len()).position(|w| w == next);
    let went = match (rest_at, next_at) {
        (None, _) => "were not printed (left in the socket, or lost)",
        // The next reply printed apart, after them: the client received the
        // long one in pieces and printed each.
        (Some(r), Some(n)) if n > r + rest.len() => {
            "were printed on their own, before the next reply: it printed each piece it received"
        }
        _ => "stuck to the next reply: they were printed as the answer to the next line",
    };
    format!(
        "the reply of {} bytes did not arrive whole: the client printed its first {lo} \
         bytes as the answer, and the other {} bytes {}\n{went}",
        text.len(),
        rest.len(),
        show::quoted(rest, 48),
    )
}

/// `text` as a program prints a bytes object holding it (Python's
/// `print(data)`: `\xe4\xbd\xa0`), when it holds bytes outside ASCII;
/// otherwise `None`, as such a print would hold the text itself.
fn escaped_bytes(text: &[u8]) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    Some(
        text.iter()
            .map(|&b| match b {
                0x20..=0x7e if b != b'\\' && b != b'\'' => (b as char).to_string(),
                _ => format!("\\x{b:02x}"),
            })
            .collect(),
    )
}

/// Waits for `needle` on the target's output after offset `from`, as long
/// as output keeps coming: the output deadline is the longest stall, and
/// the whole wait may go on while what was printed keeps the slowest pace
/// allowed ([`crate::model::timing::AnswerPace`]), as a socket read does.
/// A client printing an answer of many MiB through its terminal is judged
/// on what it prints, not on how fast a terminal carries it. Gives the
/// offset past the needle, if it came, and how long was waited.
fn wait_for_output(
    p: &mut Process,
    needle: &[u8],
    from: u64,
    timing: Timing,
) -> (Option<u64>, Duration) {
    let within = timing.deadline(Deadline::Output);
    let started = Instant::now();
    let mut seen = p.stdout().total();
    let mut last_growth = started;
    loop {
        let grown = usize::try_from(seen.saturating_sub(from)).unwrap_or(usize::MAX);
        let deadline = (last_growth + within).min(started + within + timing.earned(grown));
        let now = Instant::now();
        if now >= deadline {
            return (None, started.elapsed());
        }
        // Looked at again every slice, to see whether output still comes.
        let slice = deadline.min(now + Duration::from_millis(200));
        if let Some(end) = p.stdout().wait_for(needle, from, slice) {
            return (Some(end), started.elapsed());
        }
        let total = p.stdout().total();
        if total > seen {
            seen = total;
            last_growth = Instant::now();
        } else if p.stdout().wait_closed(Instant::now()) {
            return (None, started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bytes_object_printed_shows_its_bytes_outside_ascii_escaped() {
        assert_eq!(
            escaped_bytes("caf\u{e9} \u{4f60}".as_bytes()).as_deref(),
            Some("caf\\xc3\\xa9 \\xe4\\xbd\\xa0")
        );
        assert_eq!(escaped_bytes(b"plain text"), None);
    }

    #[test]
    fn a_reply_printed_in_one_piece_is_whole() {
        assert_eq!(
            whole_or_parts(b"HELLO THERE", b"HELLO THERE\nNEXT\n", b"NEXT"),
            "the reply of 11 bytes was printed whole"
        );
    }

    #[test]
    fn the_rest_of_a_cut_reply_printed_as_the_next_answer_is_named_with_its_bytes() {
        let words = whole_or_parts(b"ABCDEFGHIJ", b"ABCDEF\nGHIJ\n", b"NEXT");
        assert!(words.contains("its first 6 bytes"), "{words}");
        assert!(words.contains("other 4 bytes \"GHIJ\""), "{words}");
        assert!(words.contains("stuck to the next reply"), "{words}");
    }

    #[test]
    fn the_rest_of_a_cut_reply_never_printed_is_said_to_be_left() {
        let words = whole_or_parts(b"ABCDEFGHIJ", b"ABCDEF\n", b"NEXT");
        assert!(words.contains("were not printed"), "{words}");
    }

    #[test]
    fn a_reply_printed_piece_by_piece_before_the_next_is_not_called_stuck() {
        let words = whole_or_parts(b"ABCDEFGHIJ", b"ABCDEF\nGHIJ\nNEXT\n", b"NEXT");
        assert!(words.contains("printed on their own"), "{words}");
    }
}
