//! How bytes are cut on the wire: a schedule of writes, and what each
//! write waits for before the next.
//!
//! TCP is a byte stream; a program that assumes one `send` is one `recv` is
//! wrong, but only traffic cut on purpose shows it. A [`Cut`] says how one
//! message is written: whole, one byte at a time, in given pieces, or
//! several messages merged into one write. Between two pieces the harness
//! waits until the kernel shows that the target has read the first
//! ([`Gap::Read`]): a receive returns what is queued, so a piece written
//! into an empty queue while the target waits in its receive arrives on its
//! own. Only where time itself is the subject (a trickle, a stall inside a
//! prefix) does a cut pause for a fixed time ([`Gap::Pause`]). The engine
//! turns a cut into a [`plan`](Cut::plan) of writes on a `TCP_NODELAY`
//! socket, so each write leaves at once.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use proptest::prelude::*;

use crate::model::timing::Pause;

/// What separates a piece from the next one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gap {
    /// The next piece is written once the target has read this one, as the
    /// kernel shows it (within [`Deadline::Read`](crate::model::timing::Deadline::Read)),
    /// so each arrives in a receive of its own. Where the kernel cannot
    /// show the target's socket, a [`Pause::Split`] stands in.
    Read,
    /// A fixed pause, for a cut whose subject is time: a trickle, a stall
    /// in the middle of a prefix the target must wait out.
    Pause(Pause),
}

/// One piece of a cut: `len` bytes in one write, then a gap.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Piece {
    pub len: usize,
    pub gap: Gap,
}

/// A schedule of writes for one message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Cut {
    /// One write.
    Whole,
    /// One byte per write, with a gap after each.
    Bytewise(Gap),
    /// Pieces in order; bytes beyond the listed pieces go in one last write.
    Pieces(Vec<Piece>),
    /// Several messages, of these lengths, joined in one write. Two writes
    /// sent back to back merged in only a quarter of runs under load; one
    /// write holding both merged in every run.
    Merged(Vec<usize>),
}

/// One write of a plan, and the gap after it (`None` after the last).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Write {
    pub range: Range<usize>,
    pub gap: Option<Gap>,
}

impl Cut {
    /// Pieces of the given lengths, each read by the target before the next.
    pub fn pieces(lens: &[usize]) -> Cut {
        Cut::Pieces(
            lens.iter()
                .map(|&len| Piece {
                    len,
                    gap: Gap::Read,
                })
                .collect(),
        )
    }

    /// The writes that send `total` bytes under this cut. Empty pieces are
    /// dropped (a zero-byte TCP write sends nothing), and no gap follows
    /// the last write.
    pub fn plan(&self, total: usize) -> Vec<Write> {
        let mut writes = Vec::new();
        match self {
            Cut::Whole | Cut::Merged(_) => {
                if total > 0 {
                    writes.push(Write {
                        range: 0..total,
                        gap: None,
                    })
                }
            }
            Cut::Bytewise(gap) => {
                for i in 0..total {
                    writes.push(Write {
                        range: i..i + 1,
                        gap: Some(*gap),
                    });
                }
            }
            Cut::Pieces(pieces) => {
                let mut at = 0;
                for piece in pieces {
                    let end = (at + piece.len).min(total);
                    if end > at {
                        writes.push(Write {
                            range: at..end,
                            gap: Some(piece.gap),
                        });
                    }
                    at = end;
                }
                if at < total {
                    writes.push(Write {
                        range: at..total,
                        gap: None,
                    });
                }
            }
        }
        if let Some(last) = writes.last_mut() {
            last.gap = None;
        }
        writes
    }

    /// The sum of the fixed pauses this cut makes for a message of `total`
    /// bytes (waiting for the target to read is not counted: it is the
    /// target's time, not the cut's).
    pub fn paused(&self, total: usize) -> Duration {
        self.plan(total)
            .iter()
            .map(|w| match w.gap {
                Some(Gap::Pause(p)) => p.duration(),
                _ => Duration::ZERO,
            })
            .sum()
    }

