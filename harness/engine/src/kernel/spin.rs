//! Whether a target spins after its client left: the CPU figures of one
//! measuring window, judged by [`SpinRule`], and said in words a student
//! can act on.
//!
//! Two figures, because one is not enough on a busy machine: the share of
//! a core the whole target used, and how the busiest of its threads spent
//! the window. When many programs compete for the cores a spinning thread
//! gets little CPU, but it is still ready to run all the time and never
//! goes to sleep; a server waiting for clients sleeps.

use std::time::Duration;

use crate::kernel::procfs::ThreadUse;
use crate::model::timing::SpinRule;

/// What the target did over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuUse {
    pub window: Duration,
    /// CPU the whole target used, as a fraction of one core.
    pub share: f64,
    /// The thread to tell about: the first that spins, else the one that
    /// was runnable longest. None when no thread's counters could be read.
    pub thread: Option<ThreadUse>,
}

impl CpuUse {
    pub fn new(window: Duration, share: f64, threads: &[ThreadUse]) -> CpuUse {
        let thread = threads
            .iter()
            .find(|t| never_rests(t))
            .or_else(|| {
                threads
                    .iter()
                    .max_by(|a, b| a.runnable().total_cmp(&b.runnable()))
            })
            .copied();
        CpuUse {
            window,
            share,
            thread,
        }
    }

    pub fn spins(&self) -> bool {
        self.burns_a_core() || self.thread.as_ref().is_some_and(never_rests)
    }

    /// A share a burst of real work could explain: measure again, longer.
    pub fn is_ambiguous(&self) -> bool {
        !self.spins() && self.share >= SpinRule::AMBIGUOUS_ABOVE
    }

    fn burns_a_core(&self) -> bool {
        self.share >= SpinRule::THRESHOLD
    }

    /// The transcript's note: both figures, whatever the verdict.
    pub fn note(&self) -> String {
        format!(
            "CPU {} of one core over {}ms; {}",
            pct(self.share),
            self.window.as_millis(),
            self.thread_figures()
        )
    }

    /// Why the target is called spinning, for the student.
    pub fn spin_detail(&self) -> String {
        let ms = self.window.as_millis();
        let lead = match &self.thread {
            Some(t) if never_rests(t) => format!(
                "after its client closed, the target never rested: {}, and the whole \
                 target used {} of a core",
                self.thread_figures(),
                pct(self.share)
            ),
            _ => format!(
                "the target used {} of a core over {ms}ms after its client closed; {}",
                pct(self.share),
                self.thread_figures()
            ),
        };
        format!(
            "{lead}. A server waiting for its next client sleeps in accept or recv; one \
             that is ready to run at least {} of the time and sleeps fewer than {:.0} times a \
             second, or that uses {} of a core or more, is spinning",
            pct(SpinRule::RUNNABLE),
            SpinRule::MAX_SLEEPS_PER_SECOND,
            pct(SpinRule::THRESHOLD)
        )
    }

    fn thread_figures(&self) -> String {
        let Some(t) = &self.thread else {
            return "the threads' scheduler figures could not be read".to_string();
        };
        format!(
            "its busiest thread ({}) was ready to run {} of the {}ms (running {}, waiting \
             for a free core {}) and went to sleep {} {}",
            who(t),
            pct(t.runnable()),
            self.window.as_millis(),
            pct(t.running),
            pct(t.waiting),
            t.sleeps,
            if t.sleeps == 1 { "time" } else { "times" }
        )
    }
}

/// A thread that wanted a core most of the window and hardly ever slept.
fn never_rests(t: &ThreadUse) -> bool {
    t.runnable() >= SpinRule::RUNNABLE && t.sleeps_per_second() < SpinRule::MAX_SLEEPS_PER_SECOND
}

fn who(t: &ThreadUse) -> String {
    if t.tid == t.pid {
        format!("process {}", t.pid)
    } else {
        format!("thread {} of process {}", t.tid, t.pid)
    }
}

