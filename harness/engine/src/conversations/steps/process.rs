//! Steps on the target's process: measure its CPU and expect it idle, count
//! its descriptors and expect them back, kill it as a crash would, restart
//! it on the same port. Each needs the process, so a check with one is
//! skipped against a server the harness did not start.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::{fault, miss, Domain, Runs, StepError, StepResult};
use crate::conversations::session::{pause_for, Peer, Session};
use crate::conversations::transcript::Event;
use crate::judge::body::GivenFile;
use crate::kernel::busy;
use crate::kernel::ports::Holder;
use crate::kernel::procfs;
use crate::kernel::spin::CpuUse;
use crate::model::level::Level;
use crate::model::timing::{Deadline, SpinRule, Timing};
use crate::targets::target::{describe_exit, Process};

/// A step on the target's process.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ProcessStep {
    /// Measure the CPU of the target's whole process tree and expect it idle.
    ExpectIdle,
    /// Remember the target's count of open descriptors.
    CountDescriptors,
    /// Expect the count of open descriptors back where it was remembered.
    ExpectDescriptorsBack { slack: usize },
    /// Kill the target and all its descendants, as a crash would.
    KillTarget,
    /// Start the target again on the same port and expect it to listen.
    RestartTarget,
    /// Once the target has acted on what it was sent, start it again if
    /// it exited, so the next exchange finds it: for servers that serve
    /// one client and exit, as some assignments ask. With `report`, the
    /// exit is an INFO miss (the check that reports it); without, a note,
    /// and a crash (an unsuccessful exit) is left as it is, for the end of
    /// the check to report.
    RestartIfExited { report: bool },
    /// Remember the virtual memory of the target's processes.
    RememberMemory,
    /// Expect no process of the target to have reserved more than `mib`
    /// MiB of virtual memory (its peak) beyond what was remembered: a
    /// claimed size must not be reserved before its bytes arrive.
    ExpectMemoryWithin { mib: u32 },
    /// End the client under test and start it again, on the same port,
    /// with `file` made for it: one more upload in the same check.
    StartClientWith { file: GivenFile },
}

impl ProcessStep {
    pub fn needs_process(&self) -> bool {
        true
    }
}

impl fmt::Display for ProcessStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessStep::ExpectIdle => f.write_str("measure the target's CPU, expect it idle"),
            ProcessStep::CountDescriptors => f.write_str("count the target's open descriptors"),
            ProcessStep::ExpectDescriptorsBack { slack } => {
                write!(f, "expect the descriptor count back (within {slack})")
            }
            ProcessStep::KillTarget => f.write_str("kill the target (SIGKILL, whole process tree)"),
            ProcessStep::RestartTarget => f.write_str("restart the target on the same port"),
            ProcessStep::RestartIfExited { .. } => {
                f.write_str("if the target exited, start it again on the same port")
            }
            ProcessStep::RememberMemory => {
                f.write_str("remember the target's virtual memory (VmPeak)")
            }
            ProcessStep::ExpectMemoryWithin { mib } => write!(
                f,
                "expect the target's virtual memory (VmPeak) grown by less than {mib} MiB"
            ),
            ProcessStep::StartClientWith { file } => write!(
                f,
                "start the client again with a file {:?} of {} bytes",
                file.name,
                file.body.len()
            ),
        }
    }
}

/// What the process domain keeps during a conversation.
#[derive(Default)]
pub(crate) struct ProcessState {
    /// The descriptor count remembered, by process.
    pub(crate) descriptors: Option<BTreeMap<i32, usize>>,
    /// Whether the target was ended on purpose.
    pub(crate) killed: bool,
    /// The peak virtual memory remembered, in KiB, by process.
    pub(crate) memory: Option<BTreeMap<i32, u64>>,
}

impl Domain for ProcessStep {
    type State = ProcessState;
}

impl Runs<ProcessStep> for Session<'_> {
    fn run(&mut self, step: &ProcessStep) -> StepResult {
        self.run_process(step)
    }
}