    /// Generated cuts: up to `max_pieces` pieces of 1 to `max_len` bytes,
    /// each read by the target before the next. Shrinks towards fewer,
    /// smaller pieces.
    pub fn arbitrary(max_pieces: usize, max_len: usize) -> BoxedStrategy<Cut> {
        let piece = (1..=max_len.max(1)).prop_map(|len| Piece {
            len,
            gap: Gap::Read,
        });
        proptest::collection::vec(piece, 1..=max_pieces.max(1))
            .prop_map(Cut::Pieces)
            .boxed()
    }
}

impl Cut {
    /// Generated cuts of a message of `total` bytes that end a piece
    /// strictly inside each of `spans` (ranges of the message, such as a
    /// frame's prefix and its header), and at up to `extra` more places
    /// anywhere; each piece is read by the target before the next. Shrinks
    /// towards the fewest places, each as early as it may be: a piece
    /// ending one byte into each span. A span too short to end a piece
    /// inside is left whole.
    pub fn splitting(spans: &[Range<usize>], total: usize, extra: usize) -> BoxedStrategy<Cut> {
        let inside: Vec<BoxedStrategy<usize>> = spans
            .iter()
            .filter(|s| s.end > s.start + 1)
            .map(|s| (s.start + 1..s.end).boxed())
            .collect();
        let anywhere = proptest::collection::vec(1..total.max(2), 0..=extra);
        (inside, anywhere)
            .prop_map(move |(mut ends, more)| {
                ends.extend(more);
                Cut::ending_at(&ends, total)
            })
            .boxed()
    }

    /// Pieces that end at the given offsets of a message of `total` bytes,
    /// in any order and repeated or not; each read by the target before the
    /// next, the bytes after the last offset in one last write.
    pub fn ending_at(ends: &[usize], total: usize) -> Cut {
        let mut ends: Vec<usize> = ends
            .iter()
            .copied()
            .filter(|&e| e > 0 && e < total)
            .collect();
        ends.sort_unstable();
        ends.dedup();
        let mut at = 0;
        let lens: Vec<usize> = ends
            .into_iter()
            .map(|e| {
                let len = e - at;
                at = e;
                len
            })
            .collect();
        Cut::pieces(&lens)
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Whole => f.write_str("whole"),
            Cut::Bytewise(Gap::Read) => {
                f.write_str("one byte at a time, each read before the next")
            }
            Cut::Bytewise(Gap::Pause(p)) => write!(f, "one byte at a time, {p} apart"),
            Cut::Pieces(pieces) => {
                f.write_str("pieces ")?;
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{}", piece.len)?;
                    if let Gap::Pause(p) = piece.gap {
                        write!(f, " ~{p}")?;
                    }
                }
                f.write_str(" rest")
            }
            Cut::Merged(lens) => {
                let lens: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
                write!(
                    f,
                    "{} messages merged in one write ({})",
                    lens.len(),
                    lens.join("+")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::test_runner::TestRunner;

    fn ranges(cut: &Cut, total: usize) -> Vec<Range<usize>> {
        cut.plan(total).into_iter().map(|w| w.range).collect()
    }

    #[test]
    fn whole_is_one_write() {
        assert_eq!(ranges(&Cut::Whole, 5), vec![0..5]);
    }

    #[test]
    fn nothing_to_send_plans_no_write() {
        assert!(Cut::Whole.plan(0).is_empty());
        assert!(Cut::Bytewise(Gap::Read).plan(0).is_empty());
    }

    #[test]
    fn bytewise_writes_each_byte_and_waits_between_only() {
        let plan = Cut::Bytewise(Gap::Read).plan(3);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].gap, Some(Gap::Read));
        assert_eq!(plan[2].gap, None);
    }

    #[test]
    fn pieces_send_the_rest_in_one_last_write() {
        let cut = Cut::pieces(&[1, 3]);
        assert_eq!(ranges(&cut, 10), vec![0..1, 1..4, 4..10]);
        assert_eq!(cut.paused(10), Duration::ZERO);
    }

    #[test]
    fn only_fixed_pauses_count_as_paused() {
        let trickle = Cut::Bytewise(Gap::Pause(Pause::Split));
        assert_eq!(trickle.paused(3), Duration::from_millis(100));
    }

