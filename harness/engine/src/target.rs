//! The program under test as a process: started in its own process group,
//! its output always drained, and ended with every descendant.
//!
//! A target whose stdout or stderr pipe fills blocks in `write` and looks
//! idle, so both are read continuously into bounded buffers. Every process
//! started is registered so that Ctrl-C, SIGTERM or a panic ends it too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::procfs::{self, Stat};
use crate::timing::Timing;

/// How much of each output stream is kept: enough for any traceback and
/// for a client's printed replies, bounded whatever the target prints.
const KEPT_OUTPUT: usize = 1 << 20;

/// Output of a target's stream, read as it comes.
#[derive(Default)]
pub struct Capture {
    state: Mutex<CaptureState>,
    grew: Condvar,
}

#[derive(Default)]
struct CaptureState {
    /// The last [`KEPT_OUTPUT`] bytes.
    kept: Vec<u8>,
    /// Bytes dropped from the front of `kept`.
    dropped: u64,
    closed: bool,
}

impl Capture {
    /// Appends output, as the thread reading the target's pipe does.
    pub fn push(&self, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.kept.extend_from_slice(bytes);
        if s.kept.len() > KEPT_OUTPUT {
            let cut = s.kept.len() - KEPT_OUTPUT;
            s.kept.drain(..cut);
            s.dropped += cut as u64;
        }
        self.grew.notify_all();
    }

    /// Marks the stream ended, as when the target's pipe closes.
    pub fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.closed = true;
        self.grew.notify_all();
    }

    /// Everything kept, from absolute offset `from` on.
    pub fn since(&self, from: u64) -> Vec<u8> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let start = from.saturating_sub(s.dropped) as usize;
        s.kept.get(start..).unwrap_or(&[]).to_vec()
    }

    /// The total number of bytes the stream has carried.
    pub fn total(&self) -> u64 {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.dropped + s.kept.len() as u64
    }

    /// Waits until `needle` appears at or after offset `from`; returns the
    /// offset just past it, or `None` at the deadline or when the stream
    /// closed without it.
    pub fn wait_for(&self, needle: &[u8], from: u64, deadline: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // What was searched already is not searched again: only its last
        // needle-length bytes, where a match could straddle a new chunk.
        let mut searched = from;
        loop {
            let begin = searched.max(from).saturating_sub(s.dropped) as usize;
            if let Some(hay) = s.kept.get(begin..) {
                if let Some(pos) = find(hay, needle) {
                    return Some(s.dropped + (begin + pos + needle.len()) as u64);
                }
            }
            let total = s.dropped + s.kept.len() as u64;
            searched = total
                .saturating_sub(needle.len().saturating_sub(1) as u64)
                .max(from);
            let now = Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self
                .grew
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the writer closed the stream (all of the target's
    /// processes that held it ended), so a tail read after an exit is whole.
    pub fn wait_closed(&self, deadline: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !s.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .grew
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// The last `lines` lines kept, as text, each cut to a readable length
    /// (a target can write megabytes without a newline).
    pub fn tail(&self, lines: usize) -> String {
        const LONGEST: usize = 400;
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&s.kept);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|line| match line.char_indices().nth(LONGEST) {
                Some((at, _)) => {
                    format!(
                        "{}... ({} more bytes on this line)",
                        &line[..at],
                        line.len() - at
                    )
                }
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes what is queued to `stdin` in order, and closes it when the
/// sender is dropped. A target that never reads leaves this thread blocked
/// until the target ends and the pipe breaks.
fn feed(mut stdin: ChildStdin) -> Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    thread::spawn(move || {
        for bytes in rx {
            if stdin.write_all(&bytes).and_then(|_| stdin.flush()).is_err() {
                return;
            }
        }
    });
    tx
}

fn drain(mut from: impl Read + Send + 'static, into: Arc<Capture>) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.push(&buf[..n]),
            }
        }
        into.close();
    });
}

/// Processes started by this harness and not yet reaped (root pid to
/// group), and whether the harness is shutting down. Spawning holds this
/// lock from fork to registration, so an interrupt never misses a target
/// that was being started, and none starts after it.
#[derive(Default)]
struct Live {
    groups: BTreeMap<i32, i32>,
    closed: bool,
}

fn live() -> &'static Mutex<Live> {
    static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(Live::default()))
}

/// Kills every target process still alive and refuses new ones; for
/// signal handlers and exits.
pub fn kill_all_live() {
    let groups: Vec<(i32, i32)> = match live().lock() {
        Ok(mut m) => {
            m.closed = true;
            m.groups.iter().map(|(&p, &g)| (p, g)).collect()
        }
        Err(_) => Vec::new(),
    };
    for (pid, pgid) in groups {
        signal_tree(pgid, &procfs::tree(pid, pgid), &BTreeSet::new());
    }
    end_orphans();
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C or SIGTERM arrived. The handler is then ending every
/// target and will end the harness: nothing else should report or exit.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Waits for the interrupt handler to end the process. Called where the
/// harness would otherwise report what the interrupt caused.
pub fn await_interrupt_exit() -> ! {
    loop {
        thread::park();
    }
}

/// Ends the harness's targets on Ctrl-C and SIGTERM, then exits with
/// [`crate::exit::INTERRUPTED`]. Also makes the harness the reaper of
/// orphaned descendants, so a target's forked children stay findable.
pub fn install_interrupt_handler() {
    // SAFETY: prctl with these arguments only changes this process's flags.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let _ = ctrlc::set_handler(|| {
        // Set before the kills, so whatever the kills cause is seen by the
        // rest of the harness as the interrupt, not as the target's doing.
        INTERRUPTED.store(true, Ordering::SeqCst);
        kill_all_live();
        eprintln!("\nsockspec: interrupted; every target process was ended");
        std::process::exit(crate::exit::INTERRUPTED);
    });
}

