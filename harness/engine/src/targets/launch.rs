//! A server the harness starts: launched through the shell as part of its
//! run's fleet, waited for until a socket of its own process tree is ready
//! on its port (listening for TCP, bound for UDP; read from the kernel,
//! never by connecting or sending), restarted on the same port when a check
//! asks, and ended so that nothing of it reaches the next check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Instant;

use crate::kernel::netns::{self, Isolation};
use crate::kernel::ports::{self, TimeWait};
use crate::kernel::procfs;
use crate::model::timing::{Deadline, Timing};
use crate::model::transport::Transport;
use crate::targets::fleet::Fleet;
use crate::targets::target::{describe_exit, Launch, Process};

/// A server the harness started.
pub struct Launched {
    launch: Launch,
    /// The run's targets: a restarted instance joins them too.
    fleet: Fleet,
    process: Process,
    addr: SocketAddr,
    /// The harness's ports of every connection made to this server, so
    /// what they leave on its port can be told from anyone else's.
    client_ports: Vec<u16>,
}

/// Whose doing it is that a target could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The program's: it ended before listening, or never listened.
    Target,
    /// The machine's: the port is held by another process, or kept by
    /// TIME_WAIT the program did not choose; or the harness could not run
    /// the command at all.
    Environment,
}

/// Why a target could not be brought up.
#[derive(Debug)]
pub struct StartError {
    pub blame: Blame,
    pub message: String,
    /// Set when the program ended because its port could not be bound
    /// (another listener, or TIME_WAIT): what a restart check reports.
    pub bind_failed: bool,
    /// The last lines the program wrote to stderr.
    pub stderr_tail: Option<String>,
}

impl StartError {
    fn new(blame: Blame, message: String, bind_failed: bool, process: Option<&Process>) -> Self {
        let stderr_tail = process
            .map(|p| p.stderr().tail(12))
            .filter(|t| !t.trim().is_empty());
        StartError {
            blame,
            message,
            bind_failed,
            stderr_tail,
        }
    }

    /// The message followed by the program's stderr tail, for the end of a
    /// run.
    pub fn full(&self) -> String {
        match &self.stderr_tail {
            Some(t) => format!(
                "{}\nits stderr ends with:\n{}",
                self.message,
                indent(t, "  | ")
            ),
            None => self.message.clone(),
        }
    }
}

impl Launched {
    /// Starts the server as a target of `fleet` and waits, without
    /// connecting, until a socket of its own is ready on its port.
    pub fn start(launch: Launch, fleet: &Fleet, timing: &Timing) -> Result<Launched, StartError> {
        let mut process = fleet.spawn(&launch).map_err(|e| {
            StartError::new(
                Blame::Environment,
                format!("could not run `{}` through sh: {e}", launch.command_line()),
                false,
                None,
            )
        })?;
        let addr = wait_ready(&mut process, &launch, timing, None)?;
        Ok(Launched {
            launch,
            fleet: fleet.clone(),
            process,
            addr,
            client_ports: Vec::new(),
        })
    }

    /// Records the harness's port of a connection to this server.
    pub fn connected_from(&mut self, port: u16) {
        self.client_ports.push(port);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server is ready on: the one it was given, or the one
    /// found for a server that chose its own.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    pub fn command_line(&self) -> String {
        self.launch.command_line()
    }

    /// Kills the running instance and starts another on the same port (a
    /// server that chose its own is found again wherever it binds).
    pub fn restart(&mut self, timing: &Timing) -> Result<(), StartError> {
        self.process.kill();
        let mut process = self.fleet.spawn(&self.launch).map_err(|e| {
            StartError::new(
                Blame::Environment,
                format!("could not run `{}` again: {e}", self.launch.command_line()),
                false,
                None,
            )
        })?;
        let waited = wait_ready(&mut process, &self.launch, timing, Some(self.port()));
        self.process = process;
        self.addr = waited?;
        Ok(())
    }

