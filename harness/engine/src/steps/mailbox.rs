//! The harness's side of one datagram socket: the socket, the datagrams
//! received and not yet matched, and who sent the last one. The session
//! keeps one per socket of the conversation (`u1`, `u2`...); the datagram
//! steps work on them, as the stream steps work on [`Link`]s.
//!
//! [`Link`]: super::link::Link

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// A datagram socket of the conversation, by number: `u1`, `u2`...
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Sock(pub u8);

impl fmt::Display for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "u{}", self.0)
    }
}

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
}

/// The harness's side of one datagram socket.
pub(crate) struct Mailbox {
    pub(crate) socket: UdpSocket,
    /// Received and not yet matched, oldest first.
    pub(crate) queue: VecDeque<Datagram>,
    /// Datagrams dropped because the queue was full.
    pub(crate) dropped: usize,
    /// Who sent the last datagram received: a client under test, when the
    /// harness plays its server.
    pub(crate) last_sender: Option<SocketAddr>,
    /// Where each receive lands, kept between receives: a datagram may be
    /// 64 KiB, and a flood brings thousands.
    scratch: Box<[MaybeUninit<u8>]>,
}

impl Mailbox {
    /// A fresh socket on 127.0.0.1, on a port the kernel picks.
    pub(crate) fn open() -> io::Result<Mailbox> {
        Ok(Mailbox::on(bind(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            0,
        )))?))
    }

    /// A mailbox on a socket already bound (the harness's server socket).
    pub(crate) fn on(socket: UdpSocket) -> Mailbox {
        Mailbox {
            socket,
            queue: VecDeque::new(),
            dropped: 0,
            last_sender: None,
            scratch: vec![MaybeUninit::uninit(); RECEIVE_SIZE].into_boxed_slice(),
        }
    }

    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    /// Receives one datagram into the queue, waiting at most until
    /// `deadline`; returns what arrived, or `None` at the deadline.
    pub(crate) fn receive(&mut self, deadline: Instant) -> io::Result<Option<Datagram>> {
        let now = Instant::now();
        if now >= deadline {
            return self.receive_waiting(Duration::ZERO);
        }
        self.receive_waiting(deadline - now)
    }

    fn receive_waiting(&mut self, wait: Duration) -> io::Result<Option<Datagram>> {
        let socket = socket2::SockRef::from(&self.socket);
        if wait.is_zero() {
            socket.set_nonblocking(true)?;
        } else {
            socket.set_nonblocking(false)?;
            socket.set_read_timeout(Some(wait))?;
        }
        let got = socket.recv_from_with_flags(&mut self.scratch, libc::MSG_TRUNC);
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
        let datagram = Datagram { bytes, len, from };
        self.last_sender = Some(from);
        if self.queue.len() < KEPT {
            self.queue.push_back(datagram.clone());
        } else {
            self.dropped += 1;
        }
        Ok(Some(datagram))
    }
}

/// A UDP socket bound on `addr` with the harness's buffers.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps both at its limits, and the defaults
    // already take the largest datagram.
    let _ = socket.set_send_buffer_size(BUFFER);
    let _ = socket.set_recv_buffer_size(BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn address(a: &SockAddr) -> SocketAddr {
    a.as_socket()
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_is_received_whole_with_its_sender() {
        let mut mailbox = Mailbox::open().unwrap();
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
        let mut mailbox = Mailbox::open().unwrap();
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
        let mut mailbox = Mailbox::open().unwrap();
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
        let mut mailbox = Mailbox::open().unwrap();
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
}
