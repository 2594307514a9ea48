//! What the target has read of what the harness wrote, from the kernel.
//!
//! Both ends of a loopback connection are on this machine, so the kernel's
//! socket diagnostics show the target's end of every connection the harness
//! holds: how many bytes it has received (`tcpi_bytes_received`) and how
//! many of those its program has not read yet (the receive queue). When the
//! first equals what the harness wrote and the second is zero, the target
//! has read everything: a piece written now lands in an empty queue and
//! its next receive returns that piece alone. Where the kernel does not
//! show the target's end (a `--target` on another machine, or in a network
//! namespace the harness is not in), cuts fall back to pauses of time and
//! say so.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::kernel::sockdiag::{Diag, Found};
use crate::kernel::tcpsock::TcpState;
use crate::model::timing::Timing;

/// What the kernel shows of the target's end of a connection, measured
/// against the bytes the harness wrote on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// It has received and read every byte the harness wrote.
    ReadAll,
    /// Some bytes are still on their way or wait unread in its queue.
    Behind,
    /// Its program closed the socket (or exited): what it has not read it
    /// never will.
    Closed,
    /// The kernel does not show it.
    Unseen(Unseen),
}

/// Why the kernel's view of the target's end is not available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unseen {
    /// No socket with the connection's addresses in the harness's network
    /// namespace: the target is on another machine or in another namespace.
    NotInNamespace,
    /// The kernel's `tcp_info` does not count bytes received (before 4.1).
    ShortTcpInfo,
    /// The kernel's socket diagnostics could not be asked.
    DiagUnavailable,
}

impl fmt::Display for Unseen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unseen::NotInNamespace => "the kernel's view of the target's socket is not available",
            Unseen::ShortTcpInfo => "the kernel does not count the bytes the target received",
            Unseen::DiagUnavailable => "the kernel's socket diagnostics cannot be asked",
        })
    }
}

/// The harness's question to the kernel about one connection.
pub(crate) struct Watch {
    diag: Option<Diag>,
    /// The target's end of the connection.
    target: Option<SocketAddr>,
    /// The harness's end.
    harness: Option<SocketAddr>,
    /// Whether the kernel showed the target's end once: gone afterwards,
    /// it was closed (a reset, or the last close of a closed socket).
    seen: bool,
}

impl Watch {
    /// A watch on the other end of `stream`. The kernel answers about the
    /// network namespace of the thread that makes the watch: make it on
    /// the thread that made the connection.
    pub(crate) fn new(stream: &TcpStream) -> Watch {
        Watch {
            diag: Diag::open().ok(),
            target: stream.peer_addr().ok(),
            harness: stream.local_addr().ok(),
            seen: false,
        }
    }

    /// A watch on a connection the kernel does not show: as for a target
    /// on another machine.
    #[cfg(test)]
    pub(crate) fn out_of_sight(stream: &TcpStream) -> Watch {
        Watch {
            target: Some(SocketAddr::from(([127, 0, 0, 1], 1))),
            ..Watch::new(stream)
        }
    }

    /// What the kernel shows now, given that the harness wrote `written`
    /// bytes on the connection so far.
    ///
    /// The kernel reads a socket's queue length without the socket's lock
    /// and its `tcp_info` with it, one after the other: an answer can pair
    /// a queue read before the last piece was taken in (empty) with a byte
    /// count read after (all received), and the piece would then be called
    /// read while it waits in the queue (seen twice in ten runs of the
    /// split test with two busy loops). So once an answer shows every byte
    /// received, a second question reads the queue after it; taking the
    /// lock also waits for a receive the target is in the middle of, so an
    /// empty queue then means its receive call has returned.
    pub(crate) fn view(&mut self, written: u64) -> View {
        match self.look(written) {
            View::ReadAll => self.look(written),
            other => other,
        }
    }

