//! What the kernel says about a port: who listens on it (TCP) or is bound to
//! it (UDP), which of its connections wait for a close, what TIME_WAIT is
//! left on it, and which processes hold a socket. Answers come from the
//! kernel's socket dump (`/proc/net/tcp` and `/proc/net/udp` where that is
//! missing) and `/proc/PID/fd`, never from connecting or sending: a probe
//! connection is a real client to the target, and a probe datagram a real
//! request.

use std::fmt;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::kernel::procfs;
use crate::kernel::sockdiag;
use crate::kernel::tcpsock::{States, TcpSocket, TcpState};
use crate::kernel::udpsock::{canonical, UdpSocket};
use crate::model::timing::Timing;
use crate::model::transport::Transport;

/// Every TCP socket in `states`: from the kernel's socket dump, which
/// filters by state itself, or from the whole `/proc` table where the dump
/// is missing.
fn tcp_sockets(states: &[TcpState]) -> Vec<TcpSocket> {
    let wanted = States::of(states);
    sockdiag::sockets(wanted).unwrap_or_else(|_| {
        procfs::tcp_table()
            .into_iter()
            .filter(|s| wanted.contains(s.state))
            .collect()
    })
}

/// The sockets in `states` whose local port is `port`.
pub fn sockets_on(port: u16, states: &[TcpState]) -> Vec<TcpSocket> {
    tcp_sockets(states)
        .into_iter()
        .filter(|s| s.local.port() == port)
        .collect()
}

/// The listening sockets on `port`, IPv4 first.
pub fn listeners(port: u16) -> Vec<TcpSocket> {
    sockets_on(port, &[TcpState::Listen])
}

/// The UDP sockets bound to `port`, IPv4 first.
pub fn udp_bound(port: u16) -> Vec<UdpSocket> {
    udp_sockets()
        .into_iter()
        .filter(|s| s.local.port() == port)
        .collect()
}

/// Every UDP socket, its addresses as the harness reaches them: a
/// dual-stack socket (any Java program's) bound to 127.0.0.1 is listed on
/// `::ffff:127.0.0.1`, which is the IPv4 address, and only an IPv4 socket
/// reaches it with a datagram.
fn udp_sockets() -> Vec<UdpSocket> {
    sockdiag::udp_sockets()
        .unwrap_or_else(|_| procfs::udp_table())
        .into_iter()
        .map(|s| UdpSocket {
            local: canonical(s.local),
            remote: canonical(s.remote),
            ..s
        })
        .collect()
}

/// A socket that waits for peers on a port: a listening TCP socket, or a
/// UDP socket bound to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub local: SocketAddr,
    /// Names the socket in `/proc/PID/fd`; 0 when no process holds it.
    pub inode: u64,
}

/// The sockets waiting for peers on `port` over `transport`.
pub fn waiting_on(port: u16, transport: Transport) -> Vec<Waiting> {
    match transport {
        Transport::Stream => listeners(port)
            .into_iter()
            .map(|s| Waiting {
                local: s.local,
                inode: s.inode,
            })
            .collect(),
        Transport::Datagram => udp_bound(port)
            .into_iter()
            .map(|s| Waiting {
                local: s.local,
                inode: s.inode,
            })
            .collect(),
    }
}

/// The sockets of `pids` that wait for peers over `transport` on any
/// port: where a server that never got ready on its port listens instead.
pub fn waiting_of(pids: &[i32], transport: Transport) -> Vec<SocketAddr> {
    waiting_held_by(pids, transport)
        .into_iter()
        .map(|w| w.local)
        .collect()
}

