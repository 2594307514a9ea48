//! A private loopback for each check: a fresh network namespace for the
//! calling thread, with only `lo`, brought up.
//!
//! Nothing of an earlier check survives in it: no TIME_WAIT left on a fixed
//! port by a server that closed first or was killed (the restart check
//! leaves one on purpose), no stale listener of another program, no
//! connection still closing. A process the thread starts afterwards is born
//! in the namespace; the harness's sockets and its questions to the kernel
//! (socket dumps, `/proc/thread-self/net`) are made from the same thread, so
//! all of them see the target's loopback. The namespace goes away with the
//! last of its sockets and processes.
//!
//! Creating one needs `CAP_SYS_ADMIN` (root, or a container that grants
//! it); measured: under a millisecond each. Without it every check shares
//! the machine's loopback, and the harness clears the TIME_WAIT its own
//! connections left on the target's port instead ([`crate::ports`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a check's sockets live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A network namespace of the check's own.
    Namespace,
    /// The machine's loopback, shared with everything else.
    Shared,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Namespace => "namespace",
            Isolation::Shared => "shared",
        }
    }
}

/// Set to `shared` to keep every check on the machine's loopback (to
/// watch the traffic with `ss` or tcpdump, or to test that path).
pub const ISOLATION_VAR: &str = "SOCKSPEC_ISOLATION";

/// Once a namespace could not be made, the harness stops trying.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Moves the calling thread into a fresh network namespace with loopback
/// up, when the machine allows it.
pub fn fresh_loopback() -> Isolation {
    if UNAVAILABLE.load(Ordering::Relaxed)
        || std::env::var(ISOLATION_VAR).is_ok_and(|v| v == "shared")
    {
        return Isolation::Shared;
    }
    match enter_new_namespace() {
        Ok(()) => Isolation::Namespace,
        Err(_) => {
            UNAVAILABLE.store(true, Ordering::Relaxed);
            Isolation::Shared
        }
    }
}

fn enter_new_namespace() -> io::Result<()> {
    // SAFETY: unshare changes only the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    loopback_up()
}

/// Sets `IFF_UP` on `lo`, as `ip link set lo up` does: a new namespace's
/// loopback starts down, and nothing connects to 127.0.0.1 until it is up.
fn loopback_up() -> io::Result<()> {
    // SAFETY: an ioctl on a socket this function owns, with an ifreq it
    // built; the name is NUL-terminated within IFNAMSIZ.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    #[test]
    fn a_fresh_loopback_has_nothing_of_the_machine_s() {
        let outside = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = outside.local_addr().unwrap().port();
        let inside = std::thread::spawn(move || {
            if fresh_loopback() == Isolation::Shared {
                return None; // not permitted here: nothing to show
            }
            // The port taken outside is free inside, and loopback works.
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
            let c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            let (_s, _) = l.accept().unwrap();
            Some(c.peer_addr().unwrap().port())
        })
        .join()
        .unwrap();
        if let Some(p) = inside {
            assert_eq!(p, port);
        }
    }

    fn namespace_of_this_thread() -> std::path::PathBuf {
        std::fs::read_link("/proc/thread-self/ns/net").unwrap()
    }

    #[test]
    fn a_thread_started_inside_is_inside_and_its_questions_see_the_loopback() {
        let outside = namespace_of_this_thread();
        let seen = std::thread::spawn(move || {
            if fresh_loopback() == Isolation::Shared {
                return None;
            }
            let inside = namespace_of_this_thread();
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, _) = l.accept().unwrap();
            let (mine, theirs) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
            // A writer thread is started after the move, as the session's are.
            let child = std::thread::spawn(move || {
                let found = crate::sockdiag::Diag::open()
                    .unwrap()
                    .connection(theirs, mine)
                    .unwrap();
                (namespace_of_this_thread(), found)
            })
            .join()
            .unwrap();
            Some((inside, child))
        })
        .join()
        .unwrap();
        if let Some((inside, (child, found))) = seen {
            assert_ne!(inside, outside);
            assert_eq!(child, inside);
            assert!(matches!(found, crate::sockdiag::Found::Socket(_)));
        }
    }
}
