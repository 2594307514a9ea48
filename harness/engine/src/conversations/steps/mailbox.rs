//! The harness's side of one datagram socket: the socket, the datagrams
//! received and not yet matched, and who sent the last one. The session
//! keeps one per socket of the conversation (`u1`, `u2`...); the datagram
//! steps work on them, as the stream steps work on [`Link`]s. When the
//! harness plays the server, `u1` is one port on both loopbacks: a mailbox
//! then holds two sockets, receives on either, and answers a client from
//! the one its last datagram arrived at.
//!
//! [`Link`]: super::link::Link

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::kernel::loopback::Bind;
use crate::kernel::udpsock::canonical;

pub use crate::model::names::Sock;

/// The largest UDP payload over IPv4: 65,535 less the IP and UDP headers.
pub const MAX_PAYLOAD: usize = 65_507;

/// What one receive keeps of a datagram. Larger than any IPv4 payload, so
/// a datagram is always kept whole; `MSG_TRUNC` makes the kernel report its
/// real length all the same.
const RECEIVE_SIZE: usize = 65_536;

/// The harness's socket buffers. The send buffer must take the largest
/// datagram in one send (the default, 212,992 bytes, does; this says so
/// whatever the machine's default); the receive buffer holds every reply
/// of a burst the checks send, with room to spare, and bounds what a
/// flooding target can make the harness hold.
const BUFFER: usize = 1 << 20;

/// How many received datagrams a mailbox keeps unmatched. A flooding target
/// costs this much memory and no more: later datagrams are counted and
/// dropped.
const KEPT: usize = 256;

/// One datagram as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// What was kept: the whole datagram.
    pub bytes: Vec<u8>,
    /// Its real length, as the kernel reported it.
    pub len: usize,
    pub from: SocketAddr,
    /// The harness's address it was sent to.
    pub to: SocketAddr,
}

/// The harness's side of one datagram socket.
pub(crate) struct Mailbox {
    /// One socket, or one per loopback on the same port; 127.0.0.1 first.
    sockets: Vec<UdpSocket>,
    /// Received and not yet matched, oldest first.
    pub(crate) queue: VecDeque<Datagram>,
    /// Datagrams dropped because the queue was full.
    pub(crate) dropped: usize,
    /// Who sent the last datagram received: a client under test, when the
    /// harness plays its server.
    pub(crate) last_sender: Option<SocketAddr>,
    /// Where the last datagram received arrived: what a client sends to.
    pub(crate) last_to: Option<SocketAddr>,
    /// When the last datagram was received.
    pub(crate) last_arrival: Option<Instant>,
    /// Where each receive lands, kept between receives: a datagram may be
    /// 64 KiB, and a flood brings thousands.
    scratch: Box<[MaybeUninit<u8>]>,
}

/// What the datagram domain keeps during a conversation: the harness's
/// side of each datagram socket.
#[derive(Default)]
pub(crate) struct DatagramState {
    pub(crate) mailboxes: BTreeMap<Sock, Mailbox>,
    /// The echoes observed for their length: what the target's receive
    /// takes, for the hints.
    pub(crate) echoes: Vec<crate::model::hint::EchoLength>,
}

impl Mailbox {
    /// A fresh socket on the loopback of `toward`'s family (127.0.0.1
    /// without one), on a port the kernel picks: an IPv4 socket cannot send
    /// to a server bound to ::1.
    pub(crate) fn open(toward: Option<SocketAddr>) -> io::Result<Mailbox> {
        let ip = match toward.map(|a| a.ip().to_canonical()) {
            Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        Ok(Mailbox::on(vec![bind(SocketAddr::new(ip, 0))?]))
    }

    /// A mailbox on sockets already bound (the harness's server socket on
    /// each loopback).
    pub(crate) fn on(sockets: Vec<UdpSocket>) -> Mailbox {
        Mailbox {
            sockets,
            queue: VecDeque::new(),
            dropped: 0,
            last_sender: None,
            last_to: None,
            last_arrival: None,
            scratch: vec![MaybeUninit::uninit(); RECEIVE_SIZE].into_boxed_slice(),
        }
    }

    /// The addresses it is bound to, 127.0.0.1 first.
    pub(crate) fn locals(&self) -> Vec<SocketAddr> {
        self.sockets
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.locals().into_iter().next()
    }

    /// Sends `data` to `to` from the socket of `to`'s family: a client
    /// under test gets its answer from the address it sent to.
    pub(crate) fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<usize> {
        let socket = self
            .sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == to.is_ipv4()))
            .unwrap_or(&self.sockets[0]);
        socket.send_to(data, to)
    }

    /// Receives one datagram into the queue, waiting at most until
    /// `deadline`; returns what arrived, or `None` at the deadline.
    pub(crate) fn receive(&mut self, deadline: Instant) -> io::Result<Option<Datagram>> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Some(ready) = self.ready(wait)? else {
            return Ok(None);
        };
        let socket = socket2::SockRef::from(&self.sockets[ready]);
        let got =
            socket.recv_from_with_flags(&mut self.scratch, libc::MSG_TRUNC | libc::MSG_DONTWAIT);
        let (len, from) = match got {
            Ok((len, from)) => (len, from),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None)
            }
            // A datagram the harness sent earlier met a closed port (ICMP
            // port unreachable): the target is not listening any more. The
            // caller words it.
            Err(e) => return Err(e),
        };
        let kept = len.min(RECEIVE_SIZE);
        // SAFETY: the kernel wrote `kept` bytes at the start of `scratch`.
        let bytes: Vec<u8> = self.scratch[..kept]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let from = address(&from);
        let to = self.sockets[ready]
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let datagram = Datagram {
            bytes,
            len,
            from,
            to,
        };
        self.last_sender = Some(from);
        self.last_to = Some(to);
        self.last_arrival = Some(Instant::now());
        if self.queue.len() < KEPT {
            self.queue.push_back(datagram.clone());
        } else {
            self.dropped += 1;
        }
        Ok(Some(datagram))
    }

    /// The index of a socket with a datagram (or an error) waiting, within
    /// `wait`; `None` when none has one by then.
    fn ready(&self, wait: Duration) -> io::Result<Option<usize>> {
        let mut fds: Vec<libc::pollfd> = self
            .sockets
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // Rounded up: a wait of 0.2 ms is a wait, not a look.
        let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        Ok(fds.iter().position(|p| p.revents != 0))
    }
}

