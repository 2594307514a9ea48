//! The thread that writes one cut on a connection: each piece, then what
//! keeps it apart from the next (the kernel showing that the target read
//! it, or a pause where time is the subject), each recorded in the
//! transcript with what the kernel saw. A cut whose pieces the target may
//! have read together is reported as not made, so a check does not blame
//! the target for a cut the harness did not achieve.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::conversations::transcript::{Event, FromBytes, Transcript};
use crate::kernel::confirm::{View, Watch};
use crate::model::cut::{Gap, Write};
use crate::model::names::Conn;
use crate::model::timing::{pause_for, Pause};

/// A cut whose pieces did not all reach the target apart: the target read
/// two or more of them together, or may have. A miss after it is not
/// blamed on the target until the cut is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmade {
    pub conn: Conn,
    /// The cut as meant, as the step prints it.
    pub cut: String,
    /// What was really made.
    pub made: String,
}

/// What the session shares with a writer: where it records, and the
/// tallies of waiting and of cuts not made.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) transcript: Arc<Mutex<Transcript>>,
    /// Deliberate pauses.
    pub(crate) paused: Arc<Mutex<Duration>>,
    /// Waiting for the kernel to show that the target read a piece.
    pub(crate) confirming: Arc<Mutex<Duration>>,
    pub(crate) unmade: Arc<Mutex<Vec<Unmade>>>,
}

/// One cut to write.
pub(crate) struct Writer {
    pub(crate) conn: Conn,
    pub(crate) stream: TcpStream,
    pub(crate) data: Vec<u8>,
    pub(crate) plan: Vec<Write>,
    /// The cut as the step prints it.
    pub(crate) cut: String,
    /// The kernel's view of the connection, when the link has one.
    pub(crate) watch: Option<Watch>,
    /// Bytes the harness wrote on the connection before this cut.
    pub(crate) before: u64,
    /// How long a piece may stay unread before the next is written anyway.
    pub(crate) read_within: Duration,
    pub(crate) shared: Shared,
}

/// What a finished writer hands back to its link.
pub(crate) struct Written {
    /// Bytes the harness wrote on the connection, this cut included.
    pub(crate) total: u64,
    pub(crate) watch: Option<Watch>,
}

/// How the pieces of a cut are kept apart.
enum Pacing {
    /// Each waits until the kernel shows the target read what came before.
    Confirmed,
    /// The kernel cannot show it: a fixed pause between pieces.
    TimePaced,
}

impl Writer {
    pub(crate) fn spawn(self) -> JoinHandle<Written> {
        thread::spawn(move || self.run())
    }

    fn record(&self, event: Event) {
        if let Ok(mut t) = self.shared.transcript.lock() {
            t.record(Some(self.conn), event);
        }
    }

    fn run(mut self) -> Written {
        let mut written = self.before;
        let mut pacing = self.pacing();
        let pieces = self.plan.len();
        // Once one piece went unread (or the target's end closed), the cut
        // is already not what was meant: the rest goes without waiting.
        let mut unread_at: Option<(usize, Duration)> = None;
        let mut waiting = true;
        let plan = std::mem::take(&mut self.plan);
        for (i, w) in plan.iter().enumerate() {
            let piece = &self.data[w.range.clone()];
            let wrote_at = Instant::now();
            let r = self.stream.write_all(piece);
            match &r {
                Ok(()) => self.record(Event::wrote(piece)),
                Err(e) => self.record(Event::note(format!(
                    "write of {} bytes failed: {e}",
                    piece.len()
                ))),
            }
            if r.is_err() {
                break;
            }
            written += piece.len() as u64;
            match w.gap {
                None => {}
                Some(Gap::Pause(p)) => pause_for(p.duration(), &self.shared.paused),
                Some(Gap::Read) if !waiting => {}
                Some(Gap::Read) => match pacing {
                    Pacing::TimePaced => pause_for(Pause::Split.duration(), &self.shared.paused),
                    Pacing::Confirmed => {
                        let view = self.wait_read(written);
                        let after = wrote_at.elapsed();
                        match view {
                            View::ReadAll => self.record(Event::ReadByTarget {
                                after_us: after.as_micros() as u64,
                            }),
                            View::Behind => {
                                self.record(Event::NotYetRead {
                                    waited_ms: after.as_millis() as u64,
                                });
                                if i + 2 < pieces {
                                    self.record(Event::note(
                                        "the rest is written without waiting: the cut is \
                                         already not the one meant",
                                    ));
                                }
                                unread_at = Some((i, after));
                                waiting = false;
                            }
                            View::Closed => {
                                self.record(Event::note(
                                    "the target's end of the connection is closed: the rest \
                                     is written without waiting",
                                ));
                                waiting = false;
                            }
                            View::Unseen(why) => {
                                self.record(Event::note(format!(
                                    "time-paced from here: {why}; pieces {} apart",
                                    Pause::Split
                                )));
                                pacing = Pacing::TimePaced;
                                pause_for(Pause::Split.duration(), &self.shared.paused);
                            }
                        }
                    }
                },
            }
        }
        if let Some((piece, after)) = unread_at {
            let lens: Vec<usize> = plan.iter().map(|w| w.range.len()).collect();
            self.judge_unread(written, &lens, piece, after);
        }
        Written {
            total: written,
            watch: self.watch,
        }
    }