impl Session<'_> {
    pub(crate) fn run_process(&mut self, step: &ProcessStep) -> StepResult {
        match step {
            ProcessStep::ExpectIdle => self.expect_idle(),
            ProcessStep::CountDescriptors => {
                let by_process = self.descriptors_by_process()?;
                let n = by_process.values().sum::<usize>();
                self.domains.process.descriptors = Some(by_process);
                self.record(
                    None,
                    Event::note(format!("the target holds {n} descriptors")),
                );
                Ok(())
            }
            ProcessStep::ExpectDescriptorsBack { slack } => self.expect_descriptors_back(*slack),
            ProcessStep::KillTarget => {
                let p = self.own_process("kill")?;
                let st = p.kill();
                self.domains.process.killed = true;
                let how = st
                    .map(describe_exit)
                    .unwrap_or_else(|| "still not reaped".into());
                self.record(None, Event::note(format!("killed the target ({how})")));
                Ok(())
            }
            ProcessStep::RestartTarget => self.restart(),
            ProcessStep::RestartIfExited { report } => self.restart_if_exited(*report),
            ProcessStep::RememberMemory => {
                let peaks = self.memory_peaks()?;
                let most = peaks.values().max().copied().unwrap_or(0);
                self.record(
                    None,
                    Event::note(format!(
                        "the target's virtual memory peaked at {} MiB so far",
                        most / 1024
                    )),
                );
                self.domains.process.memory = Some(peaks);
                Ok(())
            }
            ProcessStep::ExpectMemoryWithin { mib } => self.expect_memory_within(*mib),
            ProcessStep::StartClientWith { file } => self.start_client_with(file),
        }
    }

    /// The peak virtual memory of each process of the target, in KiB.
    fn memory_peaks(&mut self) -> Result<BTreeMap<i32, u64>, StepError> {
        let p = self.own_process("measure the memory of")?;
        Ok(procfs::family_of(p.pid())
            .iter()
            .filter(|s| !s.zombie)
            .filter_map(|s| Some((s.pid, procfs::virtual_memory(s.pid)?.peak_kib)))
            .collect())
    }

    fn expect_memory_within(&mut self, mib: u32) -> StepResult {
        let before = self
            .domains
            .process
            .memory
            .clone()
            .ok_or_else(|| fault("no memory was remembered before (a bug in the suite)"))?;
        let now = self.memory_peaks()?;
        // A process started since (a child for a client) is held to the
        // largest peak remembered.
        let largest = before.values().max().copied().unwrap_or(0);
        let grown = now
            .iter()
            .map(|(pid, peak)| {
                let was = before.get(pid).copied().unwrap_or(largest);
                (*pid, was, *peak)
            })
            .max_by_key(|(_, was, peak)| peak.saturating_sub(*was));
        let Some((pid, was, peak)) = grown else {
            return Ok(());
        };
        let by = peak.saturating_sub(was);
        self.record(
            None,
            Event::note(format!(
                "the target's virtual memory peak: {} MiB, {} MiB more than before",
                peak / 1024,
                by / 1024
            )),
        );
        if by > u64::from(mib) * 1024 {
            return Err(miss(
                Level::Must,
                format!(
                    "the server reserved {} MiB of address space (process {pid}'s VmPeak went \
                     from {} to {} MiB) for a size it was only told, before any of those bytes \
                     arrived; its resident memory need not show it",
                    by / 1024,
                    was / 1024,
                    peak / 1024
                ),
            ));
        }
        Ok(())
    }

    fn restart_if_exited(&mut self, report: bool) -> StepResult {
        let timing = self.timing;
        let Peer::Launched(l) = &mut *self.peer else {
            return Err(fault("cannot restart a target the harness did not start"));
        };
        l.settle(&timing);
        let Some(status) = l.process().exited() else {
            if report {
                self.notes.push(
                    "the server was still running once its client was done: it serves the next"
                        .into(),
                );
            }
            return Ok(());
        };
        if !status.success() && !report {
            // A crash is not a way of serving one client: it is left for
            // the end of the check to report, with its stderr.
            return Ok(());
        }
        let how = describe_exit(status);
        self.restart()?;
        let said = format!("the server exited ({how}) when its client was done");
        self.record(None, Event::note(format!("{said}; started again")));
        match report {
            true => Err(miss(
                Level::Info,
                format!("{said}: it serves one client and ends"),
            )),
            false => {
                let note = format!("{said}; it was started again for the next exchange");
                if !self.notes.contains(&note) {
                    self.notes.push(note);
                }
                Ok(())
            }
        }
    }

    /// The target's process; a step that needs it on a target the harness
    /// did not start is the run's mistake (such checks are skipped).
    pub(crate) fn own_process(&mut self, to: &str) -> Result<&mut Process, StepError> {
        self.peer.process().ok_or_else(|| {
            fault(format!(
                "no process to {to}: the harness did not start the target"
            ))
        })
    }

    fn expect_descriptors_back(&mut self, slack: usize) -> StepResult {
        let before_by_process =
            self.domains.process.descriptors.clone().ok_or_else(|| {
                fault("no descriptor count was taken before (a bug in the suite)")
            })?;
        let before: usize = before_by_process.values().sum();
        // Closing is the target's work after the harness's close: poll
        // until the count is back, within a deadline.
        let within = self.timing.deadline(Deadline::Settle);
        let deadline = Instant::now() + within;
        let mut now_by_process = self.descriptors_by_process()?;
        let total = |m: &BTreeMap<i32, usize>| m.values().sum::<usize>();
        while total(&now_by_process) > before + slack && Instant::now() < deadline {
            thread::sleep(Timing::RECOUNT);
            now_by_process = self.descriptors_by_process()?;
        }
        let now = total(&now_by_process);
        self.record(
            None,
            Event::note(format!("the target holds {now} descriptors")),
        );
        if now > before + slack {
            let busy = busy_children(&before_by_process, &now_by_process);
            let sockets: BTreeMap<i32, BTreeSet<u64>> = now_by_process
                .keys()
                .map(|&pid| (pid, procfs::socket_inodes(pid)))
                .collect();
            return Err(miss(
                Level::Must,
                format!(
                    "the target held {before} open descriptors before and {now} {:.1}s after; \
                     {} were not closed{}",
                    within.as_secs_f64(),
                    now - before,
                    where_they_are(&before_by_process, &now_by_process, &sockets, busy)
                ),
            ));
        }
        Ok(())
    }

    fn descriptors_by_process(&mut self) -> Result<BTreeMap<i32, usize>, StepError> {
        let p = self.own_process("inspect")?;
        Ok(procfs::descriptors_by_process(&p.tree()))
    }

    fn start_client_with(&mut self, file: &GivenFile) -> StepResult {
        let (Peer::Client { process, .. } | Peer::DatagramClient { process, .. }) = &mut *self.peer
        else {
            return Err(fault(
                "only a client under test is started again with a file",
            ));
        };
        process.kill();
        let fresh = process.start_again(Some(file.clone())).map_err(|e| {
            miss(
                Level::Must,
                format!("could not start the client again: {e}"),
            )
        })?;
        *process = fresh;
        // The new process's output is read from its start.
        self.domains.stdio.output_seen = 0;
        self.domains.stdio.error_seen = 0;
        self.domains.stdio.typed.clear();
        self.record(
            None,
            Event::note(format!(
                "started the client again with {:?} ({} bytes)",
                file.name,
                file.body.len()
            )),
        );
        Ok(())
    }

    fn restart(&mut self) -> StepResult {
        let timing = self.timing;
        let Peer::Launched(l) = &mut *self.peer else {
            return Err(fault("cannot restart a target the harness did not start"));
        };
        let port = l.port();
        match l.restart(&timing) {
            Ok(()) => {
                self.domains.process.killed = false;
                // Where it listens now: a server given no port is found again.
                let port = l.port();
                self.record(
                    None,
                    Event::note(format!("restarted; listening again on port {port}")),
                );
                Ok(())
            }
            Err(e) if e.bind_failed => Err(miss(
                Level::Must,
                format!(
                    "restarted at once on port {port}, the new instance could not bind it \
                     (address already in use): the killed instance's connection keeps the \
                     port in TIME_WAIT\n{}",
                    e.full()
                ),
            )),
            Err(e) => Err(miss(
                Level::Must,
                format!("restarted at once on port {port}, {}", e.full()),
            )),
        }
    }

    fn expect_idle(&mut self) -> StepResult {
        let paused = self.paused.clone();
        let p = self.own_process("measure")?;
        let mut used = measure_cpu(p, SpinRule::WINDOW, &paused);
        if used.is_ambiguous() {
            used = measure_cpu(p, SpinRule::SECOND_WINDOW, &paused);
        }
        self.record(None, Event::note(used.note()));
        if used.spins() {
            let mut detail = used.spin_detail();
            if let Some(t) = used.thread {
                detail.push_str(&self.who_spins(t.pid, t.tid));
            }
            return Err(miss(Level::Must, detail));
        }
        Ok(())
    }

    /// Names the process that spins (the server's own, or a child it
    /// started for a client) and what the kernel shows it doing.
    fn who_spins(&mut self, pid: i32, tid: i32) -> String {
        let Some(p) = self.peer.process() else {
            return String::new();
        };
        let root = p.pid();
        let tree = p.tree();
        let parent = tree.iter().find(|s| s.pid == pid).map(|s| s.ppid);
        let forked = parent.is_some_and(|pp| pp != root && tree.iter().any(|s| s.pid == pp));
        let who = Holder::of(pid);
        let mut out = match parent {
            Some(pp) if forked => {
                format!("\nthe busy process is {who}, a child of {}", Holder::of(pp))
            }
            _ => format!("\nthe busy process is {who}, the server itself"),
        };
        if let Some(doing) = busy::sample(pid, tid, Timing::BUSY_SAMPLES) {
            out.push_str(&format!("; the kernel shows it {doing}"));
        }
        out
    }
}

