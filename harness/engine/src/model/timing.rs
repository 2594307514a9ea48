//! Every deadline and deliberate pause the harness uses, in one place.
//!
//! The figures rest on measurements of loopback sockets on 2-core Linux
//! machines, idle and with three CPU-bound processes competing, each
//! recorded with how it was measured in `docs/LOOPBACK-FACTS.md`. Deadlines bound how
//! long the harness waits for something that should happen; `--timeout-scale`
//! stretches them for slow targets (a JVM, a machine under heavy load).
//! Pauses shape the traffic itself and are not scaled: stretching them would
//! change what the target sees, not how patient the harness is.

use std::fmt;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// A bounded wait for something the target should do.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Deadline {
    /// A reply to a request. Loopback replies come back in well under a
    /// millisecond idle and within tens of milliseconds under load; 2 s is a
    /// margin of about 100x for interpreted targets on a loaded machine.
    /// For a long answer it is the longest pause between two pieces (a
    /// stall), and the whole answer is given more time as it comes: see
    /// [`AnswerPace`].
    Reply,
    /// End of stream after the harness half-closes. A correct peer's EOF was
    /// seen within 2.5 ms even under load: 1 s is a 400x margin.
    Eof,
    /// Quiet time after an exact message, to see that nothing follows it.
    /// Bytes written by one `send` arrive together on loopback, so a trailing
    /// newline shows at once; 150 ms covers a scheduler delay under load.
    /// Also how long the rest of a wrong answer is waited for where the
    /// kernel cannot show that the target has nothing left to send.
    Quiet,
    /// A port in LISTEN state after launch. Python listens after 40 to 75 ms,
    /// a JVM after about a second: 10 s covers both on a loaded machine.
    Listen,
    /// A client under test connecting to the harness after it was started,
    /// or sending its first datagram: the program has to start first.
    Accept,
    /// A client's process exiting after its input ended.
    Exit,
    /// A reply that would show that a second client is served concurrently.
    /// Only an observation: a miss is not a failure.
    Concurrent,
    /// Text appearing on the target's standard output.
    Output,
    /// How long a client whose reply was lost is given to show it goes on
    /// (sends its next datagram). A client with a receive timeout does so
    /// once the timeout passes: course clients set 1 or 2 s. Only an
    /// observation: a client that waits forever is not failed for it.
    Recover,
    /// The target closing what its clients closed (its descriptor count
    /// settling). A correct server closes within a millisecond of reading
    /// end of stream; 1 s leaves a wide margin under load.
    Settle,
    /// The target reading a piece of a cut before the next is written, as
    /// the kernel shows it. The course's Python server was seen to read a
    /// piece 0.1 ms after it was written idle (0.43 ms at most), within
    /// 4 to 8 ms with two busy loops on the two cores, 20 ms with three and
    /// 32 ms with eight: 500 ms is 25 times the loaded figure. A piece still
    /// unread then is marked so and the cut is reported as not made; only a
    /// target that stops reading pays it, once per cut.
    Read,
    /// How long after the last datagram that arrived the harness still
    /// watches for one more, where a check says nothing else may come: a
    /// reply repeated by a timer or by a second worker comes hundreds of
    /// milliseconds after the first, long after any scheduler delay (the
    /// quiet window covers those). A repeat from a 300 ms timer arrived
    /// 300 to 367 ms after the first under load: 500 ms catches it with
    /// over 130 ms to spare.
    Late,
}

impl Deadline {
    fn base(self) -> Duration {
        match self {
            Deadline::Reply => Duration::from_secs(2),
            Deadline::Eof => Duration::from_secs(1),
            Deadline::Quiet => Duration::from_millis(150),
            Deadline::Listen => Duration::from_secs(10),
            Deadline::Accept => Duration::from_secs(5),
            Deadline::Exit => Duration::from_secs(2),
            Deadline::Concurrent => Duration::from_millis(300),
            Deadline::Output => Duration::from_secs(2),
            Deadline::Settle => Duration::from_secs(1),
            Deadline::Recover => Duration::from_secs(3),
            Deadline::Read => Duration::from_millis(500),
            Deadline::Late => Duration::from_millis(500),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Deadline::Reply => "reply",
            Deadline::Eof => "end of stream",
            Deadline::Quiet => "quiet",
            Deadline::Listen => "listen",
            Deadline::Accept => "accept",
            Deadline::Exit => "exit",
            Deadline::Concurrent => "concurrent reply",
            Deadline::Output => "output",
            Deadline::Settle => "settle",
            Deadline::Recover => "recover",
            Deadline::Read => "read",
            Deadline::Late => "late",
        }
    }
}