    #[test]
    fn pieces_longer_than_the_message_are_clipped() {
        let cut = Cut::pieces(&[4, 4, 4]);
        assert_eq!(ranges(&cut, 6), vec![0..4, 4..6]);
    }

    #[test]
    fn merged_messages_leave_in_one_write() {
        assert_eq!(ranges(&Cut::Merged(vec![2, 3]), 5), vec![0..5]);
        assert_eq!(
            Cut::Merged(vec![2, 3]).to_string(),
            "2 messages merged in one write (2+3)"
        );
    }

    #[test]
    fn a_cut_prints_as_a_schedule() {
        let cut = Cut::Pieces(vec![
            Piece {
                len: 1,
                gap: Gap::Pause(Pause::Millis(50)),
            },
            Piece {
                len: 3,
                gap: Gap::Read,
            },
        ]);
        assert_eq!(cut.to_string(), "pieces 1 ~50ms 3 rest");
        assert_eq!(
            Cut::Bytewise(Gap::Read).to_string(),
            "one byte at a time, each read before the next"
        );
    }

    proptest! {
        #[test]
        fn every_plan_covers_the_message_once_in_order(
            cut in Cut::arbitrary(8, 64),
            total in 0usize..300,
        ) {
            let mut at = 0;
            for w in cut.plan(total) {
                prop_assert_eq!(w.range.start, at);
                prop_assert!(w.range.end > w.range.start);
                at = w.range.end;
            }
            prop_assert_eq!(at, total);
        }
    }

    #[test]
    fn generated_cuts_are_never_empty() {
        let mut runner = TestRunner::deterministic();
        let cut = Cut::arbitrary(4, 10)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        assert!(matches!(&cut, Cut::Pieces(p) if !p.is_empty()));
        assert!(matches!(cut, Cut::Pieces(p) if p.iter().all(|p| p.gap == Gap::Read)));
    }

    #[test]
    fn pieces_ending_at_offsets_ignore_their_order_repeats_and_the_ends() {
        let cut = Cut::ending_at(&[5, 1, 5, 0, 9, 12], 9);
        assert_eq!(cut, Cut::pieces(&[1, 4]));
        assert_eq!(ranges(&cut, 9), vec![0..1, 1..5, 5..9]);
    }

    /// The offsets where a cut's pieces end, before the last write.
    fn ends(cut: &Cut, total: usize) -> Vec<usize> {
        let plan = cut.plan(total);
        plan[..plan.len() - 1].iter().map(|w| w.range.end).collect()
    }

    proptest! {
        #[test]
        fn a_splitting_cut_ends_a_piece_inside_each_span(
            cut in Cut::splitting(&[0..4, 4..60], 100, 4),
        ) {
            let ends = ends(&cut, 100);
            prop_assert!(ends.iter().any(|e| (1..4).contains(e)), "{:?}", ends);
            prop_assert!(ends.iter().any(|e| (5..60).contains(e)), "{:?}", ends);
            prop_assert!(ends.len() <= 6);
            if let Cut::Pieces(pieces) = &cut {
                prop_assert!(pieces.iter().all(|p| p.gap == Gap::Read));
            }
        }
    }

    #[test]
    fn a_splitting_cut_shrinks_to_one_byte_into_each_span() {
        let strategy = Cut::splitting(&[0..4, 4..60], 100, 4);
        let mut runner = TestRunner::deterministic();
        for _ in 0..8 {
            let mut tree = strategy.new_tree(&mut runner).unwrap();
            // Every cut fails, as every one does for a client that reads
            // the prefix and the header with one receive each.
            while tree.simplify() {}
            assert_eq!(tree.current(), Cut::pieces(&[1, 4]));
            assert_eq!(tree.current().to_string(), "pieces 1 4 rest");
        }
    }

    #[test]
    fn a_span_too_short_to_split_is_left_whole() {
        let mut runner = TestRunner::deterministic();
        let short = Range { start: 3, end: 4 };
        let cut = Cut::splitting(&[short], 10, 0)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        assert_eq!(cut, Cut::pieces(&[]));
        assert_eq!(ranges(&cut, 10), vec![0..10]);
    }
}
