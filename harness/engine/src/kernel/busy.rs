//! What a busy thread of the target is doing, from the kernel: the system
//! call `/proc/PID/task/TID/syscall` shows it in, sampled a few times, and
//! for a receive, whether the peer of that socket has closed. Tells a
//! receive loop that never stops on an empty read from a busy accept loop
//! or a loop in the program's own code.

use std::fmt;
use std::fs;
use std::thread;
use std::time::Duration;

use crate::kernel::ports;
use crate::kernel::procfs;
use crate::kernel::tcpsock::TcpState;

/// What the thread was found doing most often.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doing {
    /// Receiving on a connection whose peer closed: every receive returns
    /// zero bytes at once, and the loop calls it again.
    ReceivingAfterPeerClosed,
    /// Receiving or sending on a connection.
    Transferring,
    /// Accepting connections.
    Accepting,
    /// Waiting in select, poll or epoll with no time to wait.
    Polling,
    /// Running its own code, outside any system call.
    OwnCode,
}

impl fmt::Display for Doing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Doing::ReceivingAfterPeerClosed => {
                "holding a connection whose client closed and never waiting: a loop that \
                 goes on after recv returned zero bytes"
            }
            Doing::Transferring => "receiving or sending on a connection over and over",
            Doing::Accepting => "calling accept over and over",
            Doing::Polling => "calling select or poll over and over without waiting",
            Doing::OwnCode => "running its own code, not waiting for anything",
        })
    }
}

/// A system call as `/proc/.../syscall` shows it: its number and first
/// argument; `None` for a thread running in user space ("running").
pub fn parse_syscall(text: &str) -> Option<(i64, u64)> {
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    let first = fields
        .next()
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    Some((nr, first))
}

fn classify(nr: i64) -> Option<Doing> {
    let receive = [libc::SYS_recvfrom, libc::SYS_recvmsg, libc::SYS_read];
    let send = [libc::SYS_sendto, libc::SYS_sendmsg, libc::SYS_write];
    if receive.contains(&nr) || send.contains(&nr) {
        Some(Doing::Transferring)
    } else if [libc::SYS_accept, libc::SYS_accept4].contains(&nr) {
        Some(Doing::Accepting)
    } else if [libc::SYS_pselect6, libc::SYS_ppoll, libc::SYS_epoll_pwait].contains(&nr)
        || poll_calls().contains(&nr)
    {
        Some(Doing::Polling)
    } else {
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn poll_calls() -> [i64; 3] {
    [libc::SYS_select, libc::SYS_poll, libc::SYS_epoll_wait]
}

#[cfg(not(target_arch = "x86_64"))]
fn poll_calls() -> [i64; 0] {
    []
}

/// Whether a thread of `pid` is in a read of descriptor `fd` (0: waiting
/// for its next line of standard input), as `/proc/PID/task/*/syscall`
/// shows it; false when the kernel would not say.
pub fn reading(pid: i32, fd: u64) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        fs::read_to_string(task.path().join("syscall"))
            .ok()
            .and_then(|text| parse_syscall(&text))
            .is_some_and(|(nr, first)| nr == libc::SYS_read && first == fd)
    })
}

/// Whether descriptor `fd` of `pid` is a TCP socket whose peer closed.
fn peer_closed(pid: i32, fd: u64) -> bool {
    let Ok(link) = fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
        return false;
    };
    let Some(inode) = procfs::socket_inode(&link.to_string_lossy()) else {
        return false;
    };
    ports::socket_state(inode) == Some(TcpState::CloseWait)
}

/// Whether `pid` holds a TCP socket whose peer closed and that it has not
/// closed itself.
fn holds_closed_connection(pid: i32) -> bool {
    let waiting = ports::inodes_in(TcpState::CloseWait);
    procfs::socket_inodes(pid)
        .iter()
        .any(|inode| waiting.contains(inode))
}

/// Samples what thread `tid` of `pid` does, `samples` times 1 ms apart,
/// and returns what it did most often; `None` when the kernel would not
/// say (another user's process, a kernel without the file).
pub fn sample(pid: i32, tid: i32, samples: u32) -> Option<Doing> {
    let mut seen: Vec<Doing> = Vec::new();
    for _ in 0..samples {
        let Ok(text) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")) else {
            return None;
        };
        let doing = match parse_syscall(&text) {
            None if text.trim_start().starts_with("running") => Some(Doing::OwnCode),
            None => None,
            Some((nr, fd)) => classify(nr).map(|d| match d {
                Doing::Transferring if peer_closed(pid, fd) => Doing::ReceivingAfterPeerClosed,
                other => other,
            }),
        };
        seen.extend(doing);
        thread::sleep(Duration::from_millis(1));
    }
    let count = |d: Doing| seen.iter().filter(|&&s| s == d).count();
    // A receive on a closed connection, seen even once, names the fault. A
    // thread that never waits is mostly seen running, outside any call:
    // then the connection it still holds says the same.
    if count(Doing::ReceivingAfterPeerClosed) > 0 || holds_closed_connection(pid) {
        return Some(Doing::ReceivingAfterPeerClosed);
    }
    [
        Doing::Transferring,
        Doing::Accepting,
        Doing::Polling,
        Doing::OwnCode,
    ]
    .into_iter()
    .filter(|&d| count(d) > 0)
    .max_by_key(|&d| count(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_waiting_for_its_input_is_seen_reading_descriptor_0() {
        let mut cat = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = cat.id() as i32;
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !reading(pid, 0) && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(reading(pid, 0));
        assert!(!reading(pid, 3));
        cat.kill().unwrap();
        cat.wait().unwrap();
    }

    #[test]
    fn a_system_call_line_gives_its_number_and_first_argument() {
        assert_eq!(
            parse_syscall("45 0x3 0x7ffd 0x400 0x0 0x0 0x0 0x7ffc 0x7f12\n"),
            Some((45, 3))
        );
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall(""), None);
    }

    #[test]
    fn receives_and_accepts_are_told_apart() {
        assert_eq!(classify(libc::SYS_recvfrom), Some(Doing::Transferring));
        assert_eq!(classify(libc::SYS_accept4), Some(Doing::Accepting));
        assert_eq!(classify(libc::SYS_getpid), None);
    }

    #[test]
    fn a_thread_of_this_process_can_be_sampled() {
        // The test thread itself runs its own code or reads the file.
        let pid = std::process::id() as i32;
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        let _ = sample(pid, tid, 2);
    }
}