/// A deliberate pause: time itself is the subject, or the kernel cannot
/// show what the harness would rather wait for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Pause {
    /// Between two writes meant to arrive as two receives, where the kernel
    /// cannot show whether the target read the first (a `--target` out of
    /// its sight). With the peer already blocked in its receive, a 1 ms
    /// pause split 100 % of writes idle and loaded, and 20 ms kept writes
    /// apart in 50 of 50 runs; 50 ms leaves a wide margin. A peer still
    /// busy is not helped by any pause: only the kernel's view says so.
    Split,
    /// Lets the target act on what it was just sent (a close, a reset)
    /// before the next observation, where the harness cannot watch the
    /// target's process settle (a `--target` it did not start).
    Settle,
    /// An explicit pause in milliseconds.
    Millis(u32),
}

impl Pause {
    pub fn duration(self) -> Duration {
        match self {
            Pause::Split => Duration::from_millis(50),
            Pause::Settle => Duration::from_millis(100),
            Pause::Millis(ms) => Duration::from_millis(u64::from(ms)),
        }
    }
}

impl fmt::Display for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.duration().as_millis())
    }
}

/// Thresholds for judging a target's CPU use after its client closed.
///
/// Two rules; either one calls the target spinning.
///
/// **A thread that never rests.** A spinning thread is *runnable* (running,
/// or ready and waiting for a free core) the whole window and never goes to
/// sleep, however busy the machine: with 16, 44 and 88 processes spinning on
/// the 2 cores, spinning servers (plain, forked, printing into a drained
/// pipe, thread per client) were runnable 100 % of a 600 ms window and
/// slept 0 times, though running only 10-12 %, 4-5 % and 2-3 % of it. A
/// server blocked in `accept`/`recv` is runnable 0 %. A server polling with
/// a `select` timeout is runnable more as load grows (a 1 ms poller: 1.5-3.5 %
/// alone, 69-70 % at 88 spinners, 74 % at most) because each wake-up waits
/// for a core, but it sleeps at every turn: 82 to 925 times a second, the
/// fewest for a 10 ms timeout at 88 spinners. (`docs/LOOPBACK-FACTS.md`,
/// "Telling a spinner from a poller"; `scripts/spin_facts.py` measures them.)
///
/// **A target that burns a core.** A spin burns 98 to 105 % of a core idle
/// and 41 to 50 % when three CPU-bound processes compete for the two cores;
/// idle, closed and never-closing correct servers measure 0.0 %, a 1 ms
/// poller at most 3.3 %. 20 % of one core sits at half the loaded spinner's
/// lowest figure and far above zero. Under heavier load a spinner's share
/// falls below it (1.5 to 13 % at 16 to 88 spinners), which the thread rule
/// covers; the share still catches a spin no single thread shows: two
/// Python threads spinning together hand the interpreter lock to each other
/// and sleep 87 to 1190 times a second each, yet burn 98 to 100 % of a core.
pub struct SpinRule;

impl SpinRule {
    /// Fraction of one core at or above which the target is spinning.
    pub const THRESHOLD: f64 = 0.20;
    /// Fraction of the window a thread must be runnable to be spinning. A
    /// thread ready at the start that never slept reads 100 % (see
    /// `procfs::thread_use`); other threads are read from the kernel's
    /// counters, which credit a wait only when it ends and so read a queued
    /// spinner anywhere from 34 % to 124 %. A blocked server reads 0 %.
    pub const RUNNABLE: f64 = 0.5;
    /// A thread that sleeps this often or more is waiting for something, not
    /// spinning. Spinners slept 0 times a second; pollers 82 or more. To be
    /// called spinning a 10 ms poller would have to wait 25 ms for a core
    /// at each wake-up; it waited about 2 ms at 88 spinners.
    pub const MAX_SLEEPS_PER_SECOND: f64 = 20.0;
    /// How long CPU is measured. At 100 ticks a second the threshold is
    /// 12 ticks in this window, the loaded spinner's lowest figure 24.
    pub const WINDOW: Duration = Duration::from_millis(600);
    /// A share between these two is re-measured once over a second window
    /// before it is judged, so one burst of real work is not called a spin.
    pub const AMBIGUOUS_ABOVE: f64 = 0.05;
    /// The window of that second measurement.
    pub const SECOND_WINDOW: Duration = Duration::from_secs(1);
}

