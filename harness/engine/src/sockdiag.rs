//! TCP and UDP sockets from the kernel's socket-diagnostics netlink
//! interface (`NETLINK_SOCK_DIAG`, as `ss` uses it), asking for some states
//! only.
//!
//! `/proc/net/tcp` lists every socket of the machine, TIME_WAIT included: on
//! a machine that just ran thousands of connections one read costs
//! milliseconds, polled every few. The kernel filters a sock_diag dump by
//! state itself, so an answer about listeners holds only the few listeners.
//! UDP sockets come from the same interface when the kernel has `udp_diag`.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::tcpsock::{States, TcpSocket, TcpState};
use crate::udpsock::UdpSocket;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
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
    let mut b = Vec::with_capacity(HEADER + REQUEST);
    b.extend_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    b.push(family);
    b.push(protocol);
    b.push(0); // no extensions
    b.push(0);
    b.extend_from_slice(&states.to_ne_bytes());
    b.resize(HEADER + REQUEST, 0); // any socket id
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
    })
}

/// The sockets of one address family and protocol whose state is in the
/// mask `states`, from the kernel.
fn dump(family: u8, protocol: u8, states: u32) -> io::Result<Vec<Listed>> {
    // SAFETY: plain socket syscalls on a descriptor this function owns; the
    // buffers passed are valid for the lengths given.
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
        let mut kernel: libc::sockaddr_nl = mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let req = request(family, protocol, states);
        let sent = libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr() as *const libc::c_void,
            req.len(),
            0,
            &kernel as *const _ as *const libc::sockaddr,
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        );
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut all = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        // A dump is a few buffers even on a busy machine (about 200 sockets
        // fit in one); the bound only guards against a kernel that never
        // says done.
        for _ in 0..4096 {
            let n = libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            match parse(&buf[..n as usize]) {
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

    proptest! {
        #[test]
        fn parsing_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&buf);
        }
    }
}