    /// Waits, bounded, for the server to act on the end of a check: to
    /// close the connections the harness closed, or to exit if that is what
    /// it does. A server that crashes when its client leaves (still printing
    /// its traceback when the check's last step ends) is then seen to have
    /// crashed in this check, with its whole traceback. A correct server
    /// closes within a millisecond; a server that never closes, or spins, is
    /// left once its processes sleep or the deadline passes.
    ///
    /// A datagram server has no connections to close: it has acted on what
    /// it was sent once it has taken every datagram it is going to take.
    /// That is when every thread of it is asleep and its socket's receive
    /// queue is the same at two looks in a row: a thread woken by a datagram
    /// is runnable until it blocks again, so no thread is on its way to the
    /// queue. A server that handles one datagram at a time (asleep reading
    /// the reply it will type) leaves the next one queued; one with a
    /// receiving thread has taken it.
    pub fn settle(&mut self, timing: &Timing) {
        let deadline = Instant::now() + timing.deadline(Deadline::Settle);
        let port = self.port();
        let transport = self.launch.transport;
        let mut asleep_since: Option<Instant> = None;
        let mut asleep_with_queue: Option<u64> = None;
        for polls in 0u32.. {
            if self.process.exited().is_some() {
                // The pipes close as the last process ends; the tail is whole then.
                self.process
                    .stderr()
                    .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
                return;
            }
            if transport == Transport::Datagram {
                let bound = ports::udp_bound(port);
                if !bound.is_empty() {
                    let queued: u64 = bound.iter().map(|s| s.queued).sum();
                    let family = procfs::family_of(self.process.pid());
                    let asleep = procfs::threads_asleep(&family);
                    if asleep && asleep_with_queue == Some(queued) {
                        return;
                    }
                    asleep_with_queue = asleep.then_some(queued);
                }
            } else if !ports::waiting_on(port, transport).is_empty() {
                // The target's ends of the harness's connections: one in
                // CLOSE_WAIT has the harness's end and is the target's to
                // close; one still established whose harness end is closed
                // has that end on its way.
                let open = ports::connections_on(port, &self.client_ports);
                let on_its_way = open.iter().filter(|c| c.end_on_its_way()).count();
                let closing = open.len();
                // Asleep: blocked in accept or recv, as a server waiting for
                // its next client is; a process on its way out (closing its
                // sockets as it finalizes, printing a traceback) runs.
                let asleep = procfs::family_of(self.process.pid())
                    .iter()
                    .all(|s| s.zombie || s.sleeping);
                if closing == 0 && asleep {
                    return;
                }
                // A connection kept open by a server that is blocked, long
                // enough that it is not a pause on the way out. A server
                // asleep before the harness's end has reached it has not
                // yet had the chance to act on it (to crash as its client
                // leaves, say): its sleep counts only from then.
                let keeps_open = asleep && closing > 0 && on_its_way == 0;
                asleep_since = match (keeps_open, asleep_since) {
                    (false, _) => None,
                    (true, None) => Some(Instant::now()),
                    (true, since) => since,
                };
                if asleep_since.is_some_and(|t| t.elapsed() >= Timing::ASLEEP_FOR) {
                    return;
                }
            }
            // Not ready and not exited: on its way out.
            if Instant::now() >= deadline {
                return;
            }
            // A correct server closes within a fraction of a millisecond of
            // the harness's close: look again soon, then less often.
            thread::sleep(match polls {
                0..10 => Timing::FIRST_POLL,
                10..30 => Timing::FAST_POLL,
                _ => Timing::POLL,
            });
        }
    }

    /// Ends the server and what its connections with the harness left on
    /// its port, so the next instance binds it at once even without
    /// `SO_REUSEADDR`.
    pub fn end(&mut self) {
        self.process.kill();
        if self.launch.transport == Transport::Stream {
            ports::clear_time_wait(self.port(), &self.client_ports);
        }
    }
}