// The share threshold keeps a factor of two below the loaded spinner's
// lowest measured figure (41 %), and a re-measured band sits below it.
const _: () = assert!(SpinRule::THRESHOLD * 2.0 <= 0.41);
const _: () = assert!(SpinRule::AMBIGUOUS_ABOVE < SpinRule::THRESHOLD);
// The runnable threshold keeps a factor of two below a spinner (100 %)
// and sits far above a blocked server (0 %).
const _: () = assert!(SpinRule::RUNNABLE * 2.0 <= 1.0);
const _: () = assert!(SpinRule::RUNNABLE > 0.0);
// The sleep bound keeps a factor of four below the fewest sleeps of a
// poller (82 a second) and stays above a spinner's (none).
const _: () = assert!(SpinRule::MAX_SLEEPS_PER_SECOND * 4.0 <= 82.0);
const _: () = assert!(SpinRule::MAX_SLEEPS_PER_SECOND > 0.0);
// The bound and the window leave a spinner room for a few sleeps (a full
// output pipe, a page fault) before it reads as a poller.
const _: () = assert!(
    SpinRule::MAX_SLEEPS_PER_SECOND * (SpinRule::WINDOW.as_millis() as f64) / 1000.0 >= 10.0
);

/// How many datagrams a check may send back to back without risking a
/// loss that is not the target's doing.
///
/// Loopback drops a datagram only when the receiver's buffer is full. A
/// Python server reading `recvfrom(1024)` with the default buffer (212,992
/// bytes, counted with the kernel's overhead per datagram) took, in every
/// one of 5 bursts, idle and with two busy loops competing for the two
/// cores: 256 datagrams of 0 or 64 bytes (the most tried), 64 of 1,024
/// bytes, 48 of 2,048, 12 of 8,192 and 3 of 65,507
/// (`scripts/udp_loss_facts.py`; `docs/LOOPBACK-FACTS.md`).
pub struct DatagramBurst;

impl DatagramBurst {
    /// Most small datagrams (up to 64 bytes) a check sends before it reads
    /// the replies: 8, a 32x margin below the 256 measured.
    pub const SMALL: usize = 8;
    /// Most datagrams of 65,507 bytes a check sends before it reads: one,
    /// with a small one after it, 3 having been measured.
    pub const LARGEST: usize = 1;
}

const _: () = assert!(DatagramBurst::SMALL * 32 <= 256);
const _: () = assert!(DatagramBurst::LARGEST + 1 < 3);

/// How long an answer of many bytes is waited for: as long as it keeps
/// coming, up to the time it takes at the slowest steady pace allowed.
///
/// A correct server that spends 20 to 25 ms on each receive of 512 bytes
/// (it writes a log line of each) answers a message of 100 KiB whole, at a
/// steady 20 KB/s, in about 5 s: far past the 2 s a short reply is given,
/// though nothing is wrong with it. So the wait for an answer grows with
/// what arrived: at any moment it may go on while nothing is missing for
/// longer than the reply deadline (no stall), and while the bytes so far
/// keep up with [`AnswerPace::SLOWEST`] after the reply deadline. A short
/// reply is judged as before (12 bytes add 3 ms), a 100 KiB answer is given
/// at most 2 + 25.6 s, and a trickle of one byte a second misses by the
/// reply deadline, as it did.
pub struct AnswerPace;

impl AnswerPace {
    /// Bytes a second: a fifth of the slow correct server's 20 KB/s.
    pub const SLOWEST: f64 = 4_000.0;
}

const _: () = assert!(AnswerPace::SLOWEST * 5.0 <= 20_000.0);

/// How long a program under test is given to start: a client's first
/// connection or datagram comes only once its program runs.
///
/// Idle, CPython connects 40 to 75 ms after it is started and a JVM after
/// about a second, so [`Deadline::Accept`] is a wide margin. On a machine
/// with more runnable processes than cores a program can sit for seconds
/// waiting for a core before it runs a line: two correct Python clients
/// once missed the 5 s deadline that way. So past the deadline the wait
/// goes on while the program still wants a core (it ran, or waited to run,
/// since the last look) and has used less CPU than a slow starter needs,
/// up to [`StartPace::STRETCH`] times the deadline. A program that sleeps,
/// waits for input or has spent its start-up CPU is judged at the deadline
/// as before.
pub struct StartPace;

