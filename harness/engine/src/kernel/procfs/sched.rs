//! How each thread of a target was scheduled over a window: running,
//! waiting for a core, and how often it went to sleep, from
//! `/proc/PID/task/TID/schedstat` and `status`. What the spin rule judges.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

use super::Stat;

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

/// Whether every thread of every process of `procs` is asleep waiting for
/// an event (state S: blocked in a receive, a read of its input, a lock),
/// as `/proc/PID/task/TID/stat` shows it. A process's own state is its
/// main thread's only: a thread taking a datagram while the main thread
/// waits for input shows in its task alone. A thread that ends while it
/// is read is left out.
pub fn threads_asleep(procs: &[Stat]) -> bool {
    procs.iter().filter(|s| !s.zombie).all(|s| {
        let Ok(dir) = fs::read_dir(format!("/proc/{}/task", s.pid)) else {
            // Gone since it was listed: nothing of it runs.
            return true;
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| {
                fs::read_to_string(e.path().join("stat"))
                    .ok()
                    .and_then(|t| super::parse_stat(&t))
            })
            .all(|t| t.sleeping || t.zombie)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::procfs::tree;

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

    /// A Python process whose main thread sleeps, with a second thread
    /// that sleeps too or `spins`; ended when dropped.
    struct Threads(std::process::Child);

    impl Threads {
        fn start(spins: bool) -> Threads {
            let work = if spins {
                "while True: pass"
            } else {
                "time.sleep(30)"
            };
            let code = format!(
                "import threading, time\n\
                 def work():\n    {work}\n\
                 threading.Thread(target=work, daemon=True).start()\n\
                 time.sleep(30)\n"
            );
            let child = std::process::Command::new("python3")
                .args(["-c", &code])
                .spawn()
                .unwrap();
            Threads(child)
        }

        fn asleep_within(&self, wait: Duration) -> bool {
            let pid = self.0.id() as i32;
            let deadline = std::time::Instant::now() + wait;
            loop {
                let procs: Vec<Stat> = crate::kernel::procfs::stat(pid).into_iter().collect();
                let two = fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
                if two == 2 && threads_asleep(&procs) {
                    return true;
                }
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    impl Drop for Threads {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn threads_that_all_wait_are_asleep() {
        assert!(Threads::start(false).asleep_within(Duration::from_secs(5)));
    }

    #[test]
    fn a_busy_thread_beside_a_sleeping_main_thread_is_not_asleep() {
        assert!(!Threads::start(true).asleep_within(Duration::from_millis(500)));
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
