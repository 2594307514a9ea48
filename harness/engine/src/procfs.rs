//! What Linux's `/proc` tells about a target without touching its sockets:
//! the TCP and UDP tables (where the kernel's socket dump is missing), which
//! processes make up the target, how much CPU they used, how each of their
//! threads was scheduled, which descriptors they hold and which sockets
//! those are.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::tcpsock::{TcpSocket, TcpState};
use crate::udpsock::UdpSocket;

/// Every socket of the calling thread's network namespace, from
/// `/proc/thread-self/net/tcp{,6}`. Costs a read of the whole table (every
/// TIME_WAIT included): the fallback for a kernel without socket
/// diagnostics.
pub fn tcp_table() -> Vec<TcpSocket> {
    let mut all = parse_tcp_table(&net_table("tcp"), false);
    all.extend(parse_tcp_table(&net_table("tcp6"), true));
    all
}

/// Every UDP socket of the calling thread's network namespace, from
/// `/proc/thread-self/net/udp{,6}`: the fallback for a kernel without UDP
/// socket diagnostics (`udp_diag`).
pub fn udp_table() -> Vec<UdpSocket> {
    let mut all = parse_udp_table(&net_table("udp"), false);
    all.extend(parse_udp_table(&net_table("udp6"), true));
    all
}

fn net_table(name: &str) -> String {
    fs::read_to_string(format!("/proc/thread-self/net/{name}")).unwrap_or_default()
}

/// Parses a `/proc/net/tcp` table; rows it cannot read are left out.
pub fn parse_tcp_table(table: &str, v6: bool) -> Vec<TcpSocket> {
    rows(table, v6)
        .filter_map(|r| {
            Some(TcpSocket {
                local: r.local,
                remote: r.remote,
                state: TcpState::from_number(r.state)?,
                inode: r.inode,
                timer_ms: (r.timer_ticks * 1000 / ticks_per_second()).min(u64::from(u32::MAX))
                    as u32,
            })
        })
        .collect()
}

/// Parses a `/proc/net/udp` table (the same columns as TCP's); rows it
/// cannot read are left out.
pub fn parse_udp_table(table: &str, v6: bool) -> Vec<UdpSocket> {
    rows(table, v6)
        .map(|r| UdpSocket {
            local: r.local,
            remote: r.remote,
            inode: r.inode,
        })
        .collect()
}

/// One row of a `/proc/net/{tcp,udp}` table.
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
    timer_ticks: u64,
}

fn rows(table: &str, v6: bool) -> impl Iterator<Item = Row> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        let f: Vec<&str> = line.split_whitespace().collect();
        let endpoint = |text: &str| -> Option<SocketAddr> {
            let (addr, port) = text.split_once(':')?;
            Some(SocketAddr::new(
                parse_addr(addr, v6)?,
                u16::from_str_radix(port, 16).ok()?,
            ))
        };
        let timer_ticks = f
            .get(5)
            .and_then(|t| t.split_once(':'))
            .and_then(|(_, when)| u64::from_str_radix(when, 16).ok())
            .unwrap_or(0);
        Some(Row {
            local: endpoint(f.get(1)?)?,
            remote: endpoint(f.get(2)?)?,
            state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            inode: f.get(9)?.parse().ok()?,
            timer_ticks,
        })
    })
}

/// `/proc/net/tcp` prints each 32-bit word of an address as the machine
/// holds it in memory, so the octets are the word's native-endian bytes.
fn parse_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    if !v6 {
        return Some(IpAddr::V4(Ipv4Addr::from(word(hex)?)));
    }
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for i in 0..4 {
        octets[i * 4..i * 4 + 4].copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(octets)))
}

/// A process as `/proc/PID/stat` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// The session: the pid of the process that made it with `setsid`.
    pub session: i32,
    /// When the process started, in clock ticks after boot: with the pid,
    /// it names one process even after its pid is reused.
    pub start: u64,
    /// User plus system CPU time, in clock ticks.
    pub ticks: u64,
    /// Zombie processes hold no resources worth measuring.
    pub zombie: bool,
    /// Asleep waiting for an event (state S: in accept, recv, select...),
    /// rather than running, waiting to run, or in a disk wait.
    pub sleeping: bool,
}

/// Parses the text of `/proc/PID/stat`. The command name sits in
/// parentheses and may itself hold spaces or parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (head, rest) = text.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) pgrp(2) session(3) ... utime(11)
    // stime(12) ... starttime(19).
    Some(Stat {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        ticks: f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?,
        zombie: *f.first()? == "Z",
        sleeping: *f.first()? == "S",
    })
}

