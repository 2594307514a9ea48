//! A UDP socket as the kernel lists it (in its socket dump or in
//! `/proc/net/udp`): the address it is bound to, the peer it is connected
//! to (`0.0.0.0:0` when it is not), and the inode that names it in
//! `/proc/PID/fd`. A leaf module, as [`crate::tcpsock`] is for TCP.

use std::net::SocketAddr;

/// One UDP socket of the kernel's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Names the socket in `/proc/PID/fd` (`socket:[inode]`).
    pub inode: u64,
}
