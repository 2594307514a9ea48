//! A UDP socket as the kernel lists it (in its socket dump or in
//! `/proc/net/udp`): the address it is bound to, the peer it is connected
//! to (`0.0.0.0:0` when it is not), the inode that names it in
//! `/proc/PID/fd`, and what waits unread in its receive queue. A leaf module, as [`crate::kernel::tcpsock`] is for TCP.

use std::net::SocketAddr;

/// One UDP socket of the kernel's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Names the socket in `/proc/PID/fd` (`socket:[inode]`).
    pub inode: u64,
    /// The memory its receive queue holds (`sk_rmem_alloc`: the datagrams
    /// its program has not read yet, each with the kernel's overhead);
    /// 0 when nothing waits.
    pub queued: u64,
}

/// `addr` with an IPv4 address written as IPv6 (`::ffff:127.0.0.1`, how
/// the kernel lists the socket of a dual-stack program, such as any Java
/// one bound to 127.0.0.1) turned into the IPv4 address it is: only an
/// IPv4 socket reaches it with a datagram.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_address_written_as_ipv6_is_the_ipv4_address() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9000".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:9000".parse().unwrap());
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
