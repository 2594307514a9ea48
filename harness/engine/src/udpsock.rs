//! A UDP socket as the kernel lists it (in its socket dump or in
//! `/proc/net/udp`): the address it is bound to, the peer it is connected
//! to (`0.0.0.0:0` when it is not), the inode that names it in
//! `/proc/PID/fd`, and what waits unread in its receive queue. A leaf module, as [`crate::tcpsock`] is for TCP.

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