/// Every process of the machine this user can see.
pub fn all_stats() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    })
    .collect()
}

/// The processes of a target: every member of its process group, and every
/// descendant of its root process even if it left the group.
pub fn tree(root: i32, pgid: i32) -> Vec<Stat> {
    family(|s| s.pid == root || s.pgid == pgid)
}

/// The processes that `first` picks, and every descendant of theirs.
pub fn family(first: impl Fn(&Stat) -> bool) -> Vec<Stat> {
    family_in(&all_stats(), first)
}

/// [`family`] within a list of processes read before.
pub fn family_in(stats: &[Stat], first: impl Fn(&Stat) -> bool) -> Vec<Stat> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for s in stats {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let mut members: BTreeSet<i32> = BTreeSet::new();
    let mut stack: Vec<i32> = stats.iter().filter(|s| first(s)).map(|s| s.pid).collect();
    while let Some(pid) = stack.pop() {
        if members.insert(pid) {
            stack.extend(children.get(&pid).map(Vec::as_slice).unwrap_or(&[]));
        }
    }
    stats
        .iter()
        .filter(|s| members.contains(&s.pid))
        .copied()
        .collect()
}

/// One process's stat, if it still exists.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The value of `name` in the environment a process started with, when
/// this user may read it (a zombie's cannot be read).
pub fn environ_var(pid: i32, name: &str) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ_lookup(&raw, name)
}

/// Finds `name` in the text of `/proc/PID/environ` (`NAME=value` entries
/// separated by NUL bytes).
pub fn environ_lookup(raw: &[u8], name: &str) -> Option<String> {
    raw.split(|&b| b == 0).find_map(|entry| {
        let rest = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

/// Ticks per second of the times in `/proc/PID/stat`.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU used by a set of processes between two samples, as a fraction of one
/// core over `elapsed`. A process that appeared between the samples counts
/// with all of its time (it all fell inside the window).
pub fn cpu_fraction(before: &[Stat], after: &[Stat], elapsed: Duration) -> f64 {
    let was: HashMap<i32, u64> = before.iter().map(|s| (s.pid, s.ticks)).collect();
    let used: u64 = after
        .iter()
        .map(|s| {
            s.ticks
                .saturating_sub(was.get(&s.pid).copied().unwrap_or(0))
        })
        .sum();
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    used as f64 / ticks_per_second() as f64 / secs
}

/// One thread's scheduler counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadSample {
    pub pid: i32,
    pub tid: i32,
    pub sched: Schedstat,
    pub status: TaskStatus,
}

/// The first two fields of `/proc/PID/task/TID/schedstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedstat {
    /// Time spent running on a core, in nanoseconds.
    pub running_ns: u64,
    /// Time spent runnable but waiting for a free core, in nanoseconds.
    pub waiting_ns: u64,
}

/// Parses `/proc/PID/task/TID/schedstat`: "running waiting timeslices".
pub fn parse_schedstat(text: &str) -> Option<Schedstat> {
    let mut fields = text.split_whitespace();
    Some(Schedstat {
        running_ns: fields.next()?.parse().ok()?,
        waiting_ns: fields.next()?.parse().ok()?,
    })
}

/// What `/proc/PID/task/TID/status` says of a thread's scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskStatus {
    /// Running or ready to run at this moment (state `R`), as opposed to
    /// asleep waiting for something.
    pub runnable: bool,
    /// Times the thread went to sleep: gave up its core to wait for
    /// something (a receive, `accept`, `select`'s timeout, a lock). Every
    /// sleep counts here, however short; preemptions do not.
    pub sleeps: u64,
}

/// Parses the `State:` and `voluntary_ctxt_switches:` lines of
/// `/proc/PID/task/TID/status` (`nonvoluntary_ctxt_switches:`, the
/// preemptions, is another line).
pub fn parse_task_status(text: &str) -> Option<TaskStatus> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    Some(TaskStatus {
        runnable: field("State:")?.starts_with('R'),
        sleeps: field("voluntary_ctxt_switches:")?.parse().ok()?,
    })
}

/// The scheduler counters of every thread of a set of processes (zombies
/// have none). A thread that ends while it is read is left out.
pub fn thread_samples(procs: &[Stat]) -> Vec<ThreadSample> {
    procs
        .iter()
        .filter(|s| !s.zombie)
        .flat_map(|s| threads_of(s.pid))
        .collect()
}