impl Bind for UdpSocket {
    fn bind(addr: SocketAddr) -> io::Result<Self> {
        bind(addr)
    }

    fn port(&self) -> io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}

/// A UDP socket bound on `addr` with the harness's buffers; an IPv6 one is
/// IPv6-only, so that a pair's two sockets stay apart.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps both at its limits, and the defaults
    // already take the largest datagram.
    let _ = socket.set_send_buffer_size(BUFFER);
    let _ = socket.set_recv_buffer_size(BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A sender's address; an IPv4 address written as IPv6 (`::ffff:127.0.0.1`)
/// is the IPv4 address.
fn address(a: &SockAddr) -> SocketAddr {
    a.as_socket()
        .map(canonical)
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_received_whole_with_its_sender() {
        let mut mailbox = Mailbox::open(None).unwrap();
        let sender = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        let big = vec![b'x'; MAX_PAYLOAD];
        sender.send_to(&big, mailbox.local().unwrap()).unwrap();
        let got = mailbox
            .receive(Instant::now() + Duration::from_secs(2))
            .unwrap()
            .expect("a datagram");
        assert_eq!(got.len, MAX_PAYLOAD);
        assert_eq!(got.bytes.len(), MAX_PAYLOAD);
        assert_eq!(got.from, sender.local_addr().unwrap());
        assert_eq!(mailbox.last_sender, Some(got.from));
    }

    #[test]
    fn an_empty_datagram_is_a_datagram() {
        let mut mailbox = Mailbox::open(None).unwrap();
        let sender = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        sender.send_to(b"", mailbox.local().unwrap()).unwrap();
        let got = mailbox
            .receive(Instant::now() + Duration::from_secs(2))
            .unwrap()
            .expect("an empty datagram");
        assert_eq!(got.len, 0);
    }

    #[test]
    fn nothing_by_the_deadline_is_none() {
        let mut mailbox = Mailbox::open(None).unwrap();
        let t0 = Instant::now();
        let got = mailbox
            .receive(Instant::now() + Duration::from_millis(20))
            .unwrap();
        assert!(got.is_none());
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(mailbox
            .receive(Instant::now() - Duration::from_millis(1))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_flood_is_kept_bounded() {
        let mut mailbox = Mailbox::open(None).unwrap();
        let sender = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
        for _ in 0..KEPT + 10 {
            sender.send_to(b"x", mailbox.local().unwrap()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for _ in 0..KEPT + 10 {
            mailbox.receive(deadline).unwrap();
        }
        assert_eq!(mailbox.queue.len(), KEPT);
        assert_eq!(mailbox.dropped, 10);
    }

    fn has_ipv6() -> bool {
        bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).is_ok()
    }

    #[test]
    fn a_socket_toward_an_ipv6_server_is_an_ipv6_socket() {
        if !has_ipv6() {
            return;
        }
        let server = bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).unwrap();
        let mailbox = Mailbox::open(server.local_addr().ok()).unwrap();
        assert!(mailbox.local().unwrap().is_ipv6());
        mailbox
            .send_to(b"hi", server.local_addr().unwrap())
            .unwrap();
        let mut got = [0u8; 8];
        assert_eq!(server.recv_from(&mut got).unwrap().0, 2);
    }

    #[test]
    fn a_socket_toward_an_ipv4_address_written_as_ipv6_is_an_ipv4_socket() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
        let mailbox = Mailbox::open(Some(mapped)).unwrap();
        assert!(mailbox.local().unwrap().is_ipv4());
        assert_eq!(
            canonical(mapped),
            "127.0.0.1:9".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn a_pair_receives_on_either_loopback_and_answers_from_the_address_used() {
        if !has_ipv6() {
            return;
        }
        let pair = crate::kernel::loopback::Pair::<UdpSocket>::bind(None).unwrap();
        let port = pair.port();
        let sockets = pair.sockets().map(|s| s.try_clone().unwrap()).collect();
        let mut mailbox = Mailbox::on(sockets);
        let deadline = Instant::now() + Duration::from_secs(2);
        for client_ip in [
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ] {
            let client = bind(SocketAddr::new(client_ip, 0)).unwrap();
            let server = SocketAddr::new(client_ip, port);
            client.send_to(b"ping", server).unwrap();
            let got = mailbox.receive(deadline).unwrap().expect("a datagram");
            assert_eq!((got.from, got.to), (client.local_addr().unwrap(), server));
            mailbox.send_to(b"PONG", got.from).unwrap();
            let mut reply = [0u8; 8];
            let (n, from) = client.recv_from(&mut reply).unwrap();
            assert_eq!((&reply[..n], from), (&b"PONG"[..], server));
        }
    }
}