    /// One question to the kernel; [`View::ReadAll`] here means only that
    /// every byte was received and the queue looked empty.
    fn look(&mut self, written: u64) -> View {
        let (Some(diag), Some(target), Some(harness)) =
            (self.diag.as_mut(), self.target, self.harness)
        else {
            return View::Unseen(Unseen::DiagUnavailable);
        };
        match diag.connection(target, harness) {
            Ok(Found::Socket(c)) => {
                self.seen = true;
                // A connection not yet accepted has no inode either, but
                // is established: its program will read it once it
                // accepts. One that left those states without an inode
                // was closed by its program.
                let open = [
                    TcpState::Established,
                    TcpState::CloseWait,
                    TcpState::SynRecv,
                ]
                .iter()
                .any(|s| *s as u8 == c.state);
                let closed = (c.inode == 0 && !open)
                    || [TcpState::TimeWait, TcpState::Close]
                        .iter()
                        .any(|s| *s as u8 == c.state);
                match c.bytes_received {
                    _ if closed => View::Closed,
                    None => View::Unseen(Unseen::ShortTcpInfo),
                    Some(received) if received >= written && c.unread == 0 => View::ReadAll,
                    Some(_) => View::Behind,
                }
            }
            Ok(Found::Nothing) if self.seen => View::Closed,
            Ok(Found::Nothing) => View::Unseen(Unseen::NotInNamespace),
            Ok(Found::Refused(_)) | Err(_) => View::Unseen(Unseen::DiagUnavailable),
        }
    }

    /// Whether the target has nothing left to answer as far as the kernel
    /// shows: it has read what arrived, and everything it wrote is in the
    /// harness's queue (or its end is closed). `None` where the kernel
    /// does not show its end.
    pub(crate) fn answered(&mut self) -> Option<bool> {
        let (Some(diag), Some(target), Some(harness)) =
            (self.diag.as_mut(), self.target, self.harness)
        else {
            return None;
        };
        match diag.connection(target, harness) {
            Ok(Found::Socket(c)) => Some(c.unread == 0 && c.unacked == 0),
            Ok(Found::Nothing) if self.seen => Some(true),
            _ => None,
        }
    }

    /// Whether the kernel shows the target's end at all.
    pub(crate) fn visible(&mut self, written: u64) -> Result<(), Unseen> {
        match self.view(written) {
            View::Unseen(why) => Err(why),
            _ => Ok(()),
        }
    }

    /// Waits until the kernel shows that the target has read all `written`
    /// bytes, its end closed, or `within` passed; returns the last view and
    /// how long it waited. Looks at once, then at growing intervals from
    /// [`Timing::CONFIRM_FIRST_POLL`] up to [`Timing::CONFIRM_POLL`]: a
    /// target waiting in its receive reads a piece within tens of
    /// microseconds, a busy one within milliseconds.
    pub(crate) fn wait_read(&mut self, written: u64, within: Duration) -> (View, Duration) {
        let start = Instant::now();
        let mut interval = Timing::CONFIRM_FIRST_POLL;
        loop {
            let view = self.view(written);
            let waited = start.elapsed();
            if view != View::Behind || waited >= within {
                return (view, waited);
            }
            thread::sleep(interval.min(within - waited));
            interval = (interval * 2).min(Timing::CONFIRM_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    #[test]
    fn bytes_waiting_in_the_target_s_queue_are_behind_until_it_reads_them() {
        let (mut harness, mut target) = pair();
        let mut watch = Watch::new(&harness);
        assert_eq!(watch.view(0), View::ReadAll);
        harness.write_all(b"abc").unwrap();
        let (view, _) = watch.wait_read(3, Duration::from_millis(20));
        assert_eq!(view, View::Behind);
        target.read_exact(&mut [0u8; 3]).unwrap();
        let (view, _) = watch.wait_read(3, Duration::from_secs(2));
        assert_eq!(view, View::ReadAll);
    }

    #[test]
    fn the_harness_serving_a_client_sees_what_the_client_read() {
        let (mut client, mut harness) = pair();
        let mut watch = Watch::new(&harness);
        harness.write_all(b"HELLO").unwrap();
        assert_eq!(
            watch.wait_read(5, Duration::from_millis(20)).0,
            View::Behind
        );
        client.read_exact(&mut [0u8; 5]).unwrap();
        assert_eq!(watch.wait_read(5, Duration::from_secs(2)).0, View::ReadAll);
    }

    #[test]
    fn a_target_that_closed_its_end_is_closed_not_behind() {
        let (mut harness, target) = pair();
        let mut watch = Watch::new(&harness);
        assert_eq!(watch.view(0), View::ReadAll);
        drop(target);
        let _ = harness.write_all(b"abc");
        let (view, _) = watch.wait_read(3, Duration::from_secs(2));
        assert_eq!(view, View::Closed);
    }

    #[test]
    fn a_socket_the_kernel_does_not_show_is_unseen() {
        let (harness, target) = pair();
        let mut watch = Watch::out_of_sight(&harness);
        assert_eq!(watch.visible(0), Err(Unseen::NotInNamespace));
        drop(target);
    }
}