/// Waits until a socket held by the target's own process tree is ready on
/// its port: listening (TCP) or bound (UDP). A socket of any other process
/// (a stale instance, another program) is not the target: the harness keeps
/// waiting for the target's own, and names the other if the target ends or
/// never gets ready.
///
/// A server given no port ([`Launch::port`] is none) is ready once its
/// process tree holds such a socket on any port: the one it serves on
/// ([`ports::served_on`]). `before` is the port an earlier instance was
/// found on, which names what kept a restarted one from binding again.
fn wait_ready(
    process: &mut Process,
    launch: &Launch,
    timing: &Timing,
    before: Option<u16>,
) -> Result<SocketAddr, StartError> {
    let Some(port) = launch.port else {
        return wait_ready_anywhere(process, launch, timing, before);
    };
    let transport = launch.transport;
    let within = timing.deadline(Deadline::Listen);
    let deadline = Instant::now() + within;
    let mut polls = 0u32;
    loop {
        let found = ports::waiting_on(port, transport);
        if !found.is_empty() {
            // The root's descendants come from the kernel's child lists (a
            // few reads); the whole tree, which scans every process of the
            // machine, only when they do not hold it.
            let root = process.pid();
            let family: Vec<i32> = std::iter::once(root)
                .chain(procfs::descendants(root).into_iter().map(|(pid, _)| pid))
                .collect();
            let owned = |pids: &[i32]| {
                found
                    .iter()
                    .find(|s| s.inode != 0 && !ports::held_by(s.inode, pids).is_empty())
                    .map(|s| reachable(s.local))
            };
            if let Some(addr) = owned(&family) {
                return Ok(addr);
            }
            let tree: Vec<i32> = process.tree().iter().map(|s| s.pid).collect();
            if let Some(addr) = owned(&tree) {
                return Ok(addr);
            }
        }
        if let Some(status) = process.exited() {
            process
                .stderr()
                .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
            return Err(ended_before_ready(
                process,
                port,
                transport,
                describe_exit(status),
            ));
        }
        if Instant::now() >= deadline {
            let others = ports::holders(port, transport);
            if !found.is_empty() {
                return Err(StartError::new(
                    Blame::Environment,
                    format!(
                        "{}, not by the target; the target did not {} it within {:.1}s; \
                         stop that process or choose another port",
                        ports::describe_holders(port, transport, &others),
                        transport.ready_verb(),
                        within.as_secs_f64(),
                    ),
                    true,
                    Some(process),
                ));
            }
            let tree: Vec<i32> = process.tree().iter().map(|s| s.pid).collect();
            let elsewhere: Vec<String> = ports::waiting_of(&tree, transport)
                .iter()
                .map(ToString::to_string)
                .collect();
            let instead = match elsewhere.as_slice() {
                [] => String::new(),
                found => format!(
                    " (it is {} {} instead)",
                    transport.ready_words(),
                    found.join(", ")
                ),
            };
            return Err(StartError::new(
                Blame::Target,
                format!(
                    "the server did not {} port {port} within {:.1}s{instead}; if its port is \
                     written in the code, pass it with --port, or use {{port}} in the command",
                    transport.ready_verb(),
                    within.as_secs_f64(),
                ),
                false,
                Some(process),
            ));
        }
        // A compiled server is ready within a millisecond or two of its
        // start, an interpreted one after tens: look often at first.
        thread::sleep(match polls {
            0..20 => Timing::FIRST_POLL,
            20..40 => Timing::FAST_POLL,
            _ => Timing::POLL,
        });
        polls = polls.saturating_add(1);
    }
}