/// The sockets `pids` hold that wait for peers over `transport`, on any
/// port: listening TCP sockets, or bound UDP sockets. Their inodes come from the processes'
/// descriptors, matched against the calling thread's namespace, so a
/// check's private loopback shows its target's sockets alone.
pub fn waiting_held_by(pids: &[i32], transport: Transport) -> Vec<Waiting> {
    let held: std::collections::BTreeSet<u64> = pids
        .iter()
        .flat_map(|&p| procfs::socket_inodes(p))
        .collect();
    if held.is_empty() {
        return Vec::new();
    }
    let all: Vec<Waiting> = match transport {
        Transport::Stream => tcp_sockets(&[TcpState::Listen])
            .into_iter()
            .map(|s| Waiting {
                local: s.local,
                inode: s.inode,
            })
            .collect(),
        Transport::Datagram => udp_sockets()
            .into_iter()
            .map(|s| Waiting {
                local: s.local,
                inode: s.inode,
            })
            .collect(),
    };
    all.into_iter()
        .filter(|w| held.contains(&w.inode))
        .collect()
}

/// The socket a server that chose its own port serves on, of those it
/// holds waiting for peers: one on loopback or on every address (which
/// the harness reaches on loopback) before one on another interface's
/// address, and of those the one it made first (the lowest inode), which
/// is its main socket when it opens others later. None when it holds none.
pub fn served_on(held: &[Waiting]) -> Option<Waiting> {
    held.iter()
        .min_by_key(|w| {
            let ip = w.local.ip();
            let reachable = ip.is_loopback()
                || ip.is_unspecified()
                || matches!(ip, std::net::IpAddr::V6(v6)
                    if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback() || v4.is_unspecified()));
            (!reachable, w.inode)
        })
        .copied()
}

/// A process of the machine, as a student would recognise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub command: Option<String>,
}