impl StartPace {
    /// CPU time a program may use before it connects: CPython needs 20 to
    /// 60 ms of it, a JVM about 1 s spread over its threads.
    pub const CPU: Duration = Duration::from_secs(3);
    /// The longest wait, as a multiple of the accept deadline.
    pub const STRETCH: f64 = 4.0;
}

/// The harness's patience for one run: deadlines scaled by `--timeout-scale`.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    scale: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { scale: 1.0 }
    }
}

impl Timing {
    /// `scale` must be finite and positive; the command line validates it.
    pub fn new(scale: f64) -> Self {
        Timing { scale }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    pub fn deadline(&self, d: Deadline) -> Duration {
        d.base().mul_f64(self.scale)
    }

    /// How much longer than its first deadline an answer is waited for once
    /// `received` bytes of it arrived: their time at the slowest pace
    /// allowed ([`AnswerPace`]), stretched like every deadline.
    pub fn earned(&self, received: usize) -> Duration {
        Duration::from_secs_f64(received as f64 / AnswerPace::SLOWEST * self.scale)
    }

    /// Whether a program that has not yet shown up after `waited` is still
    /// given time: before the accept deadline always, and after it while it
    /// still wants a core and has used less than its start-up CPU
    /// ([`StartPace`]). `work` is what it may do first besides starting
    /// (read and hash a file it was given), in wall time and in CPU: it is
    /// added to both, and stretched with the deadline, since a starved
    /// program is as slow at it as at starting.
    pub fn still_starting(
        &self,
        waited: Duration,
        cpu: Duration,
        wants_core: bool,
        work: Duration,
    ) -> bool {
        let deadline = self.deadline(Deadline::Accept) + work;
        waited < deadline
            || (wants_core
                && cpu < StartPace::CPU.mul_f64(self.scale) + work
                && waited < deadline.mul_f64(StartPace::STRETCH))
    }

    /// How often readiness and exit are polled: often enough to add at most
    /// a few milliseconds to a check, rarely enough to cost nothing.
    pub const POLL: Duration = Duration::from_millis(5);

    /// How often to look at first for a target's answer to the end of a
    /// check: a correct server closes what the harness closed well under a
    /// millisecond later.
    pub const FIRST_POLL: Duration = Duration::from_micros(200);

    /// How often to poll right after a kill: a SIGKILLed process is gone
    /// within a few milliseconds, and every check waits for it.
    pub const FAST_POLL: Duration = Duration::from_millis(1);

    /// The first interval between two looks at whether the target read a
    /// piece of a cut; it doubles up to [`Timing::CONFIRM_POLL`]. An idle
    /// Python server reads a piece about 0.1 ms after it is written, so the
    /// first looks come that soon; one look (a lookup of one socket by its
    /// addresses) costs the harness microseconds.
    pub const CONFIRM_FIRST_POLL: Duration = Duration::from_micros(20);

    /// The longest interval between two looks at whether the target read a
    /// piece of a cut: under load a read waits for the scheduler's 4 ms
    /// slices, and 1 ms adds at most a quarter of one.
    pub const CONFIRM_POLL: Duration = Duration::from_millis(1);

    /// How long a target must be seen asleep (state S in every process),
    /// holding a connection the harness closed, before the end of a check
    /// stops waiting for it: a process printing a traceback and exiting
    /// runs or waits to run until it is gone, one blocked in accept or recv
    /// sleeps. 30 ms is many scheduler slices on a loaded machine, and
    /// costs only the checks of servers that never close.
    pub const ASLEEP_FOR: Duration = Duration::from_millis(30);

    /// How long, at the end of a connection, the harness lets a server
    /// that is still running close its end first (a server that closes
    /// after its reply is doing so). Two closes that cross leave TIME_WAIT
    /// on the server's port as well as the harness's. Idle, a Python
    /// server closes within a millisecond of its reply; under load it
    /// waits for a core for tens of milliseconds. Only a server that keeps
    /// running without closing pays it; one blocked in recv is not waited
    /// for at all.
    pub const CLOSE_FIRST: Duration = Duration::from_millis(250);

    /// How many times a spinning thread's system call is read, 1 ms apart,
    /// to say what it is busy doing: a receive loop on a closed connection
    /// is in recv most of the time, so a few reads find it.
    pub const BUSY_SAMPLES: u32 = 8;

    /// How often to recount a target's descriptors while they settle.
    pub const RECOUNT: Duration = Duration::from_millis(20);

    /// How long a killed target may take to be reaped before the harness
    /// reports it as unkillable.
    pub const REAP: Duration = Duration::from_secs(5);

    /// How long to wait for the harness's TIME_WAIT left on a target's
    /// port to end once knocked on: measured gone 2.5 ms after the knock.
    pub const TIME_WAIT_CLEAR: Duration = Duration::from_millis(200);

    /// How long to let a target's output pipes close after it exited, so
    /// a stderr tail is whole. Pipes close with the last process holding
    /// them, within milliseconds of a kill.
    pub const OUTPUT_CLOSE: Duration = Duration::from_millis(500);

    /// The longest a generated check may spend shrinking a failure. A
    /// shrinking step is one short exchange on a new connection; the walk
    /// to the smallest case in the project's shrinking test takes 0.6 s on
    /// a quiet machine and about 3 s with the machine's two cores shared by
    /// a dozen other jobs, so 30 s leaves a wide margin for a slow target.
    /// The number of steps is capped as well (64).
    pub fn shrink_budget(&self) -> Duration {
        Duration::from_secs(30).mul_f64(self.scale)
    }
}

/// Sleeps deliberately and adds the time slept to `total`.
pub fn pause_for(d: Duration, total: &Mutex<Duration>) {
    if d.is_zero() {
        return;
    }
    let t0 = Instant::now();
    thread::sleep(d);
    if let Ok(mut t) = total.lock() {
        *t += t0.elapsed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_but_pauses_do_not() {
        let t = Timing::new(3.0);
        assert_eq!(t.deadline(Deadline::Eof), Duration::from_secs(3));
        assert_eq!(Pause::Split.duration(), Duration::from_millis(50));
    }

    #[test]
    fn a_starving_program_is_waited_for_past_the_accept_deadline_but_not_forever() {
        let t = Timing::default();
        let s = Duration::from_secs;
        let little = Duration::from_millis(50);
        let none = Duration::ZERO;
        // Before the deadline, whatever it does.
        assert!(t.still_starting(s(4), little, false, none));
        // After it: only while it still wants a core, with CPU to spare.
        assert!(t.still_starting(s(6), little, true, none));
        assert!(!t.still_starting(s(6), little, false, none));
        assert!(!t.still_starting(s(6), s(4), true, none));
        // And never past the stretch.
        assert!(!t.still_starting(s(21), little, true, none));
        // --timeout-scale stretches it all.
        assert!(Timing::new(2.0).still_starting(s(21), s(4), true, none));
    }

    #[test]
    fn work_before_starting_adds_to_the_deadline_and_stretches_with_it() {
        let t = Timing::default();
        let s = Duration::from_secs;
        let hashing = s(5);
        // Its time and its CPU come on top of the start's.
        assert!(t.still_starting(s(9), s(6), false, hashing));
        assert!(!t.still_starting(s(11), s(1), false, hashing));
        assert!(t.still_starting(s(11), s(7), true, hashing));
        // A starved program is as slow at it as at starting: four times.
        assert!(t.still_starting(s(39), s(1), true, hashing));
        assert!(!t.still_starting(s(41), s(1), true, hashing));
    }

    #[test]
    fn split_pause_keeps_the_measured_margin() {
        // 20 ms kept writes apart in every measured run.
        assert!(Pause::Split.duration() >= Duration::from_millis(20) * 2);
    }

    #[test]
    fn a_long_answer_earns_time_at_the_slowest_pace_and_a_short_one_hardly_any() {
        let t = Timing::default();
        assert!(t.earned(12) < Duration::from_millis(5));
        // 100 KiB at the slow server's 20 KB/s takes about 5 s: well within.
        assert!(t.earned(102_400) >= Duration::from_secs(5) * 4);
        assert_eq!(Timing::new(2.0).earned(4_000), Duration::from_secs(2));
    }

    #[test]
    fn the_read_deadline_keeps_the_measured_margin() {
        // A loaded Python server read a piece within 32 ms at most.
        assert!(Timing::default().deadline(Deadline::Read) >= Duration::from_millis(32) * 10);
    }
}