/// [`wait_ready`] for a server that chose its own port: the socket its
/// process tree holds, found on any port, with the same deadline and pace
/// as on a port given.
fn wait_ready_anywhere(
    process: &mut Process,
    launch: &Launch,
    timing: &Timing,
    before: Option<u16>,
) -> Result<SocketAddr, StartError> {
    let transport = launch.transport;
    let within = timing.deadline(Deadline::Listen);
    let deadline = Instant::now() + within;
    let mut polls = 0u32;
    loop {
        // The root's descendants come from the kernel's child lists; the
        // whole tree (a scan of every process) only at the deadline, for a
        // child that left the process group.
        let root = process.pid();
        let family: Vec<i32> = std::iter::once(root)
            .chain(procfs::descendants(root).into_iter().map(|(pid, _)| pid))
            .collect();
        if let Some(w) = ports::served_on(&ports::waiting_held_by(&family, transport)) {
            return Ok(reachable(w.local));
        }
        if let Some(status) = process.exited() {
            process
                .stderr()
                .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
            let how = describe_exit(status);
            return Err(match before {
                Some(port) => ended_before_ready(process, port, transport, how),
                None => StartError::new(
                    Blame::Target,
                    format!(
                        "the server ended ({how}) before {} any port (--port auto looks                          for the port it chooses)",
                        match transport {
                            Transport::Stream => "listening on",
                            Transport::Datagram => "binding UDP on",
                        }
                    ),
                    process.stderr().tail(40).contains("ddress already in use"),
                    Some(process),
                ),
            });
        }
        if Instant::now() >= deadline {
            let tree: Vec<i32> = process.tree().iter().map(|s| s.pid).collect();
            if let Some(w) = ports::served_on(&ports::waiting_held_by(&tree, transport)) {
                return Ok(reachable(w.local));
            }
            return Err(StartError::new(
                Blame::Target,
                format!(
                    "the server did not {} within {:.1}s (--port auto looks for the port \
                     it chooses); if it reads its port from its arguments, use {{port}} in \
                     the command instead of --port auto",
                    match transport {
                        Transport::Stream => "listen on any port",
                        Transport::Datagram => "bind any UDP port",
                    },
                    within.as_secs_f64(),
                ),
                false,
                Some(process),
            ));
        }
        thread::sleep(match polls {
            0..20 => Timing::FIRST_POLL,
            20..40 => Timing::FAST_POLL,
            _ => Timing::POLL,
        });
        polls = polls.saturating_add(1);
    }
}

/// Where the harness connects to reach a listener: its own address, or
/// IPv4 loopback for a wildcard one.
fn reachable(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, local.port())
}

/// Why a server that ended before it was ready did: the port taken by
/// another process or kept by TIME_WAIT is the machine's doing, anything
/// else the program's.
fn ended_before_ready(
    process: &Process,
    port: u16,
    transport: Transport,
    how: String,
) -> StartError {
    if !ports::waiting_on(port, transport).is_empty() {
        let holders = ports::holders(port, transport);
        return StartError::new(
            Blame::Environment,
            format!(
                "the server ended ({how}) without {}: {}; stop that process or \
                 choose another port",
                match transport {
                    Transport::Stream => "listening",
                    Transport::Datagram => "binding its port",
                },
                ports::describe_holders(port, transport, &holders)
            ),
            true,
            Some(process),
        );
    }
    let in_use = process.stderr().tail(40).contains("ddress already in use");
    let time_wait = match transport {
        Transport::Stream => ports::time_wait(port),
        Transport::Datagram => None,
    };
    match time_wait {
        Some(tw) => StartError::new(
            Blame::Environment,
            format!(
                "the server could not bind port {port} ({how}): {}; {}",
                time_wait_words(tw),
                rebind_advice(netns::in_effect(), tw),
            ),
            true,
            Some(process),
        ),
        None => StartError::new(
            Blame::Target,
            format!(
                "the server ended ({how}) before {} port {port}",
                match transport {
                    Transport::Stream => "listening on",
                    Transport::Datagram => "binding UDP",
                }
            ),
            in_use,
            Some(process),
        ),
    }
}

