//! TCP and UDP sockets from the kernel's socket-diagnostics netlink
//! interface (`NETLINK_SOCK_DIAG`, as `ss` uses it), asking for some states
//! only.
//!
//! `/proc/net/tcp` lists every socket of the machine, TIME_WAIT included: on
//! a machine that just ran thousands of connections one read costs
//! milliseconds, polled every few. The kernel filters a sock_diag dump by
//! state itself, so an answer about listeners holds only the few listeners.
//! UDP sockets come from the same interface when the kernel has `udp_diag`.
//!
//! One connection can also be looked up by its addresses, with the kernel's
//! `tcp_info` for it: how many bytes its owner has received and how many it
//! has not read yet ([`Diag::connection`]). That answer is what lets the
//! harness send a piece of a cut only once the target has read the last.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::kernel::tcpsock::{States, TcpSocket, TcpState};
use crate::kernel::udpsock::UdpSocket;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// The `tcp_info` attribute of a socket's answer, and its bit in a request.
const INET_DIAG_INFO: u16 = 2;
const INFO_EXT: u8 = 1 << (INET_DIAG_INFO - 1);
/// `tcpi_bytes_received` in `struct tcp_info` (include/uapi/linux/tcp.h):
/// eight bytes at offset 128, after the eight one-byte fields, 24 words
/// and three 64-bit counters. Kernels before 4.1 send a shorter struct.
const BYTES_RECEIVED: usize = 128;
/// `idiag_cookie` meaning "any socket with these addresses".
const NO_COOKIE: u32 = !0;
const HEADER: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, id (48).
const REQUEST: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, id (48),
/// expires, rqueue, wqueue, uid, inode.
const MESSAGE: usize = 72;

/// Every state a UDP socket can be listed in: unconnected ones are in
/// TCP's `CLOSE` (7), connected ones in `ESTABLISHED` (1).
const UDP_STATES: u32 = (1 << 1) | (1 << 7);

/// Builds the dump request for sockets of `family` and `protocol` whose
/// state is in the mask `states`.
fn request(family: u8, protocol: u8, states: u32) -> Vec<u8> {
    let mut b = header(NLM_F_REQUEST | NLM_F_DUMP, 1);
    b.push(family);
    b.push(protocol);
    b.push(0); // no extensions
    b.push(0);
    b.extend_from_slice(&states.to_ne_bytes());
    b.resize(HEADER + REQUEST, 0); // any socket id
    b
}

/// The netlink header of a request of [`REQUEST`] bytes.
fn header(flags: u16, sequence: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER + REQUEST);
    b.extend_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&sequence.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    b
}

/// Builds the request for the one TCP socket whose own address is `local`
/// and whose peer is `remote`, with its `tcp_info`. Both addresses must be
/// of one family. The answer carries `sequence`.
fn lookup_request(local: SocketAddr, remote: SocketAddr, sequence: u32) -> Vec<u8> {
    let family = match local {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    let mut b = header(NLM_F_REQUEST, sequence);
    b.push(family as u8);
    b.push(libc::IPPROTO_TCP as u8);
    b.push(INFO_EXT);
    b.push(0);
    b.extend_from_slice(&(!0u32).to_ne_bytes()); // any state
    b.extend_from_slice(&local.port().to_be_bytes());
    b.extend_from_slice(&remote.port().to_be_bytes());
    for addr in [local.ip(), remote.ip()] {
        let mut a = [0u8; 16];
        match addr {
            IpAddr::V4(v4) => a[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => a.copy_from_slice(&v6.octets()),
        }
        b.extend_from_slice(&a);
    }
    b.extend_from_slice(&0u32.to_ne_bytes()); // any interface
    b.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    b.extend_from_slice(&NO_COOKIE.to_ne_bytes());
    b
}

/// One socket of a dump, whatever its protocol: the state as the kernel
/// numbers it (TCP's numbering; a UDP socket is `CLOSE` or `ESTABLISHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listed {
    pub state: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub timer_ms: u32,
    pub inode: u64,
    /// `idiag_rqueue`: for a UDP socket the memory its receive queue holds.
    pub rqueue: u32,
}

/// What one buffer of the dump said.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Sockets found so far; the dump goes on.
    More(Vec<Listed>),
    /// The dump ended, with these last sockets.
    Done(Vec<Listed>),
    /// The kernel refused the request.
    Refused(i32),
}