fn pct(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(600);

    fn thread(tid: i32, running: f64, waiting: f64, sleeps: u64) -> ThreadUse {
        ThreadUse {
            pid: 100,
            tid,
            running,
            waiting,
            sleeps,
            seconds: 0.6,
        }
    }

    fn idle() -> ThreadUse {
        thread(100, 0.0, 0.0, 0)
    }

    #[test]
    fn a_spinner_on_a_busy_machine_spins_though_it_gets_little_cpu() {
        // 44 spinners on 2 cores: running 4 %, waiting 93 %, no sleep.
        let u = CpuUse::new(WINDOW, 0.04, &[idle(), thread(101, 0.04, 0.93, 0)]);
        assert!(u.spins());
        assert_eq!(u.thread.map(|t| t.tid), Some(101));
    }

    #[test]
    fn a_spinner_on_an_idle_machine_spins() {
        assert!(CpuUse::new(WINDOW, 1.0, &[thread(100, 1.0, 0.0, 0)]).spins());
    }

    #[test]
    fn a_blocked_server_does_not_spin() {
        let u = CpuUse::new(WINDOW, 0.0, &[idle()]);
        assert!(!u.spins() && !u.is_ambiguous());
    }

    #[test]
    fn a_poller_waiting_for_a_core_does_not_spin() {
        // A 1 ms poller at 88 spinners: runnable 69 %, 295 sleeps a second.
        let u = CpuUse::new(WINDOW, 0.0, &[thread(100, 0.004, 0.686, 177)]);
        assert!(!u.spins());
    }

    #[test]
    fn a_thread_that_sleeps_rarely_but_is_mostly_idle_does_not_spin() {
        let u = CpuUse::new(WINDOW, 0.0, &[thread(100, 0.1, 0.2, 0)]);
        assert!(!u.spins());
    }

    #[test]
    fn a_target_burning_a_core_spins_even_if_its_threads_sleep() {
        // Two threads handing the interpreter lock to each other.
        let u = CpuUse::new(
            WINDOW,
            1.0,
            &[thread(101, 0.5, 0.1, 200), thread(102, 0.5, 0.1, 200)],
        );
        assert!(u.spins());
    }

    #[test]
    fn without_thread_figures_the_share_alone_judges() {
        assert!(CpuUse::new(WINDOW, 0.5, &[]).spins());
        assert!(!CpuUse::new(WINDOW, 0.01, &[]).spins());
    }

    #[test]
    fn a_middling_share_is_measured_again() {
        assert!(CpuUse::new(WINDOW, 0.1, &[idle()]).is_ambiguous());
    }

    #[test]
    fn the_spinning_thread_is_told_about_rather_than_a_busier_poller() {
        let poller = thread(101, 0.01, 0.8, 300);
        let spinner = thread(102, 0.05, 0.6, 0);
        let u = CpuUse::new(WINDOW, 0.06, &[poller, spinner]);
        assert_eq!(u.thread.map(|t| t.tid), Some(102));
    }

    #[test]
    fn the_note_gives_the_share_and_the_busiest_thread() {
        let u = CpuUse::new(WINDOW, 0.04, &[thread(101, 0.04, 0.93, 0)]);
        assert_eq!(
            u.note(),
            "CPU 4% of one core over 600ms; its busiest thread (thread 101 of process 100) \
             was ready to run 97% of the 600ms (running 4%, waiting for a free core 93%) \
             and went to sleep 0 times"
        );
    }

    #[test]
    fn a_miss_on_a_busy_machine_says_the_thread_never_rested() {
        let u = CpuUse::new(WINDOW, 0.04, &[thread(100, 0.04, 0.93, 0)]);
        let d = u.spin_detail();
        assert!(
            d.starts_with("after its client closed, the target never rested"),
            "{d}"
        );
        assert!(
            d.contains("ready to run 97%") && d.contains("used 4% of a core"),
            "{d}"
        );
        assert!(d.contains("is spinning"), "{d}");
    }

    #[test]
    fn a_miss_on_share_alone_leads_with_the_share() {
        let u = CpuUse::new(WINDOW, 0.98, &[thread(101, 0.5, 0.1, 200)]);
        assert!(u
            .spin_detail()
            .starts_with("the target used 98% of a core over 600ms"));
    }
}