/// SIGKILLs a target's group, every process of its tree, and every pid
/// seen in it before that is still in its group.
fn signal_tree(pgid: i32, procs: &[Stat], known: &BTreeSet<i32>) {
    // SAFETY: signalling has no memory effects; the group is the target's
    // own (made at spawn) and the pids were seen in its tree.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
        for s in procs {
            libc::kill(s.pid, libc::SIGKILL);
        }
    }
    for &p in known {
        let still_ours = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|t| procfs::parse_stat(&t))
            .is_some_and(|s| s.pgid == pgid);
        if still_ours {
            // SAFETY: as above.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }
}

/// Reaps descendants that were re-parented to the harness (it is their
/// subreaper) once they exit, so no zombie outlives a check. A pid that is
/// not the harness's child is left alone (waitpid says ECHILD at once).
fn reap(pids: impl Iterator<Item = i32>) {
    let give_up = Instant::now() + Timing::REAP;
    for pid in pids {
        loop {
            // SAFETY: waits for one specific pid without blocking.
            let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            if r != 0 || Instant::now() >= give_up {
                break;
            }
            // Alive or not yet re-parented: it was just SIGKILLed.
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            thread::sleep(Timing::FAST_POLL);
        }
    }
}

/// How a target ended, in words a student understands.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(libc::SIGPIPE) => {
            "killed by SIGPIPE (signal 13): it wrote to a connection the peer had closed; \
             ignore SIGPIPE or handle EPIPE"
                .to_string()
        }
        Some(libc::SIGSEGV) => "killed by SIGSEGV (signal 11): a memory error".to_string(),
        Some(sig) => format!("killed by signal {sig}"),
        None => "ended in an unknown way".to_string(),
    }
}

/// How to start a target.
#[derive(Clone, Debug)]
pub struct Launch {
    /// A shell command; `{port}` is replaced by the port.
    pub command: String,
    /// The port given to the target through `{port}` and `SOCKSPEC_PORT`.
    pub port: u16,
    /// Whether the harness writes the target's standard input.
    pub stdin: bool,
}

impl Launch {
    pub fn command_line(&self) -> String {
        self.command.replace("{port}", &self.port.to_string())
    }
}

/// A started target.
pub struct Process {
    child: Child,
    pid: i32,
    /// Feeds the target's standard input from a thread of its own: a
    /// client that never reads its input must not block the harness.
    stdin: Option<Sender<Vec<u8>>>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    status: Option<ExitStatus>,
    /// Every pid ever seen in the target's tree, so a child that left the
    /// tree's process group is still ended with it.
    seen: BTreeSet<i32>,
    /// The parent of every pid ever seen in the tree, so a process that
    /// forked children is known after they are gone.
    parents: BTreeMap<i32, i32>,
    started: Instant,
}

impl Process {
    /// Starts `launch` through `sh -c` in a new process group.
    pub fn spawn(launch: &Launch) -> io::Result<Process> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(launch.command_line())
            .env("SOCKSPEC_PORT", launch.port.to_string())
            // Python buffers stdout into a pipe; a client's printed reply
            // would only show at exit.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(if launch.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // the shell if the harness dies without cleaning up.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let mut child = {
            let mut live = live().lock().unwrap_or_else(|e| e.into_inner());
            if live.closed {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the harness is shutting down",
                ));
            }
            let child = cmd.spawn()?;
            let pid = child.id() as i32;
            live.groups.insert(pid, pid);
            child
        };
        let pid = child.id() as i32;
        let stdout = Arc::new(Capture::default());
        let stderr = Arc::new(Capture::default());
        if let Some(out) = child.stdout.take() {
            drain(out, stdout.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, stderr.clone());
        }
        Ok(Process {
            stdin: child.stdin.take().map(feed),
            child,
            pid,
            stdout,
            stderr,
            status: None,
            seen: BTreeSet::new(),
            parents: BTreeMap::new(),
            started: Instant::now(),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The exit status, if the target has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                self.unregister();
            }
        }
        self.status
    }

    /// Waits up to `within` for the target to exit, polling every
    /// millisecond at first (a killed process is gone within a few) and
    /// every [`Timing::POLL`] after.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        for polls in 0u32.. {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(if polls < 50 {
                Timing::FAST_POLL
            } else {
                Timing::POLL
            });
        }
        None
    }

    /// The target's processes now (root, group, descendants).
    pub fn tree(&mut self) -> Vec<Stat> {
        let procs = procfs::tree(self.pid, self.pid);
        self.seen.extend(procs.iter().map(|s| s.pid));
        self.parents.extend(procs.iter().map(|s| (s.pid, s.ppid)));
        procs
    }

    /// Whether `pid` was ever seen with a child in the target's tree.
    pub fn had_children(&self, pid: i32) -> bool {
        self.parents.values().any(|&parent| parent == pid)
    }

    /// Kills the whole tree and reaps the root. Returns how the root ended.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let procs = self.tree();
        signal_tree(self.pid, &procs, &self.seen);
        let status = match self.status {
            Some(st) => Some(st),
            None => {
                let st = self.wait_exit(Timing::REAP);
                self.status = st;
                st
            }
        };
        let root = self.pid;
        reap(self.seen.iter().copied().filter(|&p| p != root));
        self.unregister();
        end_orphans();
        status
    }

    fn unregister(&self) {
        if let Ok(mut m) = live().lock() {
            m.groups.remove(&self.pid);
        }
    }

    /// Queues `bytes` for the target's standard input; never blocks.
    pub fn write_input(&mut self, bytes: &[u8]) -> io::Result<()> {
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "standard input is closed");
        match self.stdin.as_ref() {
            Some(tx) => tx.send(bytes.to_vec()).map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    pub fn stdout(&self) -> &Capture {
        &self.stdout
    }

    pub fn stderr(&self) -> &Capture {
        &self.stderr
    }
}