/// The target's CPU share and each of its threads' scheduling over `window`.
fn measure_cpu(p: &mut Process, window: Duration, paused: &Mutex<Duration>) -> CpuUse {
    let before = p.tree();
    let threads_before = procfs::thread_samples(&before);
    let t0 = Instant::now();
    pause_for(window, paused);
    let after = p.tree();
    let threads_after = procfs::thread_samples(&after);
    let elapsed = t0.elapsed();
    let threads = procfs::thread_use(&threads_before, &threads_after, elapsed);
    CpuUse::new(
        window,
        procfs::cpu_fraction(&before, &after, elapsed),
        &threads,
    )
}

/// How many of the child processes that appeared since the first count
/// are busy: never asleep in a few samples a poll apart. A child waiting
/// for its client sleeps in recv; one that spins is always running or
/// ready to run.
fn busy_children(before: &BTreeMap<i32, usize>, now: &BTreeMap<i32, usize>) -> usize {
    let new: Vec<i32> = now
        .keys()
        .filter(|pid| !before.contains_key(pid))
        .copied()
        .collect();
    let mut awake: Vec<i32> = new.clone();
    for _ in 0..3 {
        awake.retain(|&pid| procfs::stat(pid).is_some_and(|s| !s.sleeping && !s.zombie));
        thread::sleep(Timing::RECOUNT);
    }
    awake.len()
}

