//! Writing a frame as the server a client under test talks to: the head
//! (prefix and header) under the frame's cut, through the stream domain's
//! send, whose writer keeps the pieces apart as the kernel shows the
//! client read each one; then, for a body of many MiB, the body streamed
//! behind it in chunks made from its description, never held whole. A
//! decimal length is written whole, and its body only once the client's
//! ready word came.

use std::io::Write as _;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use super::frame::{FrameCut, FrameOut, CHUNK, STREAM_ABOVE};
use super::link::Conn;
use super::stream::StreamStep;
use super::writer::Written;
use super::{fault, miss, StepError, StepResult};
use crate::conversations::session::Session;
use crate::conversations::transcript::{Event, FromBytes};
use crate::judge::expect::Want;
use crate::judge::expect_frame::{BodySpec, Framing};
use crate::judge::show;
use crate::model::cut::Cut;
use crate::model::level::Level;
use crate::model::timing::Deadline;

impl Session<'_> {
    pub(super) fn send_frame(
        &mut self,
        conn: Conn,
        frame: &FrameOut,
        cut: &FrameCut,
    ) -> StepResult {
        let placed;
        let frame = match self.peer.process() {
            Some(p) if frame.names_scratch() => {
                placed = frame.in_scratch(p.scratch());
                &placed
            }
            _ => frame,
        };
        if let Framing::Decimal { ready } = &frame.framing {
            return self.send_decimal(conn, frame, ready);
        }
        // The JSON alone is read with one receive: it goes in one write,
        // and the body only once the target read it, or answered it.
        let cut = match &frame.framing {
            Framing::BareJson {
                ready: Some(ready), ..
            } => return self.send_after(conn, frame, ready),
            Framing::BareJson { ready: None, .. } => &FrameCut::HeadApart,
            _ => cut,
        };
        let Some(head) = frame.head() else {
            return Err(fault(format!(
                "a body of {} bytes does not fit a {} prefix (a bug in the suite)",
                frame.body.len(),
                frame.prefix()
            )));
        };
        let head_cut = cut.cut(frame.prefix().width(), head.len());
        if frame.body.len() <= STREAM_ABOVE {
            let mut data = head;
            let len = usize::try_from(frame.body.len()).unwrap_or_default();
            let at = data.len();
            data.resize(at + len, 0);
            frame.body.fill(0, &mut data[at..]);
            return self.run_stream(&StreamStep::Send {
                conn,
                data,
                cut: head_cut,
            });
        }
        // A bare JSON header is read before a body of many MiB is written:
        // one piece of a cut is not waited for once written.
        if let Framing::BareJson { ready: None, .. } = &frame.framing {
            self.run_stream(&StreamStep::Send {
                conn,
                data: head,
                cut: Cut::Whole,
            })?;
            self.settle();
            return self.stream_body(conn, Vec::new(), frame.body.clone());
        }
        // A whole frame's head goes out with the body's first chunk; a cut
        // head is written (and confirmed read, piece by piece) first.
        let with_body = match cut {
            FrameCut::Whole => head,
            _ => {
                self.run_stream(&StreamStep::Send {
                    conn,
                    data: head,
                    cut: head_cut,
                })?;
                Vec::new()
            }
        };
        self.stream_body(conn, with_body, frame.body.clone())
    }

    /// A decimal frame: the digits in one write, the client's ready word
    /// waited for, then the body. The digits are never cut: the client
    /// reads them with one receive, and the server's wait for the ready
    /// word is what keeps the body out of it.
    fn send_decimal(&mut self, conn: Conn, frame: &FrameOut, ready: &str) -> StepResult {
        let digits = frame.body.len().to_string();
        self.run_stream(&StreamStep::Send {
            conn,
            data: digits.clone().into_bytes(),
            cut: Cut::Whole,
        })?;
        let word = Want::Bytes(ready.as_bytes().to_vec());
        self.expect(conn, &word, Level::Must).map_err(|e| match e {
            StepError::Missed { level, detail, .. } => miss(
                level,
                format!(
                    "the harness sent the length {digits} and waited for the client's ready \
                     word {} before the body: {detail}",
                    show::quoted(ready.as_bytes(), 24)
                ),
            ),
            fault => fault,
        })?;
        self.send_body(conn, frame)
    }

    /// A bare JSON header in one write, the target's `ready` answer waited
    /// for, then the body.
    fn send_after(&mut self, conn: Conn, frame: &FrameOut, ready: &[u8]) -> StepResult {
        self.run_stream(&StreamStep::Send {
            conn,
            data: frame.header(),
            cut: Cut::Whole,
        })?;
        let word = Want::Bytes(ready.to_vec());
        self.expect(conn, &word, Level::Must).map_err(|e| match e {
            StepError::Missed { level, detail, .. } => miss(
                level,
                format!(
                    "the harness sent the header and waited for the answer {} before the \
                     body: {detail}",
                    show::quoted(ready, 24)
                ),
            ),
            fault => fault,
        })?;
        self.send_body(conn, frame)
    }

    /// A frame's body alone, once its head was answered: in one write
    /// when small, streamed otherwise.
    fn send_body(&mut self, conn: Conn, frame: &FrameOut) -> StepResult {
        if frame.body.len() <= STREAM_ABOVE {
            let mut data = vec![0; usize::try_from(frame.body.len()).unwrap_or_default()];
            frame.body.fill(0, &mut data);
            return self.run_stream(&StreamStep::Send {
                conn,
                data,
                cut: Cut::Whole,
            });
        }
        self.stream_body(conn, Vec::new(), frame.body.clone())
    }

    /// Writes `body` after `head` on `conn` in a thread of its own, once
    /// any writer of the head is done: blocking writes, each allowed the
    /// reply deadline to make progress (a client that stops reading stops
    /// it), the whole as long as the body's bytes earn at the slowest pace
    /// allowed, as for an answer the harness reads.
    fn stream_body(&mut self, conn: Conn, head: Vec<u8>, body: BodySpec) -> StepResult {
        let stall = self.timing.deadline(Deadline::Reply);
        let bound = stall
            + self
                .timing
                .earned(usize::try_from(body.len()).unwrap_or(usize::MAX));
        let transcript = self.transcript.clone();
        let link = self.link(conn)?;
        let head_writer = link.writer.take();
        let before = link.sent;
        let watch = link.watch.take();
        let mut stream = link
            .stream
            .try_clone()
            .map_err(|e| fault(format!("could not start writing: {e}")))?;
        let record = move |event: Event| {
            if let Ok(mut t) = transcript.lock() {
                t.record(Some(conn), event);
            }
        };
        link.writer = Some(thread::spawn(move || {
            let mut written = Written {
                total: before,
                watch,
            };
            if let Some(h) = head_writer {
                if let Ok(w) = h.join() {
                    written = w;
                }
            }
            let _ = stream.set_write_timeout(Some(stall));
            let started = Instant::now();
            let len = body.len();
            let chunks = Chunks::start(body);
            let mut offset = 0u64;
            let mut head = head;
            record(Event::note(format!(
                "the body's {len} bytes follow in writes of {CHUNK} bytes, recorded as one \
                 line when done"
            )));
            let stopped = loop {
                if offset >= len {
                    break None;
                }
                if started.elapsed() > bound {
                    break Some(format!(
                        "it took longer than the {:.1}s a body of its length is given",
                        bound.as_secs_f64()
                    ));
                }
                let Some((chunk, n)) = chunks.next() else {
                    break Some("the body could not be made".to_string());
                };
                let r = if head.is_empty() {
                    stream.write_all(&chunk[..n])
                } else {
                    // The head and the first chunk in one write.
                    head.extend_from_slice(&chunk[..n]);
                    let r = stream.write_all(&head);
                    if r.is_ok() {
                        record(Event::wrote(&head));
                        written.total += (head.len() - n) as u64;
                    }
                    head = Vec::new();
                    r
                };
                chunks.give_back(chunk);
                if let Err(e) = r {
                    break Some(format!("a write failed: {e}"));
                }
                offset += n as u64;
                written.total += n as u64;
            };
            drop(chunks);
            let secs = started.elapsed().as_secs_f64();
            match stopped {
                // No digest on the way: the body is described (a seed or
                // a pattern), so its bytes are known again from the step.
                None => record(Event::note(format!(
                    "wrote the body: {len} bytes in {secs:.3}s"
                ))),
                Some(why) => record(Event::note(format!(
                    "the body stopped after {offset} of its {len} bytes ({secs:.1}s): {why}"
                ))),
            }
            written
        }));
        Ok(())
    }
}

