//! Ending stream connections so that nothing of them outlives the check.
//!
//! The side of a TCP connection that closes first keeps its address in
//! TIME_WAIT for a minute, and when both sides close at the same instant
//! both do. On a port written in a server's code, or in a client's, that
//! would reach the next check or run on a shared loopback: a server
//! without `SO_REUSEADDR` could not bind it. So the harness ends its
//! connections in the order that leaves nothing there:
//!
//! - before it closes, it lets a target that is still running (on its way
//!   to closing, say, right after its reply) do so first, as the kernel
//!   shows it: two closes that cross are what leaves TIME_WAIT on both
//!   sides;
//! - once a conversation is over, a connection whose target end is closed
//!   (its FIN sent, no process holding it) is ended with a reset: a reset
//!   leaves no TIME_WAIT on either side, and the target has nothing left
//!   to act on;
//! - as a server, the harness ends a client under test first and then
//!   resets what it accepted, so its own port is never left in TIME_WAIT.
//!
//! An explicit `close` step stays a plain close: a check may depend on it
//! (the restart check leaves TIME_WAIT on the server's port on purpose).

use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Instant;

use super::link::{join_writer, Conn, Link};
use crate::conversations::session::{Peer, Session};
use crate::kernel::net;
use crate::kernel::ports;
use crate::kernel::procfs;
use crate::kernel::sockdiag::{Diag, Found};
use crate::kernel::tcpsock::{TcpSocket, TcpState};
use crate::model::timing::Timing;

/// Whether the target's end of a connection (`ends`, as the kernel lists
/// it) is closed by the target (its FIN sent) and held by no process:
/// nothing there can see how the harness's side ends.
fn target_end_abandoned(ends: &[TcpSocket]) -> bool {
    ends.iter()
        .any(|s| matches!(s.state, TcpState::FinWait1 | TcpState::FinWait2) && s.inode == 0)
}

impl Session<'_> {
    /// Ends one connection to a server under test. With `abort_if_closed`
    /// (the conversation is over), a connection the target already closed
    /// is reset instead of closed.
    pub(crate) fn end_link(&mut self, mut link: Link, abort_if_closed: bool) {
        if link.writer.as_ref().is_some_and(|w| !w.is_finished()) {
            // Unblocks a writer stuck on a target that stopped reading.
            let _ = link.stream.shutdown(Shutdown::Both);
        }
        join_writer(&mut link);
        let (Peer::Launched(l), Ok(mine)) = (&mut *self.peer, link.stream.local_addr()) else {
            return;
        };
        let pid = l.process().pid();
        let theirs = link.stream.peer_addr().ok();
        if target_closes_first(mine, theirs, pid) && abort_if_closed {
            let _ = net::reset(link.stream);
        }
        // Otherwise dropped here: a plain close.
    }

    /// Ends every connection once the conversation is over.
    pub(crate) fn close_all(&mut self) {
        // What arrived after a message, within its quiet moment, is judged
        // before anything ends (a missed step already decided the check).
        if !self.failed() {
            let conns: Vec<Conn> = self.domains.stream.links.keys().copied().collect();
            for conn in conns {
                self.judge_message_end(conn);
            }
        }
        let links = std::mem::take(&mut self.domains.stream.links);
        let strays = std::mem::take(&mut self.domains.stream.strays);
        if self.peer.is_client() {
            if !(links.is_empty() && strays.is_empty()) {
                // The client first: its end then closes with its process,
                // and a reset of the harness's end reaches no program that
                // could print it, and leaves nothing on the harness's port.
                let missed = self.failed();
                if let Some(p) = self.peer.process() {
                    // A client that missed may be on its way out (it closed
                    // its connection and is exiting): how it exits is
                    // evidence the hint speaks of, so it is given the time
                    // to, before it is ended.
                    if missed {
                        p.wait_exit(Timing::OUTPUT_CLOSE);
                    }
                    p.kill();
                }
            }
            for (_, mut link) in links {
                join_writer(&mut link);
                let _ = net::reset(link.stream);
            }
            for stream in strays {
                let _ = net::reset(stream);
            }
            return;
        }
        for (_, link) in links {
            self.end_link(link, true);
        }
    }
}

/// Waits, bounded, while a server still running may be closing its end of
/// the connection from `mine` on its own; returns whether it did (its end
/// closed and abandoned). A server asleep (blocked in recv, as one waiting
/// for its client's close is) is not waited for. `theirs`, the target's
/// address, lets each look ask the kernel for the one socket.
fn target_closes_first(mine: SocketAddr, theirs: Option<SocketAddr>, pid: i32) -> bool {
    let deadline = Instant::now() + Timing::CLOSE_FIRST;
    let mut diag = theirs.and_then(|_| Diag::open().ok());
    for polls in 0u32.. {
        let ends = target_ends(diag.as_mut(), mine, theirs);
        if target_end_abandoned(&ends) {
            return true;
        }
        // Gone (reset), or half-closed and still held: nothing to wait for.
        if !ends.iter().any(|s| s.state == TcpState::Established) {
            return false;
        }
        let running = procfs::family_of(pid)
            .iter()
            .any(|s| !(s.zombie || s.sleeping));
        if !running || Instant::now() >= deadline {
            return false;
        }
        thread::sleep(if polls < 10 {
            Timing::FIRST_POLL
        } else {
            Timing::FAST_POLL
        });
    }
    false
}

/// The target's end of the connection from `mine` to `theirs`, as the
/// kernel shows it: the lookup of that one socket, a hash lookup in the
/// kernel; where the kernel does not answer lookups, the sockets whose
/// peer is `mine`, from a listing of every socket.
fn target_ends(
    diag: Option<&mut Diag>,
    mine: SocketAddr,
    theirs: Option<SocketAddr>,
) -> Vec<TcpSocket> {
    let (Some(diag), Some(theirs)) = (diag, theirs) else {
        return ports::sockets_on_peer(mine);
    };
    match diag.connection(theirs, mine) {
        Ok(Found::Socket(c)) => TcpState::from_number(c.state)
            .map(|state| TcpSocket {
                state,
                local: theirs,
                remote: mine,
                inode: c.inode,
                timer_ms: 0,
            })
            .into_iter()
            .collect(),
        Ok(Found::Nothing) => Vec::new(),
        Ok(Found::Refused(_)) | Err(_) => ports::sockets_on_peer(mine),
    }
}