/// Which processes hold the descriptors that were not given back: child
/// processes that appeared since the first count and never exited (`busy`
/// of them spinning), and the growth of the processes that were there.
/// `sockets` are the sockets each process holds now: descriptors that are
/// not sockets (the pipes a process pool keeps for its children) are not
/// connections left open, and are said apart.
fn where_they_are(
    before: &BTreeMap<i32, usize>,
    now: &BTreeMap<i32, usize>,
    sockets: &BTreeMap<i32, BTreeSet<u64>>,
    busy: usize,
) -> String {
    let new: Vec<usize> = now
        .iter()
        .filter(|(pid, _)| !before.contains_key(pid))
        .map(|(_, &n)| n)
        .collect();
    let sockets_of = |pid: &i32| sockets.get(pid).map_or(0, BTreeSet::len);
    let mut parts = Vec::new();
    if !new.is_empty() {
        let held: usize = new.iter().sum();
        let in_children: BTreeSet<u64> = now
            .keys()
            .filter(|pid| !before.contains_key(pid))
            .filter_map(|pid| sockets.get(pid))
            .flatten()
            .copied()
            .collect();
        let each = if new.iter().all(|&n| n == new[0]) {
            format!(", {} each", new[0])
        } else {
            String::new()
        };
        let each = match in_children.len() {
            s if s < held => format!("{each} ({s} of them sockets, the rest pipes or files)"),
            _ => each,
        };
        let n = new.len();
        let es = if n == 1 { "" } else { "es" };
        parts.push(match busy {
            0 => format!(
                "{n} child process{es} started since never exited, holding {held} descriptors{each}"
            ),
            b if b == n => format!(
                "{n} child process{es} started since are still running, holding {held} \
                 descriptors{each}: they spin (never asleep, always running or ready to run), \
                 so they never exit"
            ),
            b => format!(
                "{n} child process{es} started since never exited, holding {held} \
                 descriptors{each}; {b} of them spin (never asleep)"
            ),
        });
    }
    for (pid, &n) in now {
        if let Some(&was) = before.get(pid) {
            if n > was {
                let grew = n - was;
                let not_sockets = match grew.saturating_sub(sockets_of(pid)) {
                    0 => String::new(),
                    k => format!(
                        ", {k} or more of them not sockets (pipes or files, not connections)"
                    ),
                };
                parts.push(format!(
                    "{} went from {was} to {n}{not_sockets}",
                    Holder::of(*pid)
                ));
            }
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_left_by_children_that_never_exited_are_counted_apart() {
        let before = BTreeMap::from([(10, 5)]);
        let now = BTreeMap::from([(10, 5), (11, 27), (12, 27)]);
        let sockets: BTreeMap<i32, BTreeSet<u64>> =
            BTreeMap::from([(11, (100..127).collect()), (12, (200..227).collect())]);
        let where_they_are = |b: &_, n: &_, busy| where_they_are(b, n, &sockets, busy);
        assert_eq!(
            where_they_are(&before, &now, 0),
            ": 2 child processes started since never exited, holding 54 descriptors, 27 each"
        );
        assert_eq!(
            where_they_are(&before, &now, 2),
            ": 2 child processes started since are still running, holding 54 descriptors, 27 \
             each: they spin (never asleep, always running or ready to run), so they never exit"
        );
    }

    #[test]
    fn a_process_that_kept_its_connections_is_named_with_its_growth() {
        let me = std::process::id() as i32;
        let before = BTreeMap::from([(me, 5)]);
        let now = BTreeMap::from([(me, 35)]);
        let sockets = BTreeMap::from([(me, (0..31).collect())]);
        let words = where_they_are(&before, &now, &sockets, 0);
        assert!(words.contains(&format!("pid {me}")), "{words}");
        assert!(words.ends_with("went from 5 to 35"), "{words}");
    }

    #[test]
    fn descriptors_that_are_not_sockets_are_not_called_connections() {
        let me = std::process::id() as i32;
        let before = BTreeMap::from([(me, 8)]);
        let now = BTreeMap::from([(me, 68), (20, 6), (21, 6)]);
        let sockets = BTreeMap::from([
            (me, BTreeSet::from([1])),
            (20, BTreeSet::from([1, 2])),
            (21, BTreeSet::from([1, 3])),
        ]);
        let words = where_they_are(&before, &now, &sockets, 0);
        assert!(
            words.contains(
                "holding 12 descriptors, 6 each (3 of them sockets, the rest pipes or files)"
            ),
            "{words}"
        );
        assert!(
            words.ends_with("went from 8 to 68, 59 or more of them not sockets (pipes or files, not connections)"),
            "{words}"
        );
    }
}