/// A body's bytes made a chunk ahead of the writes, in a thread of its
/// own: making a seeded chunk costs about a third of writing it to
/// loopback, and in line it would slow every upload by that much.
struct Chunks {
    full: Option<mpsc::Receiver<(Vec<u8>, usize)>>,
    empty: Option<mpsc::Sender<Vec<u8>>>,
    maker: Option<thread::JoinHandle<()>>,
}

impl Chunks {
    /// Chunks in flight: one being written, one made, one being made.
    const AHEAD: usize = 3;

    fn start(body: BodySpec) -> Chunks {
        let (full_tx, full) = mpsc::sync_channel(Chunks::AHEAD);
        let (empty, empty_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..Chunks::AHEAD {
            let _ = empty.send(vec![0u8; CHUNK]);
        }
        let maker = thread::spawn(move || {
            let mut offset = 0u64;
            while offset < body.len() {
                // Either channel closed: the writer stopped.
                let Ok(mut chunk) = empty_rx.recv() else {
                    return;
                };
                let n = body.fill(offset, &mut chunk);
                offset += n as u64;
                if full_tx.send((chunk, n)).is_err() {
                    return;
                }
            }
        });
        Chunks {
            full: Some(full),
            empty: Some(empty),
            maker: Some(maker),
        }
    }

    /// The next chunk and how many of its bytes are the body's.
    fn next(&self) -> Option<(Vec<u8>, usize)> {
        self.full.as_ref()?.recv().ok()
    }

    /// A written chunk, to be filled again.
    fn give_back(&self, chunk: Vec<u8>) {
        if let Some(empty) = &self.empty {
            let _ = empty.send(chunk);
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        // With both channels closed the maker ends at its next step,
        // whether it waits for a chunk to fill or for room to put one.
        self.full = None;
        self.empty = None;
        if let Some(m) = self.maker.take() {
            let _ = m.join();
        }
    }
}