fn threads_of(pid: i32) -> Vec<ThreadSample> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let tid: i32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let task = format!("/proc/{pid}/task/{tid}");
        Some(ThreadSample {
            pid,
            tid,
            sched: parse_schedstat(&fs::read_to_string(format!("{task}/schedstat")).ok()?)?,
            status: parse_task_status(&fs::read_to_string(format!("{task}/status")).ok()?)?,
        })
    })
    .collect()
}

/// How one thread spent a window, each time as a fraction of the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThreadUse {
    pub pid: i32,
    pub tid: i32,
    /// On a core.
    pub running: f64,
    /// Ready to run but waiting for a free core: on a busy machine this
    /// takes the place of running for a thread that never sleeps.
    pub waiting: f64,
    /// Times it went to sleep during the window.
    pub sleeps: u64,
    /// The window's length.
    pub seconds: f64,
}

impl ThreadUse {
    /// The fraction of the window the thread wanted a core: running or
    /// waiting for one. The kernel credits a wait when it ends, so at the
    /// window's edges this can read somewhat under or over 1.
    pub fn runnable(&self) -> f64 {
        self.running + self.waiting
    }

    pub fn sleeps_per_second(&self) -> f64 {
        self.sleeps as f64 / self.seconds
    }
}

/// What each thread did between two samples taken `elapsed` apart. A thread
/// that appeared between the samples counts with all of its time (it all
/// fell inside the window); one that ended is left out.
pub fn thread_use(
    before: &[ThreadSample],
    after: &[ThreadSample],
    elapsed: Duration,
) -> Vec<ThreadUse> {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        return Vec::new();
    }
    let was: HashMap<i32, &ThreadSample> = before.iter().map(|t| (t.tid, t)).collect();
    after
        .iter()
        .map(|t| one_thread(was.get(&t.tid).copied(), t, seconds))
        .collect()
}

fn one_thread(before: Option<&ThreadSample>, after: &ThreadSample, seconds: f64) -> ThreadUse {
    let fraction = |ns: u64| ns as f64 / 1e9 / seconds;
    let (sched, status) = before.map_or(
        (
            Schedstat {
                running_ns: 0,
                waiting_ns: 0,
            },
            TaskStatus {
                runnable: false,
                sleeps: 0,
            },
        ),
        |b| (b.sched, b.status),
    );
    let sleeps = after.status.sleeps.saturating_sub(status.sleeps);
    let running = fraction(after.sched.running_ns.saturating_sub(sched.running_ns));
    let mut waiting = fraction(after.sched.waiting_ns.saturating_sub(sched.waiting_ns));
    // The kernel adds a wait to the counter only when the wait ends, so a
    // thread still queued when the window closes shows less than it waited
    // (a spinner read 34 % with many programs competing), and one queued
    // when it opened shows more. A thread that was ready to run at the start
    // and never slept was ready the whole window: every moment it was not
    // running, it waited for a core.
    if status.runnable && sleeps == 0 {
        waiting = (1.0 - running).max(0.0);
    }
    ThreadUse {
        pid: after.pid,
        tid: after.tid,
        running,
        waiting,
        sleeps,
        seconds,
    }
}

/// Every descendant of `root` now, with its parent, read from the
/// kernel's `/proc/PID/task/TID/children` lists: a few small reads, cheap
/// enough to take after every reply (a scan of all of `/proc` is not).
pub fn descendants(root: i32) -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    // A tree of more than a few thousand processes is not a target's.
    while let Some(pid) = stack.pop() {
        if found.len() > 4096 {
            break;
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let list = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in list
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                found.push((child, pid));
                stack.push(child);
            }
        }
    }
    found
}

/// `root` and its descendants as `/proc/PID/stat` describes them, found
/// through the kernel's child lists: a few reads, not a scan of `/proc`.
pub fn family_of(root: i32) -> Vec<Stat> {
    std::iter::once(root)
        .chain(descendants(root).into_iter().map(|(pid, _)| pid))
        .filter_map(|pid| parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?))
        .collect()
}

/// The inodes of the sockets `pid` holds open (`socket:[N]` in its fds).
pub fn socket_inodes(pid: i32) -> BTreeSet<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| {
        let link = fs::read_link(e.ok()?.path()).ok()?;
        socket_inode(&link.to_string_lossy())
    })
    .collect()
}

