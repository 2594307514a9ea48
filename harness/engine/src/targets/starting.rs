//! Whether a client under test that has not shown up yet is still starting:
//! the CPU its processes used and whether they wanted a core since the last
//! look, from the kernel, for the rule [`Timing::still_starting`] applies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::kernel::procfs;
use crate::model::timing::{Deadline, Timing};
use crate::targets::target::Process;

/// Bytes a second of a given file a client is allowed to read and hash
/// before it connects: MD5 runs at 840 MB/s on one core here, and a
/// client sharing a loaded core with an unoptimised build gets a small
/// part of that.
const FILE_PACE: f64 = 20e6;

/// How often the target's threads are looked at once the accept deadline
/// has passed: a look reads a few files per thread.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// A wait for a client's first connection or datagram, begun when the
/// harness started waiting.
pub struct StartWatch {
    timing: Timing,
    /// Time and CPU a client may spend on its given file before it
    /// connects (reading it, hashing it), beyond the start-up of any
    /// program.
    extra: Duration,
    since: Instant,
    last_look: Option<Instant>,
    /// Each thread's time running plus waiting for a core, at the last look.
    wanted: BTreeMap<(i32, i32), u64>,
    verdict: bool,
    /// Whether the wait went past the accept deadline.
    stretched: bool,
}

impl StartWatch {
    pub fn new(timing: Timing) -> Self {
        StartWatch::with_file(timing, 0)
    }

    /// A watch for a client given a file of `len` bytes, which it may read
    /// whole (and hash) before it connects: it earns the time that takes
    /// at [`FILE_PACE`], in wall time and in CPU.
    pub fn with_file(timing: Timing, len: u64) -> Self {
        StartWatch {
            timing,
            extra: Duration::from_secs_f64(len as f64 / FILE_PACE),
            since: Instant::now(),
            last_look: None,
            wanted: BTreeMap::new(),
            verdict: true,
            stretched: false,
        }
    }

    /// Whether to go on waiting for `process` now.
    pub fn keep_waiting(&mut self, process: &mut Process) -> bool {
        let waited = self.since.elapsed();
        if self
            .timing
            .still_starting(waited, Duration::ZERO, false, self.extra)
        {
            return true;
        }
        if self.last_look.is_some_and(|at| at.elapsed() < LOOK_EVERY) {
            return self.verdict;
        }
        if process.exited().is_some() {
            self.verdict = false;
            return false;
        }
        let procs = process.tree();
        let ticks: u64 = procs.iter().map(|s| s.ticks).sum();
        let cpu = Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64);
        let samples = procfs::thread_samples(&procs);
        // The kernel credits a wait for a core when it ends, so a thread
        // runnable now wants one as surely as one whose time grew.
        let runnable = samples.iter().any(|t| t.status.runnable);
        let now: BTreeMap<(i32, i32), u64> = samples
            .iter()
            .map(|t| ((t.pid, t.tid), t.sched.running_ns + t.sched.waiting_ns))
            .collect();
        let first = self.last_look.is_none();
        let grew = now
            .iter()
            .any(|(id, ns)| self.wanted.get(id).is_none_or(|before| ns > before));
        // The first look past the deadline only sets the baseline: the
        // window after it says whether the program still wants a core.
        let wants_core = first || runnable || grew;
        self.wanted = now;
        self.last_look = Some(Instant::now());
        self.verdict = self
            .timing
            .still_starting(waited, cpu, wants_core, self.extra);
        self.stretched |= self.verdict && !first;
        self.verdict
    }

    /// How long the wait went on, as a miss reports it: the accept
    /// deadline, or the time waited when the wait was stretched past it.
    pub fn waited(&self) -> Duration {
        if self.stretched {
            self.since.elapsed()
        } else {
            self.timing.deadline(Deadline::Accept) + self.extra
        }
    }

    /// Words for a miss after a stretched wait, empty when it was not.
    pub fn why_longer(&self) -> &'static str {
        if self.stretched {
            " (waited past the accept deadline while the program was still starting: it \
             wanted a core on a busy machine)"
        } else {
            ""
        }
    }
}
