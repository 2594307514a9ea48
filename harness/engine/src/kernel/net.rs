//! Tuned sockets for the harness's side of a connection, built with socket2.
//!
//! Every harness socket sets `TCP_NODELAY`, so each write of a cut leaves at
//! once instead of being merged by Nagle's algorithm; a reset is a close with
//! `SO_LINGER` zero; the harness's listeners set `SO_REUSEADDR` so a run can
//! follow another at once.

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// The smallest buffer sizes to ask for; the kernel raises them to its floor
/// (2304 bytes to receive, 4608 to send on these machines), so the values
/// in force are always read back and recorded.
const SMALLEST_BUFFER: usize = 1;

/// What a connection's buffers were set to, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffers {
    pub recv: usize,
    pub send: usize,
}

/// Connects to `addr` with `TCP_NODELAY`, within `timeout`.
pub fn connect(
    addr: SocketAddr,
    small_buffers: bool,
    timeout: Duration,
) -> io::Result<(TcpStream, Option<Buffers>)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nodelay(true)?;
    // Lets the harness bind this connection's port again while it is in
    // TIME_WAIT, to knock on the TIME_WAIT it left on the target's port
    // (`ports::clear_time_wait`): after two closes that crossed, both
    // ends keep one. It changes nothing else for a connecting socket.
    socket.set_reuse_address(true)?;
    let buffers = if small_buffers {
        socket.set_recv_buffer_size(SMALLEST_BUFFER)?;
        socket.set_send_buffer_size(SMALLEST_BUFFER)?;
        Some(Buffers {
            recv: socket.recv_buffer_size()?,
            send: socket.send_buffer_size()?,
        })
    } else {
        None
    };
    socket.connect_timeout(&addr.into(), timeout)?;
    Ok((socket.into(), buffers))
}

/// Asks for the smallest receive buffer on a listener, which the
/// connections it accepts inherit from their first packet: their window
/// stays small. Returns the size in force, as read back.
pub fn shrink_receive_buffer(listener: &TcpListener) -> io::Result<usize> {
    let socket = socket2::SockRef::from(listener);
    socket.set_recv_buffer_size(SMALLEST_BUFFER)?;
    socket.recv_buffer_size()
}

/// Aborts a connection with a reset: `SO_LINGER` on with a zero timeout,
/// then close. A peer blocked in its receive gets ECONNRESET.
pub fn reset(stream: TcpStream) -> io::Result<()> {
    let socket = Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO))?;
    drop(socket);
    Ok(())
}

/// Whether the peer has closed its side: end of stream is next to read
/// (looked at without waiting and without taking any byte).
pub fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let closed = matches!(stream.peek(&mut [0u8; 1]), Ok(0));
    let _ = stream.set_nonblocking(false);
    closed
}

/// Half-closes: the peer reads end of stream, the harness can still read.
pub fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)
}

/// A listener for a client under test on `addr` (port 0: one the kernel
/// picks), with `SO_REUSEADDR`. An IPv6 listener takes IPv6 only, so one on
/// ::1 and one on 127.0.0.1 share a port as two independent sockets.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(16)?;
    Ok(socket.into())
}

/// A loopback port that was free a moment ago, for a target to bind.
///
/// The kernel hands out ephemeral ports in order, so the port just released
/// is not given to another socket at once; the window for a race is small
/// and a target that then cannot bind is reported with its own error.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Acknowledges at once what was just received. Linux delays ACKs by up
/// to 40 ms; a target that writes its reply in pieces without TCP_NODELAY
/// then waits for that ACK before each piece (Nagle's algorithm), and the
/// suite would measure the kernel's timers instead of the target. The flag
/// does not stick, so it is set again after every receive.
pub fn ack_now(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_quickack(true);
}

/// Whether an I/O error means the peer went away (reset, broken pipe).
pub fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn listen_v4() -> TcpListener {
        listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap()
    }

    #[test]
    fn small_buffers_are_read_back_from_the_kernel() {
        let listener = listen_v4();
        let (_s, buffers) =
            connect(listener.local_addr().unwrap(), true, Duration::from_secs(1)).unwrap();
        let b = buffers.unwrap();
        assert!(b.recv >= 1 && b.send >= 1);
        assert!(b.recv < 64 * 1024, "asked for the smallest, got {b:?}");
    }

    #[test]
    fn a_reset_reaches_a_reading_peer_as_connection_reset() {
        let listener = listen_v4();
        let (client, _) = connect(
            listener.local_addr().unwrap(),
            false,
            Duration::from_secs(1),
        )
        .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        reset(client).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let err = server.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn a_half_close_still_lets_the_harness_read() {
        let listener = listen_v4();
        let (mut client, _) = connect(
            listener.local_addr().unwrap(),
            false,
            Duration::from_secs(1),
        )
        .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        shutdown_write(&client).unwrap();
        assert_eq!(server.read(&mut [0u8; 8]).unwrap(), 0);
        server.write_all(b"late").unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late");
    }
}
