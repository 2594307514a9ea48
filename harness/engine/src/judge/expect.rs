//! What an expectation waits for on a byte stream, and whether the bytes
//! that arrived so far meet it: a pure function of the bytes and of whether
//! the stream ended, as `frame.rs` decodes frames. The socket loop only
//! reads and asks; every rule of matching lives here and is tested without
//! sockets.

use std::fmt;

use crate::judge::show;

/// What an expectation waits for on a connection.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Want {
    /// Exactly these bytes next, in any number of pieces. Bytes after them
    /// stay buffered for the next expectation.
    Bytes(Vec<u8>),
    /// Exactly these bytes and then nothing more for a quiet moment: a whole
    /// message from a client, with no stray newline after it. The harness
    /// answers it at once (a client's receive timeout may be shorter than
    /// the quiet moment) and judges what followed when the connection is
    /// closed or the conversation ends; a later expectation on the same
    /// connection judges what follows it instead.
    Message(Vec<u8>),
    /// These bytes next, and any white space that arrived with them is
    /// passed over: for checks about something other than stray newlines,
    /// so that one fault is not blamed in every check.
    Line(Vec<u8>),
    /// End of stream. A close and a reset are both accepted: the protocols
    /// allow a peer to end either way.
    End,
    /// A reply to the request holding these bytes, whatever else it holds:
    /// a sign that the target still serves. Met once the request's bytes
    /// have come back in either letter case, whatever came before them (a
    /// greeting) or comes after them (read and dropped). For checks whose
    /// subject is not the reply's bytes (the server survived, its CPU, its
    /// descriptors), so that a reply wrong in its letters or framing is
    /// blamed by the checks about replies, not by every check; a target
    /// that answers with bytes unrelated to the request is not serving.
    Served(Vec<u8>),
    /// Any one of these outcomes: where the protocol allows several (a
    /// reply or a close, an error message or a reset). Held as soon as one
    /// alternative holds, missed only once every one has missed; a miss
    /// names them all. Each alternative is matched by its bytes alone:
    /// what follows a [`Want::Message`] among them is not judged, and a
    /// [`Want::Served`] among them takes what arrived. When several hold
    /// at once, the one that takes the fewest bytes is met, so that how
    /// the bytes were cut never changes what is left for the next
    /// expectation. With no alternatives, nothing can meet it.
    OneOf(Vec<Want>),
}

impl Want {
    /// The bytes expected, for wants that expect bytes.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Want::Bytes(b) | Want::Message(b) | Want::Line(b) => Some(b),
            Want::End | Want::Served(_) | Want::OneOf(_) => None,
        }
    }
}

/// One alternative of a [`Want::OneOf`] in words: bytes are called bytes,
/// so that a list of them reads as a sentence.
struct Alternative<'a>(&'a Want);

impl fmt::Display for Alternative<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Want::Bytes(_) | Want::Line(_) => write!(f, "the bytes {}", self.0),
            other => other.fmt(f),
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::Bytes(b) => write!(f, "{}", show::quoted(b, 48)),
            Want::Message(b) => write!(f, "exactly {}", show::quoted(b, 48)),
            Want::Line(b) => write!(
                f,
                "{} (white space after it passed over)",
                show::quoted(b, 48)
            ),
            Want::End => f.write_str("end of stream (close or reset)"),
            Want::Served(_) => f.write_str("any reply (the server still serves)"),
            Want::OneOf(alternatives) => {
                f.write_str("one of: ")?;
                for (i, alternative) in alternatives.iter().enumerate() {
                    match i {
                        0 => {}
                        _ if i + 1 == alternatives.len() => f.write_str(", or ")?,
                        _ => f.write_str(", ")?,
                    }
                    write!(f, "{}", Alternative(alternative))?;
                }
                Ok(())
            }
        }
    }
}

/// Where an expectation stands with the bytes received so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Progress {
    /// Met; the first `consumed` bytes belong to it.
    Done { consumed: usize },
    /// Cannot be met any more: the byte at `at` is not the one expected (for
    /// an end of stream: bytes arrived instead, `at` 0).
    Mismatch { at: usize },
    /// Everything so far fits; more must come. When the stream has ended
    /// already, more never will.
    NeedMore,
}

