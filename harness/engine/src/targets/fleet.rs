//! The targets of one run, and the interrupt that ends every run's.
//!
//! A run owns a [`Fleet`]: every target it starts goes through it, and the
//! fleet records their process groups and every process ever seen in their
//! trees. Ending a fleet ends those and nothing else, so two runs in one
//! process (a grader judging submissions side by side) never end each
//! other's targets, and a grader's own helper processes are left alone.
//!
//! The harness is the subreaper of its descendants, so a daemon that
//! escapes its target's group (`setsid`, then a second fork) is re-parented
//! to the harness rather than to init, where it can still be found. Such a
//! process belongs to the fleet whose mark it carries in its environment
//! (every target starts with its fleet's [`MARK_VAR`], and what it forks
//! inherits it); when its environment cannot be read or holds no mark, it
//! belongs to the fleet that saw it, or the leader of its group or session,
//! in one of its trees.
//!
//! Every fleet alive is listed process-wide for one reason: Ctrl-C and
//! SIGTERM end every run's targets. The handler marks the interrupt, ends
//! each fleet's targets and returns; the runs stop at their next check, and
//! the program exits with [`crate::model::exit::INTERRUPTED`] from its `main` once
//! they have returned. Starting a target and the interrupt exclude each
//! other: no target starts once the interrupt has begun, and none being
//! started as it begins is missed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, RwLock, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::kernel::procfs::{self, Stat};
use crate::model::timing::Timing;

/// The environment variable that carries a fleet's mark into every process
/// of its targets.
pub const MARK_VAR: &str = "SOCKSPEC_RUN";

/// The targets of one run. A clone is another handle to the same fleet;
/// when the last handle goes (the run's config and every process it
/// started), whatever is left of its targets is ended.
#[derive(Clone)]
pub struct Fleet(Arc<Members>);

struct Members {
    /// This fleet's value of [`MARK_VAR`]: the harness's pid and a serial.
    mark: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The root of every target started and not yet reaped. A root's pid is
    /// also its group's id, and cannot be reused while the root is unreaped,
    /// so signalling the group then reaches the target alone.
    roots: BTreeSet<i32>,
    /// Every process seen in this fleet's trees, by pid and start time (a
    /// pid alone may belong to another process by now).
    seen: BTreeSet<(i32, u64)>,
    /// The scratch directory of each target not yet ended, by root.
    scratch: BTreeMap<i32, PathBuf>,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// A fleet for a new run. Makes the harness the subreaper of its
    /// descendants, so what a target forks stays findable.
    pub fn new() -> Fleet {
        static SUBREAPER: Once = Once::new();
        SUBREAPER.call_once(|| {
            // SAFETY: prctl with these arguments only changes this process's flags.
            unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
            }
        });
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let members = Arc::new(Members {
            mark: format!(
                "{}.{}",
                std::process::id(),
                SERIAL.fetch_add(1, Ordering::Relaxed)
            ),
            state: Mutex::new(State::default()),
        });
        let mut all = runs().lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&members));
        Fleet(members)
    }

    /// The value of [`MARK_VAR`] this fleet's targets carry.
    pub fn mark(&self) -> &str {
        &self.0.mark
    }

    /// How many targets are started and not yet reaped.
    pub fn live(&self) -> usize {
        self.0.lock().roots.len()
    }

    /// Starts `cmd` (already made the leader of a group of its own) as a
    /// target of this fleet, with `scratch` its scratch directory; refused
    /// once the harness is interrupted.
    pub(crate) fn start(&self, cmd: &mut Command, scratch: &Path) -> io::Result<Child> {
        cmd.env(MARK_VAR, &self.0.mark);
        // Held from fork to registration: an interrupt waits for it, so it
        // never misses a target being started, and none starts after it.
        let _starting = gate().read().unwrap_or_else(|e| e.into_inner());
        if interrupted() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the harness was interrupted: no target starts any more",
            ));
        }
        let child = cmd.spawn()?;
        let root = child.id() as i32;
        let mut s = self.0.lock();
        s.roots.insert(root);
        s.scratch.insert(root, scratch.to_path_buf());
        Ok(child)
    }

    /// Records processes seen in one of this fleet's trees.
    pub(crate) fn saw(&self, procs: &[Stat]) {
        self.0
            .lock()
            .seen
            .extend(procs.iter().map(|s| (s.pid, s.start)));
    }

    /// Forgets a root once it is reaped: its pid may be reused from now on.
    pub(crate) fn reaped(&self, root: i32) {
        self.0.lock().roots.remove(&root);
    }

    /// Forgets a target's scratch directory once it is removed.
    pub(crate) fn scratch_removed(&self, root: i32) {
        self.0.lock().scratch.remove(&root);
    }

    /// Ends what is left of this fleet's targets: every group whose root is
    /// unreaped, every process seen in a tree that is still the same
    /// process, the daemons that escaped them, and their scratch
    /// directories. What the harness runs besides is left alone.
    pub fn end_all(&self) {
        self.0.end_all();
    }

    /// Ends the fleet's processes that escaped their target's group and
    /// were re-parented to the harness, and reaps them.
    pub fn end_orphans(&self) {
        self.0.end_orphans();
    }
}

