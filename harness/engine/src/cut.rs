//! How bytes are cut on the wire: a schedule of writes and pauses.
//!
//! TCP is a byte stream; a program that assumes one `send` is one `recv` is
//! wrong, but only traffic cut on purpose shows it. A [`Cut`] says how one
//! message is written: whole, one byte at a time, in given pieces with
//! pauses, or several messages merged into one write. The engine turns it
//! into a [`plan`](Cut::plan) of writes on a `TCP_NODELAY` socket, so each
//! write leaves at once and each pause is real.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use proptest::prelude::*;

use crate::timing::Pause;

/// One piece of a cut: `len` bytes in one write, then a pause.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Piece {
    pub len: usize,
    pub pause: Pause,
}

/// A schedule of writes for one message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Cut {
    /// One write.
    Whole,
    /// One byte per write, with a pause after each.
    Bytewise(Pause),
    /// Pieces in order; bytes beyond the listed pieces go in one last write.
    Pieces(Vec<Piece>),
    /// Several messages, of these lengths, joined in one write. Two writes
    /// sent back to back merged in only a quarter of runs under load; one
    /// write holding both merged in every run.
    Merged(Vec<usize>),
}

/// One write of a plan.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Write {
    pub range: Range<usize>,
    pub pause_after: Duration,
}

impl Cut {
    /// Pieces of the given lengths, each followed by `pause`.
    pub fn pieces(lens: &[usize], pause: Pause) -> Cut {
        Cut::Pieces(lens.iter().map(|&len| Piece { len, pause }).collect())
    }

    /// The writes that send `total` bytes under this cut. Empty pieces are
    /// dropped (a zero-byte TCP write sends nothing), and no pause follows
    /// the last write.
    pub fn plan(&self, total: usize) -> Vec<Write> {
        let mut writes = Vec::new();
        match self {
            Cut::Whole | Cut::Merged(_) => {
                if total > 0 {
                    writes.push(Write {
                        range: 0..total,
                        pause_after: Duration::ZERO,
                    })
                }
            }
            Cut::Bytewise(pause) => {
                for i in 0..total {
                    writes.push(Write {
                        range: i..i + 1,
                        pause_after: pause.duration(),
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
                            pause_after: piece.pause.duration(),
                        });
                    }
                    at = end;
                }
                if at < total {
                    writes.push(Write {
                        range: at..total,
                        pause_after: Duration::ZERO,
                    });
                }
            }
        }
        if let Some(last) = writes.last_mut() {
            last.pause_after = Duration::ZERO;
        }
        writes
    }

    /// The sum of the pauses this cut makes for a message of `total` bytes.
    pub fn paused(&self, total: usize) -> Duration {
        self.plan(total).iter().map(|w| w.pause_after).sum()
    }

    /// Generated cuts: up to `max_pieces` pieces of 1 to `max_len` bytes,
    /// each followed by one of `pauses_ms`. Shrinks towards fewer, smaller
    /// pieces and the first listed pause.
    pub fn arbitrary(
        max_pieces: usize,
        max_len: usize,
        pauses_ms: &'static [u32],
    ) -> BoxedStrategy<Cut> {
        let piece = (1..=max_len.max(1), 0..pauses_ms.len()).prop_map(move |(len, p)| Piece {
            len,
            pause: Pause::Millis(pauses_ms[p]),
        });
        proptest::collection::vec(piece, 1..=max_pieces.max(1))
            .prop_map(Cut::Pieces)
            .boxed()
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::Whole => f.write_str("whole"),
            Cut::Bytewise(p) => write!(f, "one byte at a time, {p} apart"),
            Cut::Pieces(pieces) => {
                f.write_str("pieces ")?;
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{}", piece.len)?;
                    if piece.pause.duration() > Duration::ZERO {
                        write!(f, " ~{}", piece.pause)?;
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
        assert!(Cut::Bytewise(Pause::Split).plan(0).is_empty());
    }

    #[test]
    fn bytewise_writes_each_byte_and_pauses_between_only() {
        let plan = Cut::Bytewise(Pause::Split).plan(3);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].pause_after, Duration::from_millis(50));
        assert_eq!(plan[2].pause_after, Duration::ZERO);
    }

    #[test]
    fn pieces_send_the_rest_in_one_last_write() {
        let cut = Cut::pieces(&[1, 3], Pause::Split);
        assert_eq!(ranges(&cut, 10), vec![0..1, 1..4, 4..10]);
        assert_eq!(cut.paused(10), Duration::from_millis(100));
    }

    #[test]
    fn pieces_longer_than_the_message_are_clipped() {
        let cut = Cut::pieces(&[4, 4, 4], Pause::Millis(0));
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
                pause: Pause::Millis(50),
            },
            Piece {
                len: 3,
                pause: Pause::Millis(0),
            },
        ]);
        assert_eq!(cut.to_string(), "pieces 1 ~50ms 3 rest");
    }

    proptest! {
        #[test]
        fn every_plan_covers_the_message_once_in_order(
            cut in Cut::arbitrary(8, 64, &[0, 20]),
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
        let cut = Cut::arbitrary(4, 10, &[0])
            .new_tree(&mut runner)
            .unwrap()
            .current();
        assert!(matches!(cut, Cut::Pieces(p) if !p.is_empty()));
    }
}