/// Judges `got` (received and not yet matched) against `want`. `ended`
/// says whether the peer ended its side of the stream.
pub fn progress(want: &Want, got: &[u8], ended: bool) -> Progress {
    if let Want::OneOf(alternatives) = want {
        return one_of(alternatives, got, ended);
    }
    if let Want::Served(request) = want {
        let echoed = !request.is_empty()
            && got
                .windows(request.len())
                .any(|w| w.eq_ignore_ascii_case(request));
        return match echoed {
            true => Progress::Done {
                consumed: got.len(),
            },
            // Whether other bytes are enough is the caller's to say, at
            // the deadline or the end of the stream.
            false => Progress::NeedMore,
        };
    }
    let Some(expected) = want.bytes() else {
        return match (got.is_empty(), ended) {
            (false, _) => Progress::Mismatch { at: 0 },
            (true, true) => Progress::Done { consumed: 0 },
            (true, false) => Progress::NeedMore,
        };
    };
    if let Some(at) = got.iter().zip(expected).position(|(g, e)| g != e) {
        return Progress::Mismatch { at };
    }
    if got.len() < expected.len() {
        return Progress::NeedMore;
    }
    let blank = match want {
        Want::Line(_) => got[expected.len()..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count(),
        _ => 0,
    };
    Progress::Done {
        consumed: expected.len() + blank,
    }
}

/// The stretches of `expected` whose answer never came when `got` is
/// `expected` with them left out: an answer that skips ahead, as one does
/// whose replies to earlier pieces were replaced by later ones before they
/// were sent. `None` when `got` is not such an answer (a prefix of
/// `expected`, or bytes that are not in it). Each stretch after which the
/// answer goes on must be followed by at least 8 matching bytes, or by the
/// rest of `got`, so a stray byte is not taken for a skip.
pub fn skipped(expected: &[u8], got: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    const RUN: usize = 8;
    let (mut i, mut j) = (0, 0);
    let mut gaps = Vec::new();
    while j < got.len() {
        if i < expected.len() && expected[i] == got[j] {
            i += 1;
            j += 1;
            continue;
        }
        let run = &got[j..(j + RUN).min(got.len())];
        let k = (i + 1..=expected.len().saturating_sub(run.len()))
            .find(|&k| &expected[k..k + run.len()] == run)?;
        gaps.push(i..k);
        i = k;
    }
    (!gaps.is_empty()).then_some(gaps)
}

/// `skipped`'s stretches in words, counting bytes from 1: "bytes 1-1024"
/// or "byte 14", at most three named.
pub fn skipped_words(gaps: &[std::ops::Range<usize>]) -> String {
    let named: Vec<String> = gaps
        .iter()
        .take(3)
        .map(|g| match g.len() {
            1 => format!("byte {}", g.start + 1),
            _ => format!("bytes {}-{}", g.start + 1, g.end),
        })
        .collect();
    let more = match gaps.len() {
        n if n > 3 => format!(" and {} more stretches", n - 3),
        _ => String::new(),
    };
    format!("{}{more}", named.join(", "))
}

/// Where the first alternative to hold stands, or, while none holds,
/// whether any still may: one that needs more keeps the whole waiting even
/// when others have mismatched already. A mismatch of all of them points
/// at the furthest byte any of them accepted up to. With the stream ended,
/// an alternative that needs more never gets it; the caller tells that
/// from `ended`, as for a single expectation.
fn one_of(alternatives: &[Want], got: &[u8], ended: bool) -> Progress {
    let mut fewest: Option<usize> = None;
    let mut open = false;
    let mut furthest = 0;
    for alternative in alternatives {
        match progress(alternative, got, ended) {
            Progress::Done { consumed } => {
                fewest = Some(fewest.map_or(consumed, |f| f.min(consumed)));
            }
            Progress::NeedMore => open = true,
            Progress::Mismatch { at } => furthest = furthest.max(at),
        }
    }
    match (fewest, open) {
        (Some(consumed), _) => Progress::Done { consumed },
        (None, true) => Progress::NeedMore,
        (None, false) => Progress::Mismatch { at: furthest },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(s: &str) -> Want {
        Want::Bytes(s.as_bytes().to_vec())
    }

    #[test]
    fn an_answer_that_skips_ahead_names_what_it_skipped() {
        let sent = b"ONE BYTE AT A TIME";
        assert_eq!(
            skipped(sent, b"ONE BYTE AT AT"),
            Some(vec![std::ops::Range { start: 13, end: 14 }])
        );
        let long: Vec<u8> = (0..3072u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        assert_eq!(
            skipped(&long, &long[1024..2048]),
            Some(vec![std::ops::Range {
                start: 0,
                end: 1024
            }])
        );
        assert_eq!(skipped_words(&[0..1024, 13..14]), "bytes 1-1024, byte 14");
    }

    #[test]
    fn a_prefix_or_foreign_bytes_skip_nothing() {
        assert_eq!(skipped(b"HELLO WORLD", b"HELLO"), None);
        assert_eq!(skipped(b"HELLO WORLD", b"hello world"), None);
        assert_eq!(skipped(b"HELLO", b"HELLO\n"), None);
    }

    #[test]
    fn a_reply_in_several_pieces_needs_more_until_it_is_whole() {
        let want = bytes("HELLO");
        assert_eq!(progress(&want, b"", false), Progress::NeedMore);
        assert_eq!(progress(&want, b"HE", false), Progress::NeedMore);
        assert_eq!(
            progress(&want, b"HELLO", false),
            Progress::Done { consumed: 5 }
        );
    }

    #[test]
    fn bytes_after_the_expected_ones_are_left_for_the_next_expectation() {
        assert_eq!(
            progress(&bytes("HI"), b"HI THERE", false),
            Progress::Done { consumed: 2 }
        );
    }

    #[test]
    fn a_wrong_byte_is_a_mismatch_at_once_and_says_where() {
        assert_eq!(
            progress(&bytes("HELLO"), b"HX", false),
            Progress::Mismatch { at: 1 }
        );
    }

    #[test]
    fn a_stream_that_ended_short_still_needs_more() {
        // The caller tells "ended after 2 of 5 bytes" from this and `ended`.
        assert_eq!(progress(&bytes("HELLO"), b"HE", true), Progress::NeedMore);
    }

    #[test]
    fn a_close_and_a_reset_both_end_the_stream() {
        assert_eq!(
            progress(&Want::End, b"", true),
            Progress::Done { consumed: 0 }
        );
        assert_eq!(progress(&Want::End, b"", false), Progress::NeedMore);
    }

    #[test]
    fn bytes_before_the_end_are_a_mismatch() {
        assert_eq!(
            progress(&Want::End, b"extra", true),
            Progress::Mismatch { at: 0 }
        );
    }

    #[test]
    fn a_line_takes_the_white_space_that_arrived_with_it() {
        let want = Want::Line(b"first".to_vec());
        assert_eq!(
            progress(&want, b"first\r\n  second", false),
            Progress::Done { consumed: 9 }
        );
    }

    #[test]
    fn a_message_takes_only_its_own_bytes() {
        // What follows a message is the caller's to judge, after a quiet
        // moment: a stray newline is then a miss of its own.
        let want = Want::Message(b"hello".to_vec());
        assert_eq!(
            progress(&want, b"hello\n", false),
            Progress::Done { consumed: 5 }
        );
    }

    #[test]
    fn a_reply_holding_the_request_in_any_case_shows_service_whatever_came_first() {
        let want = Want::Served(b"still there?".to_vec());
        assert_eq!(progress(&want, b"", false), Progress::NeedMore);
        assert_eq!(progress(&want, b"STILL TH", false), Progress::NeedMore);
        assert_eq!(
            progress(&want, b"still there?", false),
            Progress::Done { consumed: 12 }
        );
        assert_eq!(
            progress(&want, b"Welcome!\nSTILL THERE?\n", false),
            Progress::Done { consumed: 22 }
        );
    }

    fn reply_or_close() -> Want {
        Want::OneOf(vec![bytes("ERR\n"), Want::End])
    }

    #[test]
    fn one_of_holds_as_soon_as_one_alternative_holds() {
        assert_eq!(
            progress(&reply_or_close(), b"ERR\n", false),
            Progress::Done { consumed: 4 }
        );
        assert_eq!(
            progress(&reply_or_close(), b"", true),
            Progress::Done { consumed: 0 }
        );
    }

    #[test]
    fn one_of_needs_more_while_any_alternative_may_still_hold() {
        // The bytes so far rule out the close, not the reply.
        assert_eq!(
            progress(&reply_or_close(), b"ER", false),
            Progress::NeedMore
        );
        assert_eq!(progress(&reply_or_close(), b"", false), Progress::NeedMore);
    }

    #[test]
    fn one_of_misses_only_once_every_alternative_has_missed() {
        let want = Want::OneOf(vec![bytes("ERR\n"), bytes("EXIT\n"), Want::End]);
        assert_eq!(progress(&want, b"E", false), Progress::NeedMore);
        // "EX" rules out the first, not the second; "EXO" rules out both.
        assert_eq!(progress(&want, b"EX", false), Progress::NeedMore);
        assert_eq!(progress(&want, b"EXO", false), Progress::Mismatch { at: 2 });
    }

    #[test]
    fn an_end_after_part_of_a_reply_decides_the_close_but_leaves_the_caller_to_say_so() {
        // Bytes came, so the close alternative has missed; the reply stays
        // short for good, which the caller tells from `ended`.
        assert_eq!(progress(&reply_or_close(), b"ER", true), Progress::NeedMore);
    }

    #[test]
    fn of_two_alternatives_that_hold_the_shorter_is_met() {
        let want = Want::OneOf(vec![bytes("OK\nMORE"), bytes("OK\n")]);
        assert_eq!(
            progress(&want, b"OK\nMORE", false),
            Progress::Done { consumed: 3 }
        );
    }

    #[test]
    fn one_of_nothing_can_never_hold() {
        assert_eq!(
            progress(&Want::OneOf(Vec::new()), b"", true),
            Progress::Mismatch { at: 0 }
        );
    }

    #[test]
    fn one_of_names_every_alternative() {
        assert_eq!(
            reply_or_close().to_string(),
            "one of: the bytes \"ERR\\n\", or end of stream (close or reset)"
        );
        let three = Want::OneOf(vec![bytes("A"), bytes("B"), Want::End]);
        assert_eq!(
            three.to_string(),
            "one of: the bytes \"A\", the bytes \"B\", or end of stream (close or reset)"
        );
    }

    /// The verdict of the socket loop: `got` arriving in pieces that end at
    /// `cuts`, judged after each piece until one decides, then at the end.
    fn fed(want: &Want, got: &[u8], cuts: &[usize], ended: bool) -> Progress {
        for &end in cuts {
            match progress(want, &got[..end], false) {
                Progress::NeedMore => {}
                decided => return decided,
            }
        }
        progress(want, got, ended)
    }

    /// An alternative over a small alphabet, so that alternatives share
    /// prefixes and the bytes often meet one of them: bytes, a whole
    /// message, or an end. (A line and a served reply take what arrived
    /// with them, so what they consume depends on the cut by design.)
    fn alternative() -> impl Strategy<Value = Want> {
        let text = proptest::collection::vec(prop::sample::select(b"ab\n".to_vec()), 0..4);
        prop_oneof![
            text.clone().prop_map(Want::Bytes),
            text.prop_map(Want::Message),
            Just(Want::End),
        ]
    }

    proptest! {
        #[test]
        fn any_cut_of_the_expected_bytes_meets_it_once_whole(
            expected in proptest::collection::vec(any::<u8>(), 1..200),
            cut in any::<prop::sample::Index>(),
        ) {
            let at = cut.index(expected.len());
            let want = Want::Bytes(expected.clone());
            prop_assert_eq!(progress(&want, &expected[..at], false), Progress::NeedMore);
            prop_assert_eq!(
                progress(&want, &expected, false),
                Progress::Done { consumed: expected.len() }
            );
        }

        #[test]
        fn a_mismatch_points_at_the_first_differing_byte(
            expected in proptest::collection::vec(any::<u8>(), 1..100),
            at in any::<prop::sample::Index>(),
        ) {
            let at = at.index(expected.len());
            let mut got = expected.clone();
            got[at] ^= 0xff;
            prop_assert_eq!(
                progress(&Want::Bytes(expected), &got, false),
                Progress::Mismatch { at }
            );
        }

        #[test]
        fn one_of_reaches_the_same_verdict_however_the_bytes_were_cut(
            alternatives in proptest::collection::vec(alternative(), 0..4),
            got in proptest::collection::vec(prop::sample::select(b"ab\n".to_vec()), 0..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..5),
            ended in any::<bool>(),
        ) {
            let want = Want::OneOf(alternatives);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(got.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(fed(&want, &got, &cuts, ended), fed(&want, &got, &[], ended));
        }

        #[test]
        fn one_of_a_single_alternative_is_that_alternative(
            alternative in alternative(),
            got in proptest::collection::vec(prop::sample::select(b"ab\n".to_vec()), 0..8),
            ended in any::<bool>(),
        ) {
            prop_assert_eq!(
                progress(&Want::OneOf(vec![alternative.clone()]), &got, ended),
                progress(&alternative, &got, ended)
            );
        }
    }
}