impl Holder {
    pub fn of(pid: i32) -> Holder {
        Holder {
            pid,
            command: procfs::cmdline(pid),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Some(c) => write!(f, "pid {} (`{c}`)", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

/// Whoever holds the listening sockets on `port`, looked up across the
/// whole machine: for naming a stale instance or another program.
pub fn listener_holders(port: u16) -> Vec<Holder> {
    holders(port, Transport::Stream)
}

/// Whoever holds the sockets waiting on `port` over `transport`, looked up
/// across the whole machine.
pub fn holders(port: u16, transport: Transport) -> Vec<Holder> {
    let mut pids: Vec<i32> = waiting_on(port, transport)
        .iter()
        .filter(|s| s.inode != 0)
        .flat_map(|s| procfs::holders_anywhere(s.inode))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.into_iter().map(Holder::of).collect()
}

/// Says who holds `port`, for an error message.
pub fn describe_holders(port: u16, transport: Transport, holders: &[Holder]) -> String {
    match holders {
        [] => format!(
            "something else is {} port {port} (a process this user cannot see)",
            transport.ready_words()
        ),
        [one] => format!("port {port} is already in use by {one}"),
        many => format!(
            "port {port} is already in use by {}",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The target's side of a connection whose harness side is `harness_end`.
pub fn sockets_on_peer(harness_end: SocketAddr) -> Vec<TcpSocket> {
    tcp_sockets(&[
        TcpState::Established,
        TcpState::CloseWait,
        TcpState::FinWait1,
        TcpState::FinWait2,
    ])
    .into_iter()
    .filter(|s| s.remote == harness_end)
    .collect()
}

/// A connection from the harness to a target's port, as the kernel shows
/// both of its ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The target's end: local port `port`.
    pub theirs: TcpSocket,
    /// The state of the harness's end; `None` once it is gone (closed with
    /// a reset, or closed and done).
    pub ours: Option<TcpState>,
}

impl Connection {
    /// Whether the harness ended its side and the target has not yet been
    /// told: its end is still established while the harness's FIN or reset
    /// waits to be processed (on a loaded machine the kernel may leave that
    /// to a thread of its own that waits for a core like any other).
    pub fn end_on_its_way(&self) -> bool {
        self.theirs.state == TcpState::Established && self.ours != Some(TcpState::Established)
    }
}

/// The target's open ends on `port` of the harness's connections (the
/// harness's ports are `ours`), each with the state of the harness's end.
pub fn connections_on(port: u16, ours: &[u16]) -> Vec<Connection> {
    use TcpState::*;
    let all = tcp_sockets(&[
        Established,
        SynRecv,
        FinWait1,
        FinWait2,
        CloseWait,
        LastAck,
        Closing,
        TimeWait,
    ]);
    all.iter()
        .filter(|s| {
            s.local.port() == port
                && ours.contains(&s.remote.port())
                && matches!(s.state, Established | CloseWait)
        })
        .map(|theirs| Connection {
            theirs: *theirs,
            ours: all
                .iter()
                .find(|o| o.local == theirs.remote && o.remote == theirs.local)
                .map(|o| o.state),
        })
        .collect()
}

/// The state of the TCP socket `inode`, if the kernel lists it.
pub fn socket_state(inode: u64) -> Option<TcpState> {
    use TcpState::*;
    let every = [
        Established,
        SynSent,
        SynRecv,
        FinWait1,
        FinWait2,
        Close,
        CloseWait,
        LastAck,
        Listen,
        Closing,
    ];
    tcp_sockets(&every)
        .iter()
        .find(|s| s.inode == inode)
        .map(|s| s.state)
}

/// The inodes of every TCP socket in `state`.
pub fn inodes_in(state: TcpState) -> std::collections::BTreeSet<u64> {
    tcp_sockets(&[state])
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| s.inode)
        .collect()
}

/// Which of `pids` hold the socket `inode`.
pub fn held_by(inode: u64, pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .copied()
        .filter(|&p| procfs::socket_inodes(p).contains(&inode))
        .collect()
}

/// The TIME_WAIT left on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWait {
    pub count: usize,
    /// How long until the last of them ends.
    pub longest: Duration,
}

impl fmt::Display for TimeWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.count == 1 { "" } else { "s" };
        write!(
            f,
            "{} connection{s} on the port in TIME_WAIT for up to {}s more",
            self.count,
            self.longest.as_secs() + 1
        )
    }
}

/// The connections in TIME_WAIT on the local side `port`, if any: the
/// port's side closed first, and the kernel keeps the port for about a
/// minute. A server without `SO_REUSEADDR` cannot bind it meanwhile.
pub fn time_wait(port: u16) -> Option<TimeWait> {
    let tw = sockets_on(port, &[TcpState::TimeWait]);
    (!tw.is_empty()).then(|| TimeWait {
        count: tw.len(),
        longest: Duration::from_millis(u64::from(tw.iter().map(|s| s.timer_ms).max().unwrap_or(0))),
    })
}

/// Ends the TIME_WAIT that connections from the harness left on the
/// target's `port` (their remote ports are in `ours`), so the next instance
/// of a server without `SO_REUSEADDR` can bind it at once. Call it only
/// when nothing listens on the port. Returns how many ended.
///
/// How: a SYN from the same address and port reaches the TIME_WAIT socket,
/// which answers with an ACK for the old connection; the harness's kernel
/// answers that with a reset, and Linux ends a TIME_WAIT socket on an
/// in-window reset (`net.ipv4.tcp_rfc1337` = 0, its default). Measured on
/// loopback: gone 2.5 ms after the SYN. With the sysctl at 1 the TIME_WAIT
/// stays and the port is free again after about a minute.
///
/// When the two closes crossed, the harness's port is in TIME_WAIT too:
/// its connections set `SO_REUSEADDR`, so the knock binds it all the same,
/// and the kernel reuses the harness's own TIME_WAIT for the knock
/// (`net.ipv4.tcp_tw_reuse`, 2 by default, allows it on loopback for a
/// bound port). Measured: the target's TIME_WAIT gone in every case. A
/// knock cannot be made when another program's socket without
/// `SO_REUSEADDR` holds the harness's old port towards some other peer.
pub fn clear_time_wait(port: u16, ours: &[u16]) -> usize {
    let mine: Vec<TcpSocket> = sockets_on(port, &[TcpState::TimeWait])
        .into_iter()
        .filter(|s| s.remote.ip().is_loopback() && ours.contains(&s.remote.port()))
        .collect();
    if mine.is_empty() {
        return 0;
    }
    let knocks: Vec<Socket> = mine
        .iter()
        .filter_map(|s| knock(s.remote, s.local).ok())
        .collect();
    let give_up = Instant::now() + Timing::TIME_WAIT_CLEAR;
    let left = |ours: &[TcpSocket]| {
        sockets_on(port, &[TcpState::TimeWait])
            .iter()
            .filter(|s| {
                ours.iter()
                    .any(|o| o.remote == s.remote && o.local == s.local)
            })
            .count()
    };
    let mut remaining = left(&mine);
    while remaining > 0 && Instant::now() < give_up {
        thread::sleep(Timing::FAST_POLL);
        remaining = left(&mine);
    }
    for k in knocks {
        // The knocking socket is still trying to connect: drop it with a
        // reset of its own so it leaves nothing behind either.
        let _ = k.set_linger(Some(Duration::ZERO));
    }
    mine.len() - remaining
}

/// Sends a SYN from `from` to `to` without waiting for an answer.
fn knock(from: SocketAddr, to: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(from), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.bind(&from.into())?;
    s.set_nonblocking(true)?;
    match s.connect(&to.into()) {
        Ok(()) => Ok(s),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(s),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    /// A connection whose server side closed first, both ends closed: the
    /// server's port is left in TIME_WAIT. Returns the port and the
    /// client's port.
    fn time_wait_left() -> (u16, u16) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let from = client.local_addr().unwrap().port();
        let (server, _) = listener.accept().unwrap();
        drop(server);
        drop(listener);
        // The client reads the server's end before it closes its own side,
        // so the server's side is the one left in TIME_WAIT.
        let mut client = client;
        let _ = std::io::Read::read(&mut client, &mut [0u8; 1]);
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(2);
        while time_wait(port).is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        (port, from)
    }

    /// Binds as a server without `SO_REUSEADDR` does (std's listener sets
    /// it on Unix).
    fn bind_without_reuse(port: u16) -> std::io::Result<Socket> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
        Ok(s)
    }

    #[test]
    fn a_server_that_closed_first_leaves_time_wait_that_blocks_a_plain_bind() {
        let (port, _) = time_wait_left();
        let tw = time_wait(port).expect("TIME_WAIT on the server's port");
        assert_eq!(tw.count, 1);
        assert!(tw.longest > Duration::from_secs(30), "{tw:?}");
        assert!(bind_without_reuse(port).is_err());
    }

    #[test]
    fn clearing_the_harness_s_own_time_wait_frees_the_port() {
        let (port, from) = time_wait_left();
        assert_eq!(clear_time_wait(port, &[from]), 1);
        assert_eq!(time_wait(port), None);
        assert!(bind_without_reuse(port).is_ok());
    }

    #[test]
    fn time_wait_of_other_peers_is_left_alone() {
        let (port, from) = time_wait_left();
        assert_eq!(clear_time_wait(port, &[from.wrapping_add(1)]), 0);
        assert!(time_wait(port).is_some());
    }

    fn target_end(state: TcpState) -> TcpSocket {
        TcpSocket {
            state,
            local: "127.0.0.1:9000".parse().unwrap(),
            remote: "127.0.0.1:40000".parse().unwrap(),
            inode: 1,
            timer_ms: 0,
        }
    }

    #[test]
    fn a_closed_harness_end_is_on_its_way_until_the_target_s_end_leaves_established() {
        let open = |theirs, ours| Connection {
            theirs: target_end(theirs),
            ours,
        };
        use TcpState::*;
        assert!(open(Established, Some(FinWait1)).end_on_its_way());
        assert!(open(Established, None).end_on_its_way());
        assert!(!open(Established, Some(Established)).end_on_its_way());
        assert!(!open(CloseWait, Some(FinWait2)).end_on_its_way());
    }

    #[test]
    fn the_target_s_end_of_a_connection_is_paired_with_the_harness_s() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let ours = c.local_addr().unwrap().port();
        let (_s, _) = l.accept().unwrap();
        let found = connections_on(port, &[ours]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].ours, Some(TcpState::Established));
        assert!(connections_on(port, &[ours.wrapping_add(1)]).is_empty());
    }

    #[test]
    fn the_holder_of_a_listener_is_named() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        let holders = listener_holders(port);
        assert_eq!(holders.iter().map(|h| h.pid).collect::<Vec<_>>(), vec![me]);
        assert!(describe_holders(port, Transport::Stream, &holders).contains(&format!("pid {me}")));
    }

    #[test]
    fn a_bound_udp_socket_waits_on_its_port_with_its_inode() {
        let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        let found = waiting_on(port, Transport::Datagram);
        assert_eq!(found.len(), 1);
        let me = std::process::id() as i32;
        assert_eq!(held_by(found[0].inode, &[me]), vec![me]);
        assert_eq!(holders(port, Transport::Datagram)[0].pid, me);
    }

    #[test]
    fn a_dual_stack_udp_socket_on_ipv4_loopback_waits_on_the_ipv4_address() {
        // What a Java DatagramSocket bound to 127.0.0.1 is.
        let Ok(socket) = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)) else {
            return;
        };
        socket.set_only_v6(false).unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:0".parse().unwrap();
        socket.bind(&mapped.into()).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        let found = waiting_on(port, Transport::Datagram);
        assert_eq!(
            found.iter().map(|w| w.local).collect::<Vec<_>>(),
            vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))]
        );
    }

    #[test]
    fn a_tcp_listener_is_not_a_bound_udp_socket_nor_the_reverse() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let tcp_port = l.local_addr().unwrap().port();
        assert!(waiting_on(tcp_port, Transport::Datagram).is_empty());
        let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let udp_port = u.local_addr().unwrap().port();
        assert!(waiting_on(udp_port, Transport::Stream).is_empty());
    }

    #[test]
    fn the_udp_table_of_proc_lists_a_bound_socket_with_its_inode() {
        let u = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = u.local_addr().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&u);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let row = procfs::udp_table()
            .into_iter()
            .find(|s| s.local == addr)
            .expect("listed in /proc/thread-self/net/udp");
        assert_eq!(link.to_string_lossy(), format!("socket:[{}]", row.inode));
    }

    fn waiting(addr: &str, inode: u64) -> Waiting {
        Waiting {
            local: addr.parse().unwrap(),
            inode,
        }
    }

    #[test]
    fn a_server_that_chose_its_port_is_reached_where_loopback_reaches_it_first() {
        // Bound first on another interface's address, then on every address.
        let held = [waiting("192.0.2.7:9000", 10), waiting("0.0.0.0:8080", 12)];
        assert_eq!(served_on(&held), Some(held[1]));
        let held = [waiting("192.0.2.7:9000", 10), waiting("[::1]:8081", 14)];
        assert_eq!(served_on(&held), Some(held[1]));
        let held = [
            waiting("[::ffff:127.0.0.1]:8082", 15),
            waiting("192.0.2.7:1", 3),
        ];
        assert_eq!(served_on(&held), Some(held[0]));
    }

    #[test]
    fn of_several_sockets_a_server_serves_on_the_one_it_made_first() {
        let held = [
            waiting("127.0.0.1:9001", 40),
            waiting("0.0.0.0:9000", 31),
            waiting("[::]:9000", 33),
        ];
        assert_eq!(served_on(&held), Some(held[1]));
    }

    #[test]
    fn a_socket_on_another_interface_is_served_on_when_it_is_the_only_one() {
        let held = [waiting("192.0.2.7:9000", 10)];
        assert_eq!(served_on(&held), Some(held[0]));
        assert_eq!(served_on(&[]), None);
    }

    #[test]
    fn the_sockets_a_process_holds_are_found_on_whatever_port() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let held = waiting_held_by(&[std::process::id() as i32], Transport::Stream);
        assert!(
            held.iter().any(|w| w.local == l.local_addr().unwrap()),
            "{held:?}"
        );
    }
}
