//! One port on both loopback addresses, for a target that connects to the
//! harness.
//!
//! A client under test may connect to 127.0.0.1, to ::1, or to `localhost`,
//! which many runtimes resolve to ::1 first (Node 17 and later do by
//! default). A harness listening on one of them refuses a correct client
//! that picked the other, so it binds both on the same port, the IPv6 socket
//! IPv6-only so that the two stay independent. A machine without ::1 still
//! gets its IPv4 socket, and the pair says why ::1 is missing. The pairing
//! does not depend on the kind of socket: [`Bind`] is all it needs, so a
//! datagram harness can pair its sockets the same way.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};

use crate::kernel::net;

/// How many kernel-chosen ports are tried when the one picked on 127.0.0.1
/// is already taken on ::1 by another program. A single collision is rare;
/// eight in a row would mean something holds ::1 ports wholesale.
const TRIES: usize = 8;

/// A socket that can be bound to one loopback address.
pub trait Bind: Sized {
    /// Binds on `addr` (port 0: one the kernel picks), ready to be used:
    /// a stream socket listens.
    fn bind(addr: SocketAddr) -> io::Result<Self>;
    /// The port the socket is bound to.
    fn port(&self) -> io::Result<u16>;
}

impl Bind for TcpListener {
    fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = net::listen(addr)?;
        // The two listeners of a pair are polled in turn: neither may block.
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    fn port(&self) -> io::Result<u16> {
        Ok(self.local_addr()?.port())
    }
}

/// The same port bound on 127.0.0.1 and, where the machine has it, on ::1.
pub struct Pair<S> {
    v4: S,
    v6: V6<S>,
    port: u16,
}

/// The ::1 side of a pair.
enum V6<S> {
    Bound(S),
    /// The machine has no IPv6 loopback; the error says why.
    Absent(io::Error),
}

/// Why a pair could not be bound.
#[derive(Debug)]
pub struct BindError {
    /// The address that could not be bound.
    pub addr: SocketAddr,
    pub source: io::Error,
    /// Whether the port was asked for (it is written in the target's code)
    /// rather than picked by the kernel.
    pub fixed: bool,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not listen on {} for the client: {}",
            self.addr, self.source
        )?;
        let port = self.addr.port();
        match (self.fixed, self.source.kind()) {
            (true, io::ErrorKind::AddrInUse) => write!(
                f,
                "; another program holds port {port} (`ss -ltnp 'sport = :{port}'` shows which): \
                 stop it, or change the port in the client's code and pass the new one with --port"
            ),
            (true, io::ErrorKind::PermissionDenied) => write!(
                f,
                "; ports below 1024 need privileges: change the port in the client's code \
                 to one above 1023 and pass it with --port"
            ),
            (false, io::ErrorKind::AddrInUse) => write!(
                f,
                "; each of {TRIES} free ports on 127.0.0.1 was already taken on ::1"
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for BindError {}

fn v4_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn v6_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, port))
}

/// Whether binding ::1 failed because the machine has no IPv6 loopback:
/// EAFNOSUPPORT when IPv6 is off in the kernel, EADDRNOTAVAIL when ::1 was
/// taken off `lo` (`disable_ipv6`).
fn lacks_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
    )
}

impl<S: Bind> Pair<S> {
    /// Binds both loopbacks on `port`, or, without one, on a port the
    /// kernel picks that is free on both.
    pub fn bind(port: Option<u16>) -> Result<Self, BindError> {
        Self::bind_with(port, |addr| {
            let socket = S::bind(addr)?;
            let port = socket.port()?;
            Ok((socket, port))
        })
    }
}

impl<S> Pair<S> {
    /// [`Pair::bind`] with the binding of one address given: it returns the
    /// socket and the port it got.
    fn bind_with(
        port: Option<u16>,
        mut bind: impl FnMut(SocketAddr) -> io::Result<(S, u16)>,
    ) -> Result<Self, BindError> {
        match port {
            Some(port) => Self::bind_fixed(port, &mut bind),
            None => Self::bind_any(&mut bind),
        }
    }

    fn bind_fixed(
        port: u16,
        bind: &mut impl FnMut(SocketAddr) -> io::Result<(S, u16)>,
    ) -> Result<Self, BindError> {
        let failed = |addr, source| BindError {
            addr,
            source,
            fixed: true,
        };
        let (v4, _) = bind(v4_addr(port)).map_err(|e| failed(v4_addr(port), e))?;
        let v6 = bind_v6(port, bind).map_err(|e| failed(v6_addr(port), e))?;
        Ok(Pair { v4, v6, port })
    }

    fn bind_any(
        bind: &mut impl FnMut(SocketAddr) -> io::Result<(S, u16)>,
    ) -> Result<Self, BindError> {
        let failed = |addr, source| BindError {
            addr,
            source,
            fixed: false,
        };
        // Ports found taken on ::1 stay bound on 127.0.0.1 until a pair is
        // found, so the kernel cannot pick one of them again.
        let mut refused = Vec::with_capacity(TRIES);
        loop {
            let (v4, port) = bind(v4_addr(0)).map_err(|e| failed(v4_addr(0), e))?;
            match bind_v6(port, bind) {
                Ok(v6) => return Ok(Pair { v4, v6, port }),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && refused.len() + 1 < TRIES => {
                    refused.push(v4)
                }
                Err(e) => return Err(failed(v6_addr(port), e)),
            }
        }
    }

    /// The port bound on both loopbacks.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound sockets, 127.0.0.1 first.
    pub fn sockets(&self) -> impl Iterator<Item = &S> {
        let v6 = match &self.v6 {
            V6::Bound(s) => Some(s),
            V6::Absent(_) => None,
        };
        std::iter::once(&self.v4).chain(v6)
    }