/// The inode named by a descriptor's link text, `socket:[N]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every process of the machine that holds the socket `inode` (as far as
/// this user may look), for naming who holds a port.
pub fn holders_anywhere(inode: u64) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| socket_inodes(pid).contains(&inode))
        .collect()
}

/// A process's command line, spaces between its arguments.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// Open descriptors across a set of processes (zombies hold none).
pub fn descriptors(procs: &[Stat]) -> usize {
    descriptors_by_process(procs).values().sum()
}

/// Open descriptors of each process of a set (zombies hold none).
pub fn descriptors_by_process(procs: &[Stat]) -> std::collections::BTreeMap<i32, usize> {
    procs
        .iter()
        .filter(|s| !s.zombie)
        .filter_map(|s| {
            let n = fs::read_dir(format!("/proc/{}/fd", s.pid)).ok()?.count();
            Some((s.pid, n))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D432 06 00000000:00000000 03:00000064 00000000     0        0 0 3 0
";

    #[test]
    fn reads_state_addresses_and_inode_of_each_row() {
        let rows = parse_tcp_table(TCP, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].state, TcpState::Listen);
        assert_eq!(rows[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(rows[0].inode, 1);
        assert_eq!(rows[1].state, TcpState::Established);
        assert_eq!(rows[1].remote, "127.0.0.1:54321".parse().unwrap());
    }

    #[test]
    fn a_udp_row_gives_the_bound_address_and_inode() {
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 4547: 0100007F:8F82 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1662453 2 0000000032e5b854 0
";
        let rows = parse_udp_table(udp, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, "127.0.0.1:36738".parse().unwrap());
        assert_eq!(rows[0].remote, "0.0.0.0:0".parse().unwrap());
        assert_eq!(rows[0].inode, 1662453);
    }

    #[test]
    fn an_environment_entry_is_found_by_its_whole_name() {
        let raw = b"PATH=/bin\0SOCKSPEC_RUNNER=x\0SOCKSPEC_RUN=12.3\0";
        assert_eq!(environ_lookup(raw, "SOCKSPEC_RUN").as_deref(), Some("12.3"));
        assert_eq!(environ_lookup(raw, "HOME"), None);
    }

    #[test]
    fn a_time_wait_row_has_its_timer() {
        let tw = parse_tcp_table(TCP, false)[2];
        assert_eq!(tw.state, TcpState::TimeWait);
        assert_eq!(tw.inode, 0);
        assert_eq!(tw.timer_ms as u64, 100 * 1000 / ticks_per_second());
    }

    #[test]
    fn reads_ipv6_loopback() {
        let t6 = "header\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0 0 0 0 0 7\n";
        let rows = parse_tcp_table(t6, true);
        assert_eq!(rows[0].local.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(rows[0].local.port(), 8080);
    }

    #[test]
    fn a_descriptor_link_names_a_socket_inode() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let text = "42 (my (odd) name) S 1 40 39 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 1 0 123 0 0";
        let s = parse_stat(text).unwrap();
        assert_eq!(
            (s.pid, s.ppid, s.pgid, s.session, s.ticks, s.start, s.zombie),
            (42, 1, 40, 39, 10, 123, false)
        );
    }

    #[test]
    fn this_process_is_in_its_own_tree() {
        let me = std::process::id() as i32;
        // SAFETY: getpgrp has no preconditions.
        let pgid = unsafe { libc::getpgrp() };
        assert!(tree(me, pgid).iter().any(|s| s.pid == me));
        assert!(descriptors(&tree(me, pgid)) > 0);
    }

    #[test]
    fn cpu_counts_new_processes_whole() {
        let a = Stat {
            pid: 1,
            ppid: 0,
            pgid: 1,
            session: 1,
            start: 0,
            ticks: 10,
            zombie: false,
            sleeping: true,
        };
        let b = Stat { ticks: 20, ..a };
        let c = Stat {
            pid: 2,
            ticks: 5,
            ..a
        };
        let f = cpu_fraction(&[a], &[b, c], Duration::from_secs(1));
        assert!((f - 15.0 / ticks_per_second() as f64).abs() < 1e-9);
    }

    #[test]
    fn schedstat_gives_running_then_waiting() {
        let s = parse_schedstat("9926443 3173296 41\n").unwrap();
        assert_eq!((s.running_ns, s.waiting_ns), (9_926_443, 3_173_296));
    }

    #[test]
    fn schedstat_that_is_not_numbers_is_refused() {
        for junk in ["", "12", "a b c", "-1 2 3", "1 99999999999999999999999 3"] {
            assert_eq!(parse_schedstat(junk), None, "{junk:?}");
        }
    }

    const STATUS: &str = "Name:\tpython3\nState:\tS (sleeping)\nThreads:\t1\n\
                          voluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n";

    #[test]
    fn sleeps_are_the_voluntary_switches_not_the_preemptions() {
        assert_eq!(parse_task_status(STATUS).map(|s| s.sleeps), Some(1234));
    }

    #[test]
    fn only_state_r_is_runnable() {
        assert_eq!(parse_task_status(STATUS).map(|s| s.runnable), Some(false));
        let running = STATUS.replace("S (sleeping)", "R (running)");
        assert_eq!(parse_task_status(&running).map(|s| s.runnable), Some(true));
    }

    #[test]
    fn status_without_state_or_voluntary_switches_is_refused() {
        for junk in [
            "State:\tR\nnonvoluntary_ctxt_switches:\t56\n",
            "State:\tR\nvoluntary_ctxt_switches:\tmany\n",
            "voluntary_ctxt_switches:\t3\n",
        ] {
            assert_eq!(parse_task_status(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn this_thread_is_among_its_process_threads() {
        let me = std::process::id() as i32;
        // SAFETY: gettid and getpgrp have no preconditions.
        let (tid, pgid) = unsafe { (libc::gettid(), libc::getpgrp()) };
        let threads = thread_samples(&tree(me, pgid));
        assert!(threads.iter().any(|t| t.pid == me && t.tid == tid));
    }

    fn sample(tid: i32, running_ms: u64, waiting_ms: u64, sleeps: u64) -> ThreadSample {
        ThreadSample {
            pid: 1,
            tid,
            sched: Schedstat {
                running_ns: running_ms * 1_000_000,
                waiting_ns: waiting_ms * 1_000_000,
            },
            status: TaskStatus {
                runnable: false,
                sleeps,
            },
        }
    }

    fn queued(mut t: ThreadSample) -> ThreadSample {
        t.status.runnable = true;
        t
    }

    #[test]
    fn a_thread_ready_at_the_start_that_never_slept_was_ready_all_window() {
        // Still queued at the end: the counter has not caught up yet.
        let used = thread_use(
            &[queued(sample(7, 100, 100, 5))],
            &[sample(7, 106, 300, 5)],
            Duration::from_millis(600),
        );
        assert!((used[0].running - 0.01).abs() < 1e-9);
        assert!((used[0].runnable() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_thread_ready_at_the_start_that_slept_keeps_its_counters() {
        let used = thread_use(
            &[queued(sample(7, 100, 100, 5))],
            &[sample(7, 106, 300, 6)],
            Duration::from_secs(1),
        );
        assert!((used[0].runnable() - 0.206).abs() < 1e-9);
    }

    #[test]
    fn thread_use_is_the_difference_over_the_window() {
        let used = thread_use(
            &[sample(7, 100, 100, 5)],
            &[sample(7, 150, 400, 5)],
            Duration::from_millis(500),
        );
        assert_eq!(used.len(), 1);
        let t = used[0];
        assert!((t.running - 0.1).abs() < 1e-9 && (t.waiting - 0.6).abs() < 1e-9);
        assert!((t.runnable() - 0.7).abs() < 1e-9);
        assert_eq!((t.sleeps, t.sleeps_per_second()), (0, 0.0));
    }

    #[test]
    fn a_thread_born_in_the_window_counts_whole() {
        let used = thread_use(&[], &[sample(8, 50, 0, 10)], Duration::from_secs(1));
        assert!((used[0].running - 0.05).abs() < 1e-9);
        assert_eq!(used[0].sleeps_per_second(), 10.0);
    }

    #[test]
    fn counters_that_go_backwards_read_as_zero() {
        // A thread id reused between the samples.
        let used = thread_use(
            &[sample(9, 900, 900, 90)],
            &[sample(9, 1, 1, 1)],
            Duration::from_secs(1),
        );
        assert_eq!((used[0].runnable(), used[0].sleeps), (0.0, 0));
    }

    #[test]
    fn an_empty_window_measures_nothing() {
        assert!(thread_use(&[], &[sample(1, 1, 1, 1)], Duration::ZERO).is_empty());
    }
}