/// Parses netlink messages of a sock_diag dump. Never panics on a short
/// or malformed buffer: what cannot be read is left out.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut found = Vec::new();
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let word = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let len = word(at) as usize;
        let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < HEADER || at + len > buf.len() {
            break;
        }
        match ty {
            NLMSG_DONE => return Parsed::Done(found),
            NLMSG_ERROR => {
                let code = if len >= HEADER + 4 {
                    word(at + HEADER) as i32
                } else {
                    -1
                };
                return Parsed::Refused(code);
            }
            SOCK_DIAG_BY_FAMILY if len >= HEADER + MESSAGE => {
                if let Some(socket) = message(&buf[at + HEADER..at + len]) {
                    found.push(socket);
                }
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    Parsed::More(found)
}

/// One `struct inet_diag_msg` (at least [`MESSAGE`] bytes). Ports are in
/// network order, the other words in the machine's.
fn message(m: &[u8]) -> Option<Listed> {
    let word = |o: usize| u32::from_ne_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
    let v6 = m[0] == libc::AF_INET6 as u8;
    let ip = |o: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&m[o..o + 16]);
        if v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        }
    };
    Some(Listed {
        state: m[1],
        local: SocketAddr::new(ip(8), u16::from_be_bytes([m[4], m[5]])),
        remote: SocketAddr::new(ip(24), u16::from_be_bytes([m[6], m[7]])),
        timer_ms: word(52),
        inode: u64::from(word(68)),
        rqueue: word(56),
    })
}

/// One connection as the kernel sees it from its owner's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The state, in TCP's numbering.
    pub state: u8,
    /// Names the socket in `/proc/PID/fd`; 0 once no process holds it
    /// (closed by its program, on its way out).
    pub inode: u64,
    /// Bytes received and not yet read by the program (`idiag_rqueue`).
    pub unread: u32,
    /// Bytes the program wrote that the peer has not acknowledged yet
    /// (`idiag_wqueue`): on loopback, not yet in the peer's queue.
    pub unacked: u32,
    /// Bytes received on the connection so far (`tcpi_bytes_received`);
    /// `None` when the kernel's `tcp_info` is too short to hold it.
    pub bytes_received: Option<u64>,
}

/// What the kernel answered to one lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Socket(Connection),
    /// No socket has these addresses in this network namespace.
    Nothing,
    /// The kernel refused the request (the error code, negative).
    Refused(i32),
}

/// Parses the answer to the lookup of one socket that carried `sequence`;
/// `None` when the buffer holds no answer to it (a late answer to an
/// earlier question). Never panics on a short or malformed buffer.
pub fn parse_lookup(buf: &[u8], sequence: u32) -> Option<Found> {
    let mut at = 0;
    while at + HEADER <= buf.len() {
        let word = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let len = word(at) as usize;
        let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
        if len < HEADER || at + len > buf.len() {
            break;
        }
        if word(at + 8) != sequence {
            at += (len + 3) & !3;
            continue;
        }
        match ty {
            NLMSG_ERROR => {
                let code = if len >= HEADER + 4 {
                    word(at + HEADER) as i32
                } else {
                    -1
                };
                return Some(if code == -libc::ENOENT {
                    Found::Nothing
                } else {
                    Found::Refused(code)
                });
            }
            SOCK_DIAG_BY_FAMILY if len >= HEADER + MESSAGE => {
                return Some(connection(&buf[at + HEADER..at + len]));
            }
            _ => {}
        }
        at += (len + 3) & !3;
    }
    None
}

/// One `struct inet_diag_msg` followed by its attributes.
fn connection(m: &[u8]) -> Found {
    let word = |o: usize| u32::from_ne_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
    let mut bytes_received = None;
    let mut at = MESSAGE;
    while at + 4 <= m.len() {
        let len = u16::from_ne_bytes([m[at], m[at + 1]]) as usize;
        let ty = u16::from_ne_bytes([m[at + 2], m[at + 3]]);
        if len < 4 || at + len > m.len() {
            break;
        }
        let value = &m[at + 4..at + len];
        if ty == INET_DIAG_INFO && value.len() >= BYTES_RECEIVED + 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&value[BYTES_RECEIVED..BYTES_RECEIVED + 8]);
            bytes_received = Some(u64::from_ne_bytes(b));
        }
        at += (len + 3) & !3;
    }
    Found::Socket(Connection {
        state: m[1],
        inode: u64::from(word(68)),
        unread: word(56),
        unacked: word(60),
        bytes_received,
    })
}

/// A socket for questions to the kernel's socket diagnostics. It answers
/// about the network namespace of the thread that opened it, whichever
/// thread asks later.
pub struct Diag {
    fd: OwnedFd,
    /// The sequence number of the last question.
    asked: u32,
}

