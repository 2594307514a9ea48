//! The processes that make up a target: what `/proc/PID/stat` says of each,
//! the tree below a target's root, its environment and command line, and
//! the CPU the tree used.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::time::Duration;

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

/// A process's command line, spaces between its arguments.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::procfs::descriptors;

    #[test]
    fn an_environment_entry_is_found_by_its_whole_name() {
        let raw = b"PATH=/bin\0SOCKSPEC_RUNNER=x\0SOCKSPEC_RUN=12.3\0";
        assert_eq!(environ_lookup(raw, "SOCKSPEC_RUN").as_deref(), Some("12.3"));
        assert_eq!(environ_lookup(raw, "HOME"), None);
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
}

/// A process's virtual memory, from `/proc/PID/status`, in KiB: its size
/// now (`VmSize`) and the most it ever had (`VmPeak`). Address space
/// reserved and never touched counts here and not in its resident memory,
/// as CPython's buffer for a `recv(n)` of a lying `n` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualMemory {
    pub size_kib: u64,
    pub peak_kib: u64,
}

/// The virtual memory of `pid`, if it still exists.
pub fn virtual_memory(pid: i32) -> Option<VirtualMemory> {
    parse_virtual_memory(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_virtual_memory(status: &str) -> Option<VirtualMemory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(VirtualMemory {
        size_kib: field("VmSize:")?,
        peak_kib: field("VmPeak:")?,
    })
}

#[cfg(test)]
mod virtual_memory_tests {
    use super::*;

    #[test]
    fn virtual_memory_is_read_from_the_status_fields() {
        let status =
            "Name:\tpython3\nVmPeak:\t 2117000 kB\nVmSize:\t   20000 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(
            parse_virtual_memory(status),
            Some(VirtualMemory {
                size_kib: 20_000,
                peak_kib: 2_117_000
            })
        );
        assert_eq!(parse_virtual_memory("Name:\tzombie\n"), None);
    }

    #[test]
    fn the_harness_s_own_virtual_memory_is_readable() {
        let vm = virtual_memory(std::process::id() as i32).unwrap();
        assert!(vm.peak_kib >= vm.size_kib && vm.size_kib > 0);
    }
}