/// What to do about TIME_WAIT that kept a server from binding, as the
/// isolation in force explains it. With a private loopback per check the
/// TIME_WAIT cannot be an earlier check's: it is this check's own (the
/// restart check kills a server with a connection open on purpose), so
/// waiting and running again changes nothing. On the shared loopback it may
/// be left by an earlier check or another program, and passes.
fn rebind_advice(isolation: Isolation, tw: TimeWait) -> String {
    if isolation.is_private() {
        "each check has a loopback of its own, so this TIME_WAIT is the check's own, not \
         an earlier check's, and waiting to run again changes nothing: set SO_REUSEADDR on \
         the listening socket before bind()"
            .to_string()
    } else {
        format!(
            "set SO_REUSEADDR on the listening socket before bind(), or wait {}s and run again",
            tw.longest.as_secs() + 1
        )
    }
}

fn time_wait_words(tw: TimeWait) -> String {
    format!("{tw}, and a server without SO_REUSEADDR cannot bind the port until they end")
}

pub(crate) fn stderr_block(process: &Process) -> String {
    let tail = process.stderr().tail(12);
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\nits stderr ends with:\n{}", indent(&tail, "  | "))
    }
}

/// Prefixes every line of `text`.
pub fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::target::Workdir;

    fn server(code: &str, transport: Transport) -> Launch {
        Launch {
            command: format!("exec python3 -c '{code}' {{port}}"),
            port: Some(crate::kernel::net::free_port().unwrap()),
            stdin: false,
            transport,
            workdir: Workdir::Here,
            file: None,
            confine: None,
        }
    }

    const UDP_SERVER: &str = "import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((\"127.0.0.1\", int(sys.argv[1])))
time.sleep(30)";

    const TCP_SERVER: &str = "import socket, sys, time
s = socket.socket()
s.bind((\"127.0.0.1\", int(sys.argv[1])))
s.listen()
time.sleep(30)";

    #[test]
    fn time_wait_advice_fits_the_isolation_in_force() {
        let tw = TimeWait {
            count: 1,
            longest: std::time::Duration::from_secs(59),
        };
        for private in [Isolation::Namespace, Isolation::UserNamespace] {
            let advice = rebind_advice(private, tw);
            assert!(advice.contains("SO_REUSEADDR"), "{advice}");
            assert!(!advice.contains("wait 60s"), "{advice}");
            assert!(advice.contains("changes nothing"), "{advice}");
            assert!(advice.contains("the check's own"), "{advice}");
        }
        let shared = rebind_advice(Isolation::Shared, tw);
        assert!(shared.contains("SO_REUSEADDR"), "{shared}");
        assert!(shared.contains("wait 60s and run again"), "{shared}");
    }

    #[test]
    fn a_datagram_server_is_ready_once_its_socket_is_bound() {
        let launch = server(UDP_SERVER, Transport::Datagram);
        let port = launch.port.unwrap();
        let mut l = Launched::start(launch, &Fleet::new(), &Timing::default())
            .map_err(|e| e.full())
            .unwrap();
        assert_eq!(l.addr(), SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        l.end();
    }

    #[test]
    fn a_tcp_listener_does_not_make_a_datagram_server_ready() {
        let launch = server(TCP_SERVER, Transport::Datagram);
        let e = Launched::start(launch, &Fleet::new(), &Timing::new(0.1))
            .err()
            .expect("never bound a UDP socket");
        assert_eq!(e.blame, Blame::Target);
        assert!(e.message.contains("did not bind UDP port"), "{}", e.message);
    }

    #[test]
    fn a_stream_server_is_ready_once_it_listens() {
        let launch = server(TCP_SERVER, Transport::Stream);
        let mut l = Launched::start(launch, &Fleet::new(), &Timing::default())
            .map_err(|e| e.full())
            .unwrap();
        l.end();
    }
}