impl Diag {
    pub fn open() -> io::Result<Diag> {
        // SAFETY: plain socket syscalls on a descriptor this function owns;
        // the option passed is valid for the length given.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let timeout = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const _ as *const libc::c_void,
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            Ok(Diag { fd, asked: 1 })
        }
    }

    fn send(&self, req: &[u8]) -> io::Result<()> {
        // SAFETY: the request buffer and the kernel's address are valid for
        // the lengths given.
        let sent = unsafe {
            let mut kernel: libc::sockaddr_nl = mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                req.as_ptr() as *const libc::c_void,
                req.len(),
                0,
                &kernel as *const _ as *const libc::sockaddr,
                mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The TCP socket whose own address is `local` and whose peer is
    /// `remote`, with its counters. A listener on `local` is not it: the
    /// kernel may answer with one when the connection is gone.
    ///
    /// Reading the counters takes the socket's lock, so the answer waits
    /// for a receive the owner is in the middle of: once it says nothing
    /// is unread, the owner's receive call has returned.
    pub fn connection(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Found> {
        self.asked = self.asked.wrapping_add(1);
        self.send(&lookup_request(local, remote, self.asked))?;
        let mut buf = [0u8; 4096];
        // An answer that came after its question timed out is read and
        // dropped here; the bound only guards against a confused kernel.
        for _ in 0..8 {
            let n = self.recv(&mut buf)?;
            if let Some(found) = parse_lookup(&buf[..n], self.asked) {
                return Ok(match found {
                    Found::Socket(c) if c.state == TcpState::Listen as u8 => Found::Nothing,
                    found => found,
                });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the kernel did not answer the socket lookup",
        ))
    }

    /// The sockets of one address family and protocol whose state is in
    /// the mask `states`.
    fn dump(&self, family: u8, protocol: u8, states: u32) -> io::Result<Vec<Listed>> {
        self.send(&request(family, protocol, states))?;
        let mut all = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        // A dump is a few buffers even on a busy machine (about 200 sockets
        // fit in one); the bound only guards against a kernel that never
        // says done.
        for _ in 0..4096 {
            let n = self.recv(&mut buf)?;
            match parse(&buf[..n]) {
                Parsed::More(found) => all.extend(found),
                Parsed::Done(found) => {
                    all.extend(found);
                    return Ok(all);
                }
                Parsed::Refused(code) => return Err(io::Error::from_raw_os_error(-code)),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the socket dump did not end",
        ))
    }
}

/// The sockets of one address family and protocol whose state is in the
/// mask `states`, from the kernel.
fn dump(family: u8, protocol: u8, states: u32) -> io::Result<Vec<Listed>> {
    Diag::open()?.dump(family, protocol, states)
}

/// Every TCP socket in `states`, IPv4 then IPv6; `Err` when the kernel's
/// interface is not available (the caller falls back to `/proc/net/tcp`).
pub fn sockets(states: States) -> io::Result<Vec<TcpSocket>> {
    let tcp = libc::IPPROTO_TCP as u8;
    let mut all = dump(libc::AF_INET as u8, tcp, states.mask())?;
    all.extend(dump(libc::AF_INET6 as u8, tcp, states.mask())?);
    Ok(all
        .into_iter()
        .filter_map(|l| {
            Some(TcpSocket {
                state: TcpState::from_number(l.state)?,
                local: l.local,
                remote: l.remote,
                timer_ms: l.timer_ms,
                inode: l.inode,
            })
        })
        .collect())
}

/// Every bound UDP socket, IPv4 then IPv6; `Err` when the kernel cannot
/// list them (no `udp_diag`: the caller falls back to `/proc/net/udp`).
pub fn udp_sockets() -> io::Result<Vec<UdpSocket>> {
    let udp = libc::IPPROTO_UDP as u8;
    let mut all = dump(libc::AF_INET as u8, udp, UDP_STATES)?;
    all.extend(dump(libc::AF_INET6 as u8, udp, UDP_STATES)?);
    Ok(all
        .into_iter()
        .map(|l| UdpSocket {
            local: l.local,
            remote: l.remote,
            inode: l.inode,
            queued: u64::from(l.rqueue),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::TcpListener;

    fn listeners() -> Vec<TcpSocket> {
        sockets(States::of(&[TcpState::Listen])).unwrap()
    }

    #[test]
    fn finds_a_listener_and_its_inode_without_connecting() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let found: Vec<TcpSocket> = listeners()
            .into_iter()
            .filter(|s| s.local == addr)
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].state, TcpState::Listen);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&l);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(
            link.to_string_lossy(),
            format!("socket:[{}]", found[0].inode)
        );
    }

    #[test]
    fn a_closed_port_is_not_listening() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        assert!(listeners().iter().all(|s| s.local.port() != port));
    }

    #[test]
    fn both_ends_of_a_connection_are_listed_with_their_addresses() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        let mine = c.local_addr().unwrap();
        let all = sockets(States::of(&[TcpState::Established])).unwrap();
        let theirs = all.iter().find(|s| s.remote == mine).expect("server side");
        assert_eq!(theirs.local, l.local_addr().unwrap());
        assert!(theirs.inode > 0);
    }

    #[test]
    fn a_bound_udp_socket_is_found_with_its_inode() {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = u.local_addr().unwrap();
        let Ok(all) = udp_sockets() else {
            eprintln!("skipped: this kernel lists no UDP sockets (no udp_diag)");
            return;
        };
        let found: Vec<UdpSocket> = all.into_iter().filter(|s| s.local == addr).collect();
        assert_eq!(found.len(), 1);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&u);
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        assert_eq!(
            link.to_string_lossy(),
            format!("socket:[{}]", found[0].inode)
        );
    }

    #[test]
    fn a_udp_socket_s_unread_datagrams_show_in_its_queue_until_read() {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = u.local_addr().unwrap();
        let queued = || {
            udp_sockets()
                .ok()
                .and_then(|all| all.into_iter().find(|s| s.local == addr))
                .map(|s| s.queued)
        };
        if queued().is_none() {
            eprintln!("skipped: this kernel lists no UDP sockets (no udp_diag)");
            return;
        }
        assert_eq!(queued(), Some(0));
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"waiting", addr).unwrap();
        assert!(queued().unwrap_or(0) > 0);
        u.recv_from(&mut [0u8; 16]).unwrap();
        assert_eq!(queued(), Some(0));
    }

    #[test]
    fn a_tcp_listener_is_not_taken_for_a_udp_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let Ok(all) = udp_sockets() else {
            eprintln!("skipped: this kernel lists no UDP sockets (no udp_diag)");
            return;
        };
        assert!(all.iter().all(|s| s.local.port() != port));
    }

    #[test]
    fn a_udp_socket_is_not_taken_for_a_tcp_listener() {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        assert!(listeners().iter().all(|s| s.local.port() != port));
    }

    #[test]
    fn the_request_is_one_whole_message() {
        let r = request(
            libc::AF_INET as u8,
            libc::IPPROTO_TCP as u8,
            States::of(&[TcpState::Listen]).mask(),
        );
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes([r[0], r[1], r[2], r[3]]), 72);
    }

    /// `tcpi_bytes_received` as the owner of a socket reads it itself.
    fn own_bytes_received(s: &std::net::TcpStream) -> u64 {
        let mut info = [0u8; 512];
        let mut len = info.len() as libc::socklen_t;
        // SAFETY: the buffer is valid for the length given.
        let r = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(s),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr() as *mut libc::c_void,
                &mut len,
            )
        };
        assert_eq!(r, 0);
        assert!(
            len as usize >= BYTES_RECEIVED + 8,
            "tcp_info of {len} bytes"
        );
        let mut b = [0u8; 8];
        b.copy_from_slice(&info[BYTES_RECEIVED..BYTES_RECEIVED + 8]);
        u64::from_ne_bytes(b)
    }

    #[test]
    fn a_lookup_shows_what_the_peer_received_and_has_not_read() {
        use std::io::{Read, Write};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mine = c.local_addr().unwrap();
        let theirs = c.peer_addr().unwrap();
        let mut diag = Diag::open().unwrap();
        c.write_all(b"hello").unwrap();
        // Loopback delivers within the write; allow for a scheduler delay.
        let mut seen = diag.connection(theirs, mine).unwrap();
        for _ in 0..200 {
            if matches!(seen, Found::Socket(c) if c.bytes_received == Some(5)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            seen = diag.connection(theirs, mine).unwrap();
        }
        let Found::Socket(before) = seen else {
            panic!("the peer's socket was not found: {seen:?}")
        };
        assert_eq!(before.bytes_received, Some(5));
        assert_eq!(before.unread, 5);
        assert_eq!(before.state, TcpState::Established as u8);
        assert!(before.inode > 0);
        s.read_exact(&mut [0u8; 5]).unwrap();
        let Found::Socket(after) = diag.connection(theirs, mine).unwrap() else {
            panic!("the peer's socket went away")
        };
        assert_eq!(after.unread, 0);
        assert_eq!(after.bytes_received, Some(own_bytes_received(&s)));
    }

    #[test]
    fn a_lookup_of_a_gone_connection_finds_nothing_not_its_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let (theirs, mine) = {
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let pair = (c.peer_addr().unwrap(), c.local_addr().unwrap());
            crate::kernel::net::reset(c).unwrap();
            drop(s);
            pair
        };
        let found = Diag::open().unwrap().connection(theirs, mine).unwrap();
        assert_eq!(found, Found::Nothing);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&buf);
            let _ = parse_lookup(&buf, 1);
        }
    }
}
