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
//! Creating one needs `CAP_SYS_ADMIN` over the calling thread's user
//! namespace. Root has it ([`Isolation::Namespace`]). An ordinary user gets
//! it by making a user namespace of the harness's own at start-up, while
//! the process is still single-threaded, mapping only its own uid and gid
//! ([`Isolation::UserNamespace`]): its targets then run as the same user,
//! without privileges, their files owned by that user, and the harness
//! still sees, signals and ends them as before. Measured: under a
//! millisecond per namespace either way. Where the machine refuses both (a
//! container's seccomp or AppArmor profile), every check shares the
//! machine's loopback ([`Isolation::Shared`]), and the harness ends its
//! connections so that they leave nothing there instead
//! ([`crate::kernel::ports::clear_time_wait`], `steps/stream_close.rs`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use crate::kernel::trial;

pub use sockspec_results::Isolation;

/// Names the isolation to use: `namespace`, `user-namespace` or `shared`
/// (to watch the traffic with `ss` or tcpdump, or to test that path);
/// unset or `auto`, the most isolated the machine allows.
pub const ISOLATION_VAR: &str = "SOCKSPEC_ISOLATION";

/// The level chosen for this process, once chosen.
static LEVEL: OnceLock<Isolation> = OnceLock::new();

/// Once a namespace could not be made, the harness stops trying.
static UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Why the isolation asked for cannot be had.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Chooses the run's isolation, as `SOCKSPEC_ISOLATION` asks or the most
/// the machine allows, and enters a user namespace when that is the one.
///
/// Call it at the start of `main`, before any thread exists: the kernel
/// lets only a single-threaded process enter a user namespace. A level
/// asked for by name that the machine refuses is an error that says why.
pub fn prepare() -> Result<Isolation, Refused> {
    let asked = std::env::var(ISOLATION_VAR).unwrap_or_default();
    let level = match asked.as_str() {
        "" | "auto" => {
            if can_make_namespace().is_ok() {
                Isolation::Namespace
            } else if enter_user_namespace().is_ok() && can_make_namespace().is_ok() {
                Isolation::UserNamespace
            } else {
                Isolation::Shared
            }
        }
        name => match Isolation::named(name) {
            None => {
                return Err(Refused(format!(
                    "{ISOLATION_VAR}={name:?} is not a level of isolation; give namespace, \
                     user-namespace, shared, or auto (the most the machine allows)"
                )))
            }
            Some(Isolation::Shared) => Isolation::Shared,
            Some(Isolation::Namespace) => {
                can_make_namespace().map_err(|e| {
                    Refused(format!(
                        "{ISOLATION_VAR}=namespace: this machine does not let sockspec make a \
                         network namespace ({e}); that needs CAP_SYS_ADMIN, as root has: \
                         give user-namespace or shared instead"
                    ))
                })?;
                Isolation::Namespace
            }
            Some(Isolation::UserNamespace) => {
                enter_user_namespace()
                    .and_then(|()| can_make_namespace())
                    .map_err(|e| {
                        Refused(format!(
                            "{ISOLATION_VAR}=user-namespace: this machine does not let sockspec \
                             make a user namespace with a network namespace in it ({e}); a \
                             container's seccomp or AppArmor profile may refuse them: give \
                             shared instead"
                        ))
                    })?;
                Isolation::UserNamespace
            }
        },
    };
    let _ = LEVEL.set(level);
    Ok(*LEVEL.get().unwrap_or(&level))
}

/// The isolation of this process's runs: the one [`prepare`] chose, or,
/// where it was not called (a program using the engine as a library),
/// private namespaces if the process may make them and the shared
/// loopback otherwise.
pub fn in_force() -> Isolation {
    *LEVEL.get_or_init(|| {
        let shared = std::env::var(ISOLATION_VAR).is_ok_and(|v| v == "shared");
        if !shared && can_make_namespace().is_ok() {
            Isolation::Namespace
        } else {
            Isolation::Shared
        }
    })
}

/// The isolation checks get now: the run's, or the shared loopback once a
/// namespace could not be made.
pub fn in_effect() -> Isolation {
    if UNAVAILABLE.load(Ordering::Relaxed) {
        Isolation::Shared
    } else {
        in_force()
    }
}

/// Moves the calling thread into a fresh network namespace with loopback
/// up, when the run's isolation has one per check.
pub fn fresh_loopback() -> Isolation {
    let level = in_force();
    if !level.is_private() || UNAVAILABLE.load(Ordering::Relaxed) {
        return Isolation::Shared;
    }
    match enter_new_namespace() {
        Ok(()) => {
            own_socket_table();
            level
        }
        Err(_) => {
            UNAVAILABLE.store(true, Ordering::Relaxed);
            Isolation::Shared
        }
    }
}