    /// Why ::1 is not bound, when it is not.
    pub fn v6_absent(&self) -> Option<&io::Error> {
        match &self.v6 {
            V6::Bound(_) => None,
            V6::Absent(e) => Some(e),
        }
    }
}

/// Binds ::1 on `port`; a machine without ::1 is not an error.
fn bind_v6<S>(
    port: u16,
    bind: &mut impl FnMut(SocketAddr) -> io::Result<(S, u16)>,
) -> io::Result<V6<S>> {
    match bind(v6_addr(port)) {
        Ok((socket, _)) => Ok(V6::Bound(socket)),
        Err(e) if lacks_ipv6(&e) => Ok(V6::Absent(e)),
        Err(e) => Err(e),
    }
}

impl Pair<TcpListener> {
    /// Takes a connection waiting on either loopback, without blocking:
    /// `None` when neither has one. The stream it returns blocks.
    pub fn accept(&self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        for listener in self.sockets() {
            match listener.accept() {
                Ok((stream, peer)) => {
                    stream.set_nonblocking(false)?;
                    return Ok(Some((stream, peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Accepts within a second, polling as the session does.
    fn accept_soon(pair: &Pair<TcpListener>) -> (TcpStream, SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            if let Some(got) = pair.accept().unwrap() {
                return got;
            }
            assert!(Instant::now() < deadline, "nothing to accept");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn has_ipv6() -> bool {
        TcpListener::bind(v6_addr(0)).is_ok()
    }

    #[test]
    fn a_client_of_either_loopback_is_accepted_on_the_one_port() {
        let pair = Pair::<TcpListener>::bind(None).unwrap();
        let port = pair.port();
        let _v4 = TcpStream::connect(v4_addr(port)).unwrap();
        let (_, from) = accept_soon(&pair);
        assert_eq!(from.ip(), Ipv4Addr::LOCALHOST);
        if !has_ipv6() {
            assert!(pair.v6_absent().is_some());
            return;
        }
        let _v6 = TcpStream::connect(v6_addr(port)).unwrap();
        let (_, from) = accept_soon(&pair);
        assert_eq!(from.ip(), Ipv6Addr::LOCALHOST);
    }

    #[test]
    fn a_fixed_port_is_bound_on_both_loopbacks() {
        let port = TcpListener::bind(v4_addr(0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pair = Pair::<TcpListener>::bind(Some(port)).unwrap();
        assert_eq!(pair.port(), port);
        let ports: Vec<u16> = pair.sockets().map(|l| l.port().unwrap()).collect();
        assert!(ports.iter().all(|&p| p == port), "{ports:?}");
    }

    #[test]
    fn the_ipv6_listener_leaves_the_ipv4_port_to_others() {
        if !has_ipv6() {
            return;
        }
        let v6 = <TcpListener as Bind>::bind(v6_addr(0)).unwrap();
        let port = v6.port().unwrap();
        // Without IPV6_V6ONLY this bind would meet the IPv6 socket.
        let v4 = <TcpListener as Bind>::bind(v4_addr(port));
        assert!(v4.is_ok(), "{v4:?}");
    }

    #[test]
    fn a_fixed_port_taken_on_ipv6_names_the_address_and_the_fix() {
        if !has_ipv6() {
            return;
        }
        let other = <TcpListener as Bind>::bind(v6_addr(0)).unwrap();
        let port = other.port().unwrap();
        let err = Pair::<TcpListener>::bind(Some(port)).err().unwrap();
        let text = err.to_string();
        assert!(text.contains(&format!("[::1]:{port}")), "{text}");
        assert!(
            text.contains("another program holds port") && text.contains("--port"),
            "{text}"
        );
    }

    /// A scripted binding: ::1 refuses each port in `taken`, or every port
    /// with `absent`; 127.0.0.1 hands out 40000, 40001, ...
    fn scripted(
        taken: Vec<u16>,
        absent: Option<i32>,
    ) -> impl FnMut(SocketAddr) -> io::Result<(SocketAddr, u16)> {
        let mut next = 40000;
        move |addr| match addr {
            SocketAddr::V4(_) if addr.port() == 0 => {
                next += 1;
                Ok((v4_addr(next - 1), next - 1))
            }
            SocketAddr::V4(_) => Ok((addr, addr.port())),
            SocketAddr::V6(_) => match absent {
                Some(errno) => Err(io::Error::from_raw_os_error(errno)),
                None if taken.contains(&addr.port()) => Err(io::ErrorKind::AddrInUse.into()),
                None => Ok((addr, addr.port())),
            },
        }
    }

    #[test]
    fn a_kernel_port_taken_on_ipv6_is_traded_for_another() {
        let pair = Pair::bind_with(None, scripted(vec![40000, 40001], None)).unwrap();
        assert_eq!(pair.port(), 40002);
        assert_eq!(pair.sockets().count(), 2);
    }

    #[test]
    fn the_search_for_a_port_free_on_both_is_bounded() {
        let taken = (40000..40000 + TRIES as u16).collect();
        let err = Pair::bind_with(None, scripted(taken, None)).err().unwrap();
        assert_eq!(err.source.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(err.addr, v6_addr(40000 + TRIES as u16 - 1), "tried {TRIES}");
        assert!(err.to_string().contains("already taken on ::1"), "{err}");
    }

    #[test]
    fn a_machine_without_ipv6_loopback_goes_on_with_ipv4_alone() {
        for errno in [libc::EADDRNOTAVAIL, libc::EAFNOSUPPORT] {
            let pair = Pair::bind_with(None, scripted(vec![], Some(errno))).unwrap();
            assert_eq!(pair.sockets().count(), 1);
            assert_eq!(pair.v6_absent().and_then(|e| e.raw_os_error()), Some(errno));
        }
    }
}
