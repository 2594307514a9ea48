//! A TCP socket as the kernel lists it (in its socket dump or in
//! `/proc/net/tcp`): its state, both addresses, and the inode that names it
//! in `/proc/PID/fd`. A leaf module: the readers produce it, [`crate::kernel::ports`]
//! answers questions with it.

use std::net::SocketAddr;

/// The states of a TCP socket, numbered as the kernel numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    /// The peer closed first; this side has not closed yet.
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
}

impl TcpState {
    pub fn from_number(n: u8) -> Option<TcpState> {
        use TcpState::*;
        Some(match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            _ => return None,
        })
    }

    /// This state's bit in the kernel's state mask of a dump request.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of states to ask the kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct States(u32);

impl States {
    pub fn of(states: &[TcpState]) -> States {
        States(states.iter().fold(0, |m, s| m | s.bit()))
    }

    pub fn mask(self) -> u32 {
        self.0
    }

    pub fn contains(self, s: TcpState) -> bool {
        self.0 & s.bit() != 0
    }
}

/// One socket of the kernel's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Names the socket in `/proc/PID/fd` (`socket:[inode]`); 0 for a
    /// socket no process holds any more (TIME_WAIT, an orphan).
    pub inode: u64,
    /// Milliseconds left on the socket's timer, where the kernel says
    /// (for TIME_WAIT: until it goes away).
    pub timer_ms: u32,
}