/// Buckets in the table of established sockets of each check's namespace.
///
/// A namespace shares the machine's table unless the namespace it was made
/// from asks for one of its own (`net.ipv4.tcp_child_ehash_entries`, Linux
/// 6.1 and later), and every socket dump walks its table whole, however
/// few sockets it holds: 262,144 buckets on a machine with 23 GB of
/// memory, measured at 15 ms a dump (IPv4 and IPv6) on a loaded 2-core
/// machine, and 0.16 ms with 1,024 buckets. The harness dumps its sockets
/// at every look at how a target ends its connections, several times a
/// check. A check holds at most a few hundred sockets; a smaller table
/// only makes their chains longer.
const SOCKET_TABLE: u32 = 1024;

/// The settings a namespace that shares the machine's table starts with,
/// which the kernel derives from a table's size instead: a namespace with
/// a table of its own is given them, so that a target sees the same
/// kernel in it (as many half-open connections queued, as many TIME_WAIT
/// kept). Read in the first namespace the harness makes.
const DERIVED_FROM_TABLE: [&str; 2] = ["tcp_max_syn_backlog", "tcp_max_tw_buckets"];

/// [`DERIVED_FROM_TABLE`] as the first namespace showed them.
static SHARED_TABLE_SETTINGS: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();

/// Where the calling thread's namespace shows its TCP setting `name`.
fn tcp_setting(name: &str) -> String {
    format!("/proc/sys/net/ipv4/{name}")
}

/// Gives the namespace the calling thread just entered a small table of
/// established sockets of its own ([`SOCKET_TABLE`]), with the settings
/// it would have had with the machine's. Best effort: on a kernel that
/// cannot, the namespace keeps the machine's table, and dumps stay slow.
fn own_socket_table() {
    // Namespaces made from this one get a table of their own.
    let child = tcp_setting("tcp_child_ehash_entries");
    if std::fs::write(child, SOCKET_TABLE.to_string()).is_err() {
        return;
    }
    let read = |name: &str| std::fs::read_to_string(tcp_setting(name)).ok();
    // The kernel shows the machine's table, shared, as a negative size.
    let shared = read("tcp_ehash_entries")
        .and_then(|n| n.trim().parse::<i64>().ok())
        .is_some_and(|n| n < 0);
    if shared {
        SHARED_TABLE_SETTINGS.get_or_init(|| {
            DERIVED_FROM_TABLE
                .iter()
                .filter_map(|&name| Some((name, read(name)?)))
                .collect()
        });
        // One more, made from this one, has a table of its own; this one
        // goes away at once, holding nothing.
        if enter_new_namespace().is_err() {
            return;
        }
    }
    for (name, value) in SHARED_TABLE_SETTINGS.get().into_iter().flatten() {
        let _ = std::fs::write(tcp_setting(name), value);
    }
}

/// Whether this process may make a network namespace, tried in a child
/// process so that nothing of the harness moves (and it stays
/// single-threaded).
fn can_make_namespace() -> io::Result<()> {
    // SAFETY: the child only makes system calls (unshare, ioctl on a
    // socket of its own, _exit) before it exits; it touches no lock or
    // allocation the parent could have held.
    unsafe { trial::in_child(enter_new_namespace) }
}

/// Makes a user namespace for this process in which it has the
/// capabilities to make network namespaces, mapping only its own uid and
/// gid to themselves, so that what it starts runs as the same user.
fn enter_user_namespace() -> io::Result<()> {
    // SAFETY: plain system calls on the calling process.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // Inside, the descriptors of the user's processes outside are hidden:
    // a helper left outside names who holds a port. Without it the harness
    // still runs, and says it cannot see the holder.
    let _ = crate::kernel::procfs::outside::start();
    // SAFETY: unshare changes only this (single-threaded) process.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // An unprivileged process may map its gid only after giving up
    // setgroups(2) in the namespace.
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
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

    #[test]
    fn a_fresh_loopback_has_a_small_socket_table_and_the_settings_of_the_machine_s() {
        let read = |name: &str| std::fs::read_to_string(tcp_setting(name)).unwrap();
        let settings = |read: &dyn Fn(&str) -> String| -> Vec<String> {
            DERIVED_FROM_TABLE.iter().map(|n| read(n)).collect()
        };
        if !std::path::Path::new(&tcp_setting("tcp_child_ehash_entries")).exists() {
            return; // a kernel before 6.1: nothing to show
        }
        // A namespace made from the machine's shares its table.
        let shared = std::thread::spawn(move || {
            enter_new_namespace().ok()?;
            Some((read("tcp_ehash_entries"), settings(&read)))
        })
        .join()
        .unwrap();
        let fresh = std::thread::spawn(move || {
            if fresh_loopback() == Isolation::Shared {
                return None;
            }
            Some((read("tcp_ehash_entries"), settings(&read)))
        })
        .join()
        .unwrap();
        let (Some((machine, defaults)), Some((own, got))) = (shared, fresh) else {
            return; // not permitted here
        };
        assert!(machine.trim().starts_with('-'), "shared: {machine}");
        assert_eq!(own.trim(), SOCKET_TABLE.to_string());
        assert_eq!(got, defaults);
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
                let found = crate::kernel::sockdiag::Diag::open()
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
            assert!(matches!(found, crate::kernel::sockdiag::Found::Socket(_)));
        }
    }
}