    /// Says in the transcript how the cut's pieces are kept apart, when it
    /// has pieces that wait for the target.
    fn pacing(&mut self) -> Pacing {
        if !self.plan.iter().any(|w| w.gap == Some(Gap::Read)) {
            return Pacing::Confirmed;
        }
        let seen = match self.watch.as_mut() {
            Some(watch) => watch.visible(self.before),
            None => Err(crate::kernel::confirm::Unseen::DiagUnavailable),
        };
        match seen {
            Ok(()) => {
                self.record(Event::note(
                    "confirmed by the kernel: each piece is sent once the target's socket \
                     shows everything before it received and read",
                ));
                Pacing::Confirmed
            }
            Err(why) => {
                self.record(Event::note(format!(
                    "time-paced: {why}; pieces {} apart",
                    Pause::Split
                )));
                Pacing::TimePaced
            }
        }
    }

    /// Waits for the kernel to show the target read all `written` bytes.
    fn wait_read(&mut self, written: u64) -> View {
        let Some(watch) = self.watch.as_mut() else {
            return View::Unseen(crate::kernel::confirm::Unseen::DiagUnavailable);
        };
        let (view, waited) = watch.wait_read(written, self.read_within);
        if let Ok(mut c) = self.shared.confirming.lock() {
            *c += waited;
        }
        view
    }

    /// After a piece went unread: if the target read everything in the
    /// end, its pieces were merged and the cut was not made; if it still
    /// has not, it stopped reading, and what follows is its own doing.
    fn judge_unread(&mut self, written: u64, lens: &[usize], piece: usize, after: Duration) {
        let view = self.wait_read(written);
        let pieces = lens.len();
        match view {
            View::ReadAll => {
                let made = format!(
                    "{}: piece {} of {pieces} was not yet read after {}ms, so it and \
                     the {} after it may have reached the target together",
                    shown_pieces(lens),
                    piece + 1,
                    after.as_millis(),
                    pieces - piece - 1
                );
                self.record(Event::note(format!(
                    "the cut was not made as meant: {made}"
                )));
                if let Ok(mut u) = self.shared.unmade.lock() {
                    u.push(Unmade {
                        conn: self.conn,
                        cut: self.cut.clone(),
                        made,
                    });
                }
            }
            _ => self.record(Event::note(format!(
                "the target still had not read everything it was sent {}ms after the last \
                 piece: it stopped reading",
                self.read_within.as_millis()
            ))),
        }
    }
}

/// The pieces written, for a reader: each length, or how many of one
/// length when they are all alike, cut short when there are many.
fn shown_pieces(lens: &[usize]) -> String {
    const SHOWN: usize = 12;
    match lens {
        [first, ..] if lens.len() > 2 && lens.iter().all(|l| l == first) => {
            format!(
                "{} pieces of {first} byte{}",
                lens.len(),
                if *first == 1 { "" } else { "s" }
            )
        }
        _ => {
            let mut shown: Vec<String> = lens.iter().take(SHOWN).map(ToString::to_string).collect();
            if lens.len() > SHOWN {
                shown.push(format!("and {} more", lens.len() - SHOWN));
            }
            format!("pieces {}", shown.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cut::Cut;
    use std::io::Read;
    use std::net::TcpListener;

    /// Writes `cut` of `data` to a reading peer; the transcript's texts.
    fn write(cut: Cut, data: &[u8], out_of_sight: bool) -> Vec<String> {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let harness = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut target, _) = l.accept().unwrap();
        let expected = data.len();
        let reader = thread::spawn(move || {
            let mut got = vec![0u8; expected];
            target.read_exact(&mut got).unwrap();
        });
        let watch = if out_of_sight {
            Watch::out_of_sight(&harness)
        } else {
            Watch::new(&harness)
        };
        let shared = Shared {
            transcript: Arc::new(Mutex::new(Transcript::new(Instant::now()))),
            paused: Arc::default(),
            confirming: Arc::default(),
            unmade: Arc::default(),
        };
        let written = Writer {
            conn: Conn(1),
            stream: harness.try_clone().unwrap(),
            data: data.to_vec(),
            plan: cut.plan(data.len()),
            cut: cut.to_string(),
            watch: Some(watch),
            before: 0,
            read_within: Duration::from_secs(2),
            shared: shared.clone(),
        }
        .spawn()
        .join()
        .unwrap();
        reader.join().unwrap();
        assert_eq!(written.total, expected as u64);
        let t = shared.transcript.lock().unwrap();
        let (entries, _) = t.entries();
        // Notes by their text, other events by their name.
        entries
            .map(|e| match &e.event {
                Event::Note { text } => text.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn each_piece_is_marked_read_before_the_next() {
        let lines = write(Cut::pieces(&[1, 3]), b"abcdefgh", false);
        assert!(lines[0].starts_with("confirmed by the kernel"), "{lines:?}");
        let read = lines
            .iter()
            .filter(|l| l.starts_with("ReadByTarget"))
            .count();
        assert_eq!(read, 2, "{lines:?}");
    }

    #[test]
    fn a_cut_the_kernel_cannot_see_is_time_paced_and_says_why() {
        let lines = write(Cut::pieces(&[1]), b"ab", true);
        assert_eq!(
            lines[0],
            "time-paced: the kernel's view of the target's socket is not available; \
             pieces 50ms apart"
        );
        assert!(!lines.iter().any(|l| l.starts_with("ReadByTarget")));
    }

    #[test]
    fn pieces_are_shown_short() {
        assert_eq!(shown_pieces(&[1; 18]), "18 pieces of 1 byte");
        assert_eq!(shown_pieces(&[3, 1, 9]), "pieces 3 1 9");
        assert_eq!(
            shown_pieces(&[1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]),
            "pieces 1 2 1 2 1 2 1 2 1 2 1 2 and 2 more"
        );
    }
}