/// Ends descendants that escaped their target's process group and were
/// re-parented to the harness (its subreaper): a daemon that called
/// `setsid` and forked twice. The harness starts no other processes, so
/// every child it did not spawn itself came from a target.
fn end_orphans() {
    let me = std::process::id() as i32;
    let owned: BTreeSet<i32> = live()
        .lock()
        .map(|m| m.groups.keys().copied().collect())
        .unwrap_or_default();
    let orphans: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| !owned.contains(pid))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| procfs::parse_stat(&t))
                .is_some_and(|s| s.ppid == me)
        })
        .collect();
    for &pid in &orphans {
        // SAFETY: signals a child of the harness that no target owns.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    reap(orphans.into_iter());
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(cmd: &str) -> Launch {
        Launch {
            command: cmd.to_string(),
            port: 4242,
            stdin: true,
        }
    }

    #[test]
    fn the_port_is_given_in_the_command_and_the_environment() {
        let mut p = Process::spawn(&launch("echo {port} $SOCKSPEC_PORT")).unwrap();
        assert!(p.wait_exit(Duration::from_secs(5)).is_some());
        let end = p
            .stdout()
            .wait_for(b"4242 4242", 0, Instant::now() + Duration::from_secs(5));
        assert!(end.is_some());
    }

    #[test]
    fn output_is_drained_so_a_chatty_target_never_blocks() {
        let mut p = Process::spawn(&launch("head -c 3000000 /dev/zero; echo done >&2")).unwrap();
        let st = p.wait_exit(Duration::from_secs(10)).expect("exits");
        assert!(st.success());
        assert!(p
            .stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5)));
        assert_eq!(p.stdout().total(), 3_000_000);
    }

    #[test]
    fn kill_ends_the_whole_group_including_children() {
        let mut p = Process::spawn(&launch("sleep 30 & sleep 30 & wait")).unwrap();
        thread::sleep(Duration::from_millis(200));
        let pids: Vec<i32> = p.tree().iter().map(|s| s.pid).collect();
        assert!(pids.len() >= 3, "sh and two sleeps: {pids:?}");
        p.kill();
        thread::sleep(Duration::from_millis(100));
        for pid in pids {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|t| procfs::parse_stat(&t))
                .is_some_and(|s| !s.zombie);
            assert!(!alive, "pid {pid} survived");
        }
    }

    #[test]
    fn stdin_reaches_the_target() {
        let mut p = Process::spawn(&launch("cat")).unwrap();
        p.write_input(b"ping\n").unwrap();
        p.close_input();
        assert!(p.wait_exit(Duration::from_secs(5)).is_some());
        // The exit can be seen before the reader thread has the last bytes.
        assert!(p
            .stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5)));
        assert_eq!(p.stdout().since(0), b"ping\n");
    }

    #[test]
    fn text_split_across_two_pieces_of_output_is_found() {
        let c = Arc::new(Capture::default());
        c.push(b"say hel");
        let later = c.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            later.push(b"lo there");
        });
        let end = c.wait_for(b"hello", 0, Instant::now() + Duration::from_secs(5));
        t.join().unwrap();
        assert_eq!(end, Some(9));
    }

    #[test]
    fn exits_are_described_for_a_student() {
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert!(describe_exit(ExitStatus::from_raw(libc::SIGPIPE)).contains("SIGPIPE"));
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let mut p =
            Process::spawn(&launch("for i in 1 2 3 4 5; do echo line$i >&2; done")).unwrap();
        p.wait_exit(Duration::from_secs(5));
        p.stderr()
            .wait_for(b"line5", 0, Instant::now() + Duration::from_secs(5));
        assert_eq!(p.stderr().tail(2), "line4\nline5");
    }
}