impl Members {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn end_all(&self) {
        let (roots, seen) = {
            let s = self.lock();
            (s.roots.clone(), s.seen.clone())
        };
        for &root in &roots {
            // SAFETY: the root is unreaped, so its pid is still the group's
            // id and the group is this target's.
            unsafe {
                libc::kill(-root, libc::SIGKILL);
            }
        }
        let stats = procfs::all_stats();
        let ours = procfs::family_in(&stats, |s| {
            roots.contains(&s.pid) || seen.contains(&(s.pid, s.start))
        });
        for s in &ours {
            // SAFETY: a process of this fleet's trees, just listed.
            unsafe {
                libc::kill(s.pid, libc::SIGKILL);
            }
        }
        self.end_orphans();
        let dirs = std::mem::take(&mut self.lock().scratch);
        for dir in dirs.values() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn end_orphans(&self) {
        let me = std::process::id() as i32;
        let (roots, seen) = {
            let s = self.lock();
            (s.roots.clone(), s.seen.clone())
        };
        let stats = procfs::all_stats();
        let now: HashMap<i32, u64> = stats.iter().map(|s| (s.pid, s.start)).collect();
        // A group or session leader seen in a tree, gone since or still the
        // same process: the orphan was forked by this fleet's target.
        let made_here = |leader: i32| {
            seen.range((leader, 0)..=(leader, u64::MAX))
                .any(|&(_, start)| now.get(&leader).is_none_or(|&n| n == start))
        };
        let orphans: Vec<&Stat> = stats
            .iter()
            .filter(|s| s.ppid == me && !roots.contains(&s.pid))
            .filter(|s| match procfs::environ_var(s.pid, MARK_VAR) {
                Some(mark) => mark == self.mark,
                None => {
                    seen.contains(&(s.pid, s.start)) || made_here(s.session) || made_here(s.pgid)
                }
            })
            .collect();
        if orphans.is_empty() {
            return;
        }
        let heads: BTreeSet<i32> = orphans.iter().map(|s| s.pid).collect();
        let doomed = procfs::family_in(&stats, |s| heads.contains(&s.pid));
        for s in &doomed {
            // SAFETY: an orphan of this fleet, or what it forked.
            unsafe {
                libc::kill(s.pid, libc::SIGKILL);
            }
        }
        // The orphans first: what they forked is re-parented to the harness
        // once they are reaped.
        let order = orphans.iter().map(|s| (s.pid, s.start)).chain(
            doomed
                .iter()
                .filter(|s| !heads.contains(&s.pid))
                .map(|s| (s.pid, s.start)),
        );
        reap(order);
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        self.end_all();
    }
}

/// SIGKILLs a target: its group while its root is unreaped (`group_held`),
/// every process of its tree just listed, and every process seen in it
/// before that is still the same process.
pub(crate) fn signal(root: i32, group_held: bool, procs: &[Stat], known: &BTreeMap<i32, u64>) {
    // SAFETY: signalling has no memory effects; the group is the target's
    // own while its root is unreaped, and the pids were seen in its tree.
    unsafe {
        if group_held {
            libc::kill(-root, libc::SIGKILL);
        }
        for s in procs {
            libc::kill(s.pid, libc::SIGKILL);
        }
    }
    for (&pid, &start) in known {
        if procfs::stat(pid).is_some_and(|s| s.start == start) {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Reaps processes re-parented to the harness (it is their subreaper) once
/// they exit, so no zombie outlives a check. A pid that is not the
/// harness's child is left alone (waitpid says ECHILD at once), and so is a
/// pid that names another process by now.
pub(crate) fn reap(procs: impl Iterator<Item = (i32, u64)>) {
    let give_up = Instant::now() + Timing::REAP;
    for (pid, start) in procs {
        loop {
            // Gone, or another process by now (its pid was reused).
            if procfs::stat(pid).is_none_or(|s| s.start != start) {
                break;
            }
            // SAFETY: waits for one specific pid without blocking.
            let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            if r != 0 || Instant::now() >= give_up {
                break;
            }
            // Alive or not yet re-parented: it was just SIGKILLed.
            thread::sleep(Timing::FAST_POLL);
        }
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C or SIGTERM arrived. Every run's targets are then ended
/// (or being ended), no target starts any more, and what the interrupt
/// caused is not the targets' doing: nothing should be reported of it.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Held to start a target (shared), and by the interrupt (exclusive).
fn gate() -> &'static RwLock<()> {
    static GATE: OnceLock<RwLock<()>> = OnceLock::new();
    GATE.get_or_init(|| RwLock::new(()))
}

/// Every fleet alive, for the interrupt.
fn runs() -> &'static Mutex<Vec<Weak<Members>>> {
    static RUNS: OnceLock<Mutex<Vec<Weak<Members>>>> = OnceLock::new();
    RUNS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Set once the interrupt has ended every run's targets.
fn handled() -> &'static (Mutex<bool>, Condvar) {
    static HANDLED: OnceLock<(Mutex<bool>, Condvar)> = OnceLock::new();
    HANDLED.get_or_init(|| (Mutex::new(false), Condvar::new()))
}

/// On Ctrl-C and SIGTERM: marks the interrupt and ends every run's
/// targets. The handler returns; the program exits from `main` once its
/// runs have returned (see [`await_interrupt_handled`]).
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(interrupt);
}

fn interrupt() {
    // Set before the kills, so whatever the kills cause is seen by the
    // rest of the harness as the interrupt, not as a target's doing.
    INTERRUPTED.store(true, Ordering::SeqCst);
    {
        let _no_starts = gate().write().unwrap_or_else(|e| e.into_inner());
        let fleets: Vec<Arc<Members>> = runs()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for members in fleets {
            members.end_all();
        }
    }
    let (done, ended) = handled();
    *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    ended.notify_all();
}

/// Waits, at most `within`, until the harness has no child process left,
/// reaping each as it exits; says whether none is left. For the end of the
/// program, once every target was ended: a process killed just as its
/// parent died is re-parented to the harness (their subreaper) after its
/// target's tree was last listed, and exiting without reaping it would
/// hand it to init as a zombie.
pub fn reap_children(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        // SAFETY: reaps any one child of this process, without blocking.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if r > 0 {
            continue;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // ECHILD: no child left.
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        // Children left, none exited yet: they were just SIGKILLed.
        thread::sleep(Timing::FAST_POLL);
    }
}

/// Waits, at most `within`, until the interrupt has ended every run's
/// targets; says whether it has.
pub fn await_interrupt_handled(within: Duration) -> bool {
    let (done, ended) = handled();
    let deadline = Instant::now() + within;
    let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
    while !*d {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        d = ended
            .wait_timeout(d, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::transport::Transport;
    use crate::targets::target::{Launch, Process, Workdir};

    fn launch(cmd: &str) -> Launch {
        Launch {
            command: cmd.to_string(),
            port: Some(4242),
            stdin: false,
            transport: Transport::Stream,
            workdir: Workdir::Here,
            file: None,
            confine: None,
        }
    }

    fn alive(pid: i32) -> bool {
        procfs::stat(pid).is_some_and(|s| !s.zombie)
    }

    /// Waits for the first line a target prints: a pid.
    fn printed_pid(p: &Process) -> i32 {
        let end = p
            .stdout()
            .wait_for(b"\n", 0, Instant::now() + Duration::from_secs(5))
            .expect("a pid printed");
        String::from_utf8_lossy(&p.stdout().since(0)[..end as usize])
            .trim()
            .parse()
            .expect("a pid")
    }

    /// A target whose daemon calls setsid and is re-parented to the harness
    /// when the subshell that started it exits; the daemon's pid is printed.
    fn with_escaped_daemon(fleet: &Fleet) -> (Process, i32) {
        let p = fleet
            .spawn(&launch(
                "(setsid sh -c 'echo $$; exec sleep 300' &); exec sleep 300",
            ))
            .unwrap();
        let daemon = printed_pid(&p);
        let me = std::process::id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while procfs::stat(daemon).is_none_or(|s| s.ppid != me) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(procfs::stat(daemon).map(|s| s.ppid), Some(me));
        (p, daemon)
    }

    #[test]
    fn a_process_the_harness_started_itself_outlives_the_end_of_a_fleet() {
        let mut helper = Command::new("sleep").arg("30").spawn().unwrap();
        let fleet = Fleet::new();
        let mut p = fleet.spawn(&launch("sleep 30")).unwrap();
        p.kill();
        fleet.end_all();
        assert!(
            alive(helper.id() as i32),
            "the harness's own helper was ended"
        );
        helper.kill().unwrap();
        helper.wait().unwrap();
    }

    #[test]
    fn an_escaped_daemon_is_ended_by_its_own_fleet_and_no_other() {
        let ours = Fleet::new();
        let other = Fleet::new();
        let (mut p, daemon) = with_escaped_daemon(&ours);
        other.end_all();
        assert!(alive(daemon), "another fleet ended this fleet's daemon");
        p.kill();
        assert!(!alive(daemon), "the daemon outlived its target");
        assert!(procfs::stat(daemon).is_none(), "the daemon was not reaped");
    }

    #[test]
    fn ending_a_fleet_ends_its_live_targets_and_removes_their_scratch_directories() {
        let fleet = Fleet::new();
        let p = fleet.spawn(&launch("echo $$; exec sleep 300")).unwrap();
        let pid = printed_pid(&p);
        let scratch = p.scratch().to_path_buf();
        assert_eq!(fleet.live(), 1);
        fleet.end_all();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(!alive(pid));
        assert!(!scratch.exists());
        drop(p);
        assert_eq!(fleet.live(), 0);
    }

    #[test]
    fn a_target_that_cannot_be_run_leaves_nothing_registered() {
        let fleet = Fleet::new();
        let mut l = launch("true");
        l.workdir = Workdir::Dir("/nonexistent/sockspec".into());
        assert!(fleet.spawn(&l).is_err());
        assert_eq!(fleet.live(), 0);
        assert!(fleet.0.lock().scratch.is_empty());
    }

    #[test]
    fn a_server_that_ends_before_listening_is_an_error_that_leaves_nothing_behind() {
        let fleet = Fleet::new();
        let l = launch("echo no port for me >&2; exit 3");
        let e = crate::targets::launch::Launched::start(l, &fleet, &Timing::default())
            .err()
            .expect("never listened");
        assert_eq!(e.blame, crate::targets::launch::Blame::Target);
        assert_eq!(e.stderr_tail.as_deref(), Some("no port for me"));
        assert_eq!(fleet.live(), 0);
        assert!(fleet.0.lock().scratch.is_empty());
    }

    #[test]
    fn each_fleet_marks_its_targets_with_its_own_mark() {
        let (a, b) = (Fleet::new(), Fleet::new());
        assert_ne!(a.mark(), b.mark());
        let mut p = a.spawn(&launch("echo $SOCKSPEC_RUN")).unwrap();
        p.wait_exit(Duration::from_secs(5));
        p.stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5));
        assert_eq!(
            String::from_utf8_lossy(&p.stdout().since(0)).trim(),
            a.mark()
        );
    }
}
