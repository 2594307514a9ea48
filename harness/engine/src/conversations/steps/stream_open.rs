//! Opening stream connections: connecting to a server under test,
//! accepting a client under test on either loopback, and, when a connection
//! stays open, which of the target's processes holds it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::thread;

use super::link::{Conn, Link};
use super::{fault, miss, StepResult};
use crate::conversations::session::{Peer, Session};
use crate::conversations::transcript::Event;
use crate::kernel::net;
use crate::kernel::ports;
use crate::kernel::procfs;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Timing};
use crate::targets::starting::StartWatch;
use crate::targets::target::Process;

impl Session<'_> {
    /// Who keeps a connection open on the target's side, from the kernel:
    /// the process holding the target's end of it and, when that process
    /// started children, the one mistake that explains it (the check's hint
    /// gives the protocol's advice).
    pub(super) fn still_open_by(&mut self, harness_end: Option<SocketAddr>) -> String {
        let (Some(mine), Some(p)) = (harness_end, self.peer.process()) else {
            return String::new();
        };
        let tree = p.tree();
        let pids: Vec<i32> = tree.iter().filter(|s| !s.zombie).map(|s| s.pid).collect();
        let theirs = ports::sockets_on_peer(mine);
        let mut holders: Vec<i32> = theirs
            .iter()
            .flat_map(|s| ports::held_by(s.inode, &pids))
            .collect();
        holders.sort_unstable();
        holders.dedup();
        // A holder outside the target's tree (one that left its process
        // group) is still the one to name.
        if holders.is_empty() {
            holders = theirs
                .iter()
                .flat_map(|s| procfs::holders_anywhere(s.inode))
                .collect();
            holders.sort_unstable();
            holders.dedup();
        }
        let spins = spinning(&holders);
        let named = match holders.as_slice() {
            [] => return String::new(),
            [holder] => self.held_by_one(*holder, &tree),
            several => held_by_several(several, &tree),
        };
        format!("{named}{spins}")
    }

    /// Who keeps a connection open when one process of the target holds it.
    fn held_by_one(&mut self, holder: i32, tree: &[procfs::Stat]) -> String {
        let Some(p) = self.peer.process() else {
            return String::new();
        };
        let who = ports::Holder::of(holder);
        let children = p.children_seen(holder);
        let gone: Vec<i32> = children
            .iter()
            .copied()
            .filter(|c| !tree.iter().any(|s| s.pid == *c))
            .collect();
        match gone.as_slice() {
            [] if !children.is_empty() => format!(
                " in {who}, which started child processes: a parent that hands a connection \
                 to a child must close its own copy, or the client never sees the end"
            ),
            [] => format!(" in {who}"),
            children => format!(
                " in {who} (the parent) after {} (its child) exited: a parent that hands a \
                 connection to a child must close its own copy, or the client never sees the end",
                children
                    .iter()
                    .map(|c| format!("pid {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub(super) fn connect(&mut self, conn: Conn, small: bool) -> StepResult {
        let addr = match &*self.peer {
            Peer::Launched(l) => l.addr(),
            Peer::Remote(a) => *a,
            Peer::Client { .. } | Peer::DatagramClient { .. } => {
                return Err(fault(
                    "the suite connects to a client under test, but the harness plays the \
                     server in this role (a bug in the suite)",
                ))
            }
        };
        match net::connect(addr, small, self.timing.deadline(Deadline::Reply)) {
            Ok((stream, buffers)) => {
                let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
                if let Peer::Launched(l) = &mut *self.peer {
                    l.connected_from(port);
                }
                self.record(Some(conn), Event::Connected { local_port: port });
                if let Some(b) = buffers {
                    self.record(
                        Some(conn),
                        Event::note(format!(
                            "buffers read back: SO_RCVBUF {} SO_SNDBUF {}",
                            b.recv, b.send
                        )),
                    );
                }
                self.domains.stream.links.insert(conn, Link::new(stream));
                Ok(())
            }
            Err(e) => {
                let gone = self.target_gone();
                Err(miss(
                    Level::Must,
                    format!("could not connect to {addr}: {e}{gone}"),
                ))
            }
        }
    }

    pub(super) fn accept(&mut self, conn: Conn) -> StepResult {
        let v4_only = self.v4_only();
        if let Some(why) = &v4_only {
            self.record(Some(conn), Event::note(why.clone()));
        }
        let given = match &*self.peer {
            Peer::Client { process, .. } => process
                .given_file()
                .and_then(|path| std::fs::metadata(path).ok())
                .map_or(0, |m| m.len()),
            _ => 0,
        };
        let mut watch = StartWatch::with_file(self.timing, given);
        match self.accept_while(|process| watch.keep_waiting(process)) {
            Ok(Some((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                self.record(Some(conn), Event::Accepted { peer });
                self.domains.stream.links.insert(conn, Link::new(stream));
                Ok(())
            }
            Ok(None) => {
                let gone = self.target_gone();
                let v4_only = v4_only.map(|why| format!("\n{why}")).unwrap_or_default();
                Err(miss(
                    Level::Must,
                    format!(
                        "the client did not connect within {:.1}s{}{gone}{v4_only}",
                        watch.waited().as_secs_f64(),
                        watch.why_longer()
                    ),
                ))
            }
            Err(e) => Err(fault(format!("accepting the client failed: {e}"))),
        }
    }

    /// What to say when the harness listens on 127.0.0.1 alone: a client
    /// that connects to ::1 (or to `localhost` resolved to it) is refused.
    pub(super) fn v4_only(&self) -> Option<String> {
        let Peer::Client { listeners, .. } = &*self.peer else {
            return None;
        };
        listeners.v6_absent().map(|e| {
            format!(
                "listening on 127.0.0.1 only: this machine has no IPv6 loopback ({e}); \
                 a client that connects to ::1, or to localhost resolved to ::1, is refused"
            )
        })
    }

    /// Accepts the next connection on either loopback, polling so a client
    /// that exits early is noticed; `None` once `keep` says the wait is
    /// over or when the client has exited.
    pub(super) fn accept_while(
        &mut self,
        mut keep: impl FnMut(&mut Process) -> bool,
    ) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        let Peer::Client { listeners, process } = &mut *self.peer else {
            return Err(io::Error::other("only a client connects to the harness"));
        };
        let mut last_try = false;
        loop {
            if let Some(accepted) = listeners.accept()? {
                return Ok(Some(accepted));
            }
            if last_try || !keep(process) {
                return Ok(None);
            }
            // A client that connected and then exited left its connection
            // in the backlog: one more accept finds it.
            last_try = process.exited().is_some();
            if !last_try {
                thread::sleep(Timing::POLL);
            }
        }
    }
}

/// Who keeps a connection open when several processes hold it: each is
/// named, and a parent holding it beside its child is told to close its copy.
fn held_by_several(holders: &[i32], tree: &[procfs::Stat]) -> String {
    let parent_of = |pid: i32| tree.iter().find(|s| s.pid == pid).map(|s| s.ppid);
    let names: Vec<String> = holders
        .iter()
        .map(|&h| ports::Holder::of(h).to_string())
        .collect();
    let forked = holders
        .iter()
        .any(|&h| parent_of(h).is_some_and(|pp| holders.contains(&pp)));
    let all = names.join(" and ");
    if forked {
        format!(
            " in {all}, a parent and its child: a parent that hands a connection to a \
             child must close its own copy, or the client never sees the end"
        )
    } else {
        format!(" in {all}")
    }
}

/// The holders of a connection that spin, in words: never asleep in a few
/// samples a poll apart, as a loop that goes on after recv returned zero
/// bytes is. Nothing when none does.
fn spinning(holders: &[i32]) -> String {
    let mut awake: Vec<i32> = holders.to_vec();
    for _ in 0..3 {
        awake.retain(|&pid| procfs::stat(pid).is_some_and(|s| !s.sleeping && !s.zombie));
        thread::sleep(Timing::RECOUNT);
    }
    match awake.as_slice() {
        [] => String::new(),
        [_] if holders.len() == 1 => "; it spins (never asleep): a loop that goes on after \
                                       recv returned zero bytes never closes"
            .to_string(),
        busy => format!(
            "; {} spin{} (never asleep): a loop that goes on after recv returned zero bytes \
             never closes",
            busy.iter()
                .map(|p| format!("pid {p}"))
                .collect::<Vec<_>>()
                .join(" and "),
            if busy.len() == 1 { "s" } else { "" }
        ),
    }
}
