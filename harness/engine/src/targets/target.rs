//! The program under test as a process: started in its own process group,
//! its output always drained, and ended with every descendant.
//!
//! Its standard output is a terminal (`pty.rs`), as for a user, and its
//! stderr a pipe. A target whose output fills blocks in `write` and looks
//! idle, so both are read continuously into bounded buffers. Every target
//! is started through its run's [`Fleet`], so that the end of the run,
//! Ctrl-C or SIGTERM ends it too, and runs in a scratch directory of its
//! own when asked (the directory is always made, and removed at its end).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::judge::body::GivenFile;
use crate::kernel::confine::{self, Confinement, Prepared};
use crate::kernel::procfs::{self, Stat};
use crate::model::timing::Timing;
use crate::model::transport::Transport;
use crate::targets::fleet::{self, Fleet};
use crate::targets::folder;
use crate::targets::pty::Pty;

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
    /// The last [`KEPT_OUTPUT`] bytes at least, and fewer than twice as
    /// many.
    kept: Vec<u8>,
    /// Bytes dropped from the front of `kept`.
    dropped: u64,
    closed: bool,
}

impl CaptureState {
    /// What is shown of the output: its last [`KEPT_OUTPUT`] bytes, and
    /// how many came before them.
    fn shown(&self) -> (u64, &[u8]) {
        let extra = self.kept.len().saturating_sub(KEPT_OUTPUT);
        (self.dropped + extra as u64, &self.kept[extra..])
    }
}

impl Capture {
    /// Appends output, as the thread reading the target's pipe does.
    ///
    /// The front is dropped only once twice [`KEPT_OUTPUT`] is held, down
    /// to [`KEPT_OUTPUT`]: each byte is moved at most once, so a target
    /// printing many MiB costs the harness a copy of what it prints, not
    /// a move of the whole kept tail per read (a read of a terminal is a
    /// few KiB), and memory stays under twice the bound.
    pub fn push(&self, bytes: &[u8]) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.kept.extend_from_slice(bytes);
        if s.kept.len() > 2 * KEPT_OUTPUT {
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

    /// Everything kept, from absolute offset `from` on: at most the last
    /// [`KEPT_OUTPUT`] bytes.
    pub fn since(&self, from: u64) -> Vec<u8> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (dropped, kept) = s.shown();
        let start = from.saturating_sub(dropped) as usize;
        kept.get(start..).unwrap_or(&[]).to_vec()
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
        let text = String::from_utf8_lossy(s.shown().1);
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

/// Where `needle` first starts in `hay`. Only where its first byte is is
/// the rest compared: a client printing many MiB is searched at the pace
/// of a byte scan, not of one comparison call per byte.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((first, rest)) = needle.split_first() else {
        return Some(0);
    };
    let mut at = 0;
    while let Some(i) = hay.get(at..)?.iter().position(|b| b == first) {
        let start = at + i;
        if hay[start + 1..].starts_with(rest) {
            return Some(start);
        }
        at = start + 1;
    }
    None
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
                Ok(n) if n > 0 => into.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // End of a pipe; for a terminal, EIO once the target's side
                // is closed by every process that held it.
                _ => break,
            }
        }
        into.close();
    });
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

/// Where a target's command runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Workdir {
    /// Where the harness was started: relative paths in the command work
    /// as typed.
    #[default]
    Here,
    /// The target's own scratch directory.
    Scratch,
    /// A directory of the user's choosing.
    Dir(PathBuf),
    /// A fresh folder of the target's own deep inside its scratch tree
    /// ([`folder::OWN_FOLDER`]), for a target whose work is writing files;
    /// the command's words naming files in `base` (where it was typed) are
    /// made absolute, so they are still found.
    Own { base: Option<PathBuf> },
}

impl Workdir {
    /// This working directory made a folder of the target's own, the
    /// command's relative paths still read from where they were meant.
    pub fn own(&self) -> Workdir {
        match self {
            Workdir::Here => Workdir::Own {
                base: std::env::current_dir().ok(),
            },
            Workdir::Scratch => Workdir::Own { base: None },
            Workdir::Dir(dir) => Workdir::Own {
                base: Some(dir.clone()),
            },
            own @ Workdir::Own { .. } => own.clone(),
        }
    }
}

/// The environment variable naming a target's scratch directory (also
/// `{scratch}` in its command).
pub const SCRATCH_VAR: &str = "SOCKSPEC_SCRATCH";

/// The environment variable naming the file the harness made for a client
/// to upload (also `{file}` in its command).
pub const FILE_VAR: &str = "SOCKSPEC_FILE";

/// How much of a given file one write carries.
const FILE_CHUNK: usize = 64 * 1024;

/// The shell a target's command runs through.
const SHELL: &str = "/bin/sh";

/// How to start a target.
#[derive(Clone, Debug)]
pub struct Launch {
    /// A shell command; `{port}` is replaced by the port, `{scratch}` by
    /// the target's scratch directory, `{file}` by the given file's path.
    pub command: String,
    /// The port given to the target through `{port}` and `SOCKSPEC_PORT`;
    /// none for a server that binds a port of its own choosing (written in
    /// its code), found from the kernel once it is ready.
    pub port: Option<u16>,
    /// Whether the harness writes the target's standard input.
    pub stdin: bool,
    /// How the target talks, so the harness knows when a server is ready.
    pub transport: Transport,
    /// Where the command runs.
    pub workdir: Workdir,
    /// A file made in the target's scratch directory before it starts,
    /// named to it by `{file}` and `SOCKSPEC_FILE`: what a client uploads.
    pub file: Option<GivenFile>,
    /// What the target is kept from seeing of the files (other
    /// submissions, the assignment profile), where the machine grants a
    /// namespace: [`Process::confined`] says whether it was.
    /// Boxed: a launch is carried by every started target.
    pub confine: Option<Box<Confinement>>,
}

impl Launch {
    /// The command with its port; `{scratch}` is left as written (each
    /// start has a directory of its own).
    pub fn command_line(&self) -> String {
        match self.port {
            Some(port) => self.command.replace("{port}", &port.to_string()),
            None => self.command.clone(),
        }
    }
}

impl Fleet {
    /// Starts `launch` as a target of this fleet.
    pub fn spawn(&self, launch: &Launch) -> io::Result<Process> {
        Process::spawn(launch, self)
    }
}

/// A started target.
pub struct Process {
    child: Child,
    pid: i32,
    /// The run's targets, which this one is part of.
    fleet: Fleet,
    /// A fresh directory of the target's own, removed when it is ended.
    scratch: PathBuf,
    /// The folder of its own it runs in, inside `scratch`, when asked.
    folder: Option<PathBuf>,
    /// The file made for the target in its scratch directory, if any.
    file: Option<PathBuf>,
    /// How it was started, to start it again with another file.
    launch: Launch,
    /// Feeds the target's standard input from a thread of its own: a
    /// client that never reads its input must not block the harness.
    stdin: Option<Sender<Vec<u8>>>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    status: Option<ExitStatus>,
    /// Every process ever seen in the target's tree, by pid with its start
    /// time, so a child that left the tree's process group is still ended
    /// with it, and a pid reused by another process is not.
    seen: BTreeMap<i32, u64>,
    /// The parent of every pid ever seen in the tree, so a process that
    /// forked children is known after they are gone.
    parents: BTreeMap<i32, i32>,
    started: Instant,
    /// Whether every process of the target was ended and its scratch
    /// directory removed.
    ended: bool,
    /// Whether it runs confined as its launch asked.
    confined: bool,
}

impl Process {
    /// Starts `launch` through `sh -c` in a new process group, in a fresh
    /// scratch directory, as a target of `fleet`.
    fn spawn(launch: &Launch, fleet: &Fleet) -> io::Result<Process> {
        if let Workdir::Dir(dir) = &launch.workdir {
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the working directory {} does not exist", dir.display()),
                ));
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix("sockspec-target-")
            .tempdir()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "could not make a scratch directory in {}: {e}",
                        std::env::temp_dir().display()
                    ),
                )
            })?
            .keep();
        let file = match &launch.file {
            Some(given) => match write_given(&scratch, given) {
                Ok(path) => Some(path),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&scratch);
                    return Err(e);
                }
            },
            None => None,
        };
        let mut command = launch
            .command_line()
            .replace("{scratch}", &scratch.to_string_lossy());
        if let Some(path) = &file {
            command = command.replace("{file}", &path.to_string_lossy());
        }
        let folder = match &launch.workdir {
            Workdir::Own { base } => {
                let folder = folder::own_folder(&scratch);
                if let Err(e) = std::fs::create_dir_all(&folder) {
                    let _ = std::fs::remove_dir_all(&scratch);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("could not make the folder {}: {e}", folder.display()),
                    ));
                }
                if let Some(base) = base {
                    command = folder::resolve_paths(&command, base);
                }
                Some(folder)
            }
            _ => None,
        };
        let pty = match Pty::open() {
            Ok(pty) => pty,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        // The POSIX shell by its path: a search of PATH costs a failed exec
        // per entry before it, on every start of every check.
        let mut cmd = Command::new(SHELL);
        cmd.arg("-c")
            .arg(command)
            .env(SCRATCH_VAR, &scratch)
            .stdin(if launch.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            // A terminal, as its user gives it: output is written as each
            // line is printed, in every language (see `pty.rs`).
            .stdout(Stdio::from(pty.slave))
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(port) = launch.port {
            cmd.env("SOCKSPEC_PORT", port.to_string());
        }
        if let Some(path) = &file {
            cmd.env(FILE_VAR, path);
        }
        match &launch.workdir {
            Workdir::Here => {}
            Workdir::Scratch => {
                cmd.current_dir(&scratch);
            }
            Workdir::Dir(dir) => {
                cmd.current_dir(dir);
            }
            Workdir::Own { .. } => {
                if let Some(folder) = &folder {
                    cmd.current_dir(folder);
                }
            }
        }
        // Confined where the machine grants a namespace; where it grants
        // none the target runs as it is, and says so.
        let confinement = match &launch.confine {
            Some(c) if confine::can_confine() => {
                let cwd = match &launch.workdir {
                    Workdir::Here => std::env::current_dir()?,
                    Workdir::Scratch => scratch.clone(),
                    Workdir::Dir(dir) => dir.clone(),
                    Workdir::Own { .. } => folder.clone().unwrap_or_else(|| scratch.clone()),
                };
                match Prepared::new(c, &[&scratch], &cwd) {
                    Ok(prepared) => Some(prepared),
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&scratch);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("cannot confine the target: {}", e.0),
                        ));
                    }
                }
            }
            _ => None,
        };
        let confined = confinement.is_some();
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
        // the shell if the harness dies without cleaning up. The confinement
        // makes system calls alone, on paths prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                match &confinement {
                    Some(c) => c.apply(),
                    None => Ok(()),
                }
            });
        }
        let mut child = match fleet.start(&mut cmd, &scratch) {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };
        // The harness's copy of the slave goes with the command: only the
        // target then holds it, and the master reads its end when it ends.
        drop(cmd);
        let pid = child.id() as i32;
        let stdout = Arc::new(Capture::default());
        let stderr = Arc::new(Capture::default());
        drain(pty.master, stdout.clone());
        if let Some(err) = child.stderr.take() {
            drain(err, stderr.clone());
        }
        Ok(Process {
            stdin: child.stdin.take().map(feed),
            child,
            pid,
            fleet: fleet.clone(),
            scratch,
            folder,
            file,
            launch: launch.clone(),
            stdout,
            stderr,
            status: None,
            seen: BTreeMap::new(),
            parents: BTreeMap::new(),
            started: Instant::now(),
            ended: false,
            confined,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The target's scratch directory (also `$SOCKSPEC_SCRATCH` and
    /// `{scratch}` for it), whatever directory it runs in.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The folder of its own the target runs in ([`Workdir::Own`]), inside
    /// its scratch tree.
    pub fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// The path of the file made for the target (`{file}`), if any.
    pub fn given_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Whether the target runs confined as its launch asked: false when
    /// it asked for nothing, and where the machine grants no namespace
    /// ([`confine::can_confine`]).
    pub fn confined(&self) -> bool {
        self.confined
    }

    /// How the target was started.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// Starts the same command again as a target of the same fleet, with
    /// `file` made for it instead of the one before.
    pub fn start_again(&self, file: Option<GivenFile>) -> io::Result<Process> {
        let launch = Launch {
            file,
            ..self.launch.clone()
        };
        self.fleet.spawn(&launch)
    }

    /// The exit status, if the target has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                self.fleet.reaped(self.pid);
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
            // A killed process is gone within a fraction of a millisecond.
            thread::sleep(match polls {
                0..10 => Timing::FIRST_POLL,
                10..50 => Timing::FAST_POLL,
                _ => Timing::POLL,
            });
        }
        None
    }

    /// The target's processes now (root, group, descendants). Once the
    /// root is reaped its pid, the group's id, may be another process's:
    /// the tree is then what was seen before and what it forked.
    pub fn tree(&mut self) -> Vec<Stat> {
        let procs = if self.status.is_none() {
            procfs::tree(self.pid, self.pid)
        } else {
            let seen = &self.seen;
            procfs::family(|s| seen.get(&s.pid) == Some(&s.start))
        };
        for s in &procs {
            self.seen.insert(s.pid, s.start);
            self.parents.insert(s.pid, s.ppid);
        }
        self.fleet.saw(&procs);
        procs
    }

    /// Notes the target's processes now, cheaply (from the kernel's child
    /// lists, not a scan of every process), so a child that exits later
    /// can still be named.
    pub fn note_children(&mut self) {
        if self.status.is_none() {
            self.parents.extend(procfs::descendants(self.pid));
        }
    }

    /// Every child `pid` was ever seen with in the target's tree.
    pub fn children_seen(&self, pid: i32) -> Vec<i32> {
        self.parents
            .iter()
            .filter(|&(_, &parent)| parent == pid)
            .map(|(&child, _)| child)
            .collect()
    }

    /// Kills the whole tree, reaps the root and what the harness adopted of
    /// it, ends the daemons of this run that escaped, and removes the
    /// scratch directory. Returns how the root ended.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if self.ended {
            return self.status;
        }
        let procs = self.tree();
        fleet::signal(self.pid, self.status.is_none(), &procs, &self.seen);
        let status = match self.status {
            Some(st) => Some(st),
            None => self.wait_exit(Timing::REAP),
        };
        let root = self.pid;
        fleet::reap(
            self.seen
                .iter()
                .filter(|(&p, _)| p != root)
                .map(|(&p, &start)| (p, start)),
        );
        self.fleet.end_orphans();
        let _ = std::fs::remove_dir_all(&self.scratch);
        self.fleet.scratch_removed(root);
        self.ended = true;
        status
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

/// Writes `given` into `dir` a chunk at a time (a file of many MiB costs
/// one chunk of memory); returns its path.
fn write_given(dir: &Path, given: &GivenFile) -> io::Result<PathBuf> {
    let path = dir.join(&given.name);
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "could not write the file for the target, {}: {e}",
                path.display()
            ),
        )
    };
    let mut out = io::BufWriter::with_capacity(FILE_CHUNK, File::create(&path).map_err(context)?);
    let mut chunk = vec![0u8; FILE_CHUNK];
    let mut offset = 0;
    while offset < given.body.len() {
        let n = given.body.fill(offset, &mut chunk);
        out.write_all(&chunk[..n]).map_err(context)?;
        offset += n as u64;
    }
    out.flush().map_err(context)?;
    Ok(path)
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.ended {
            self.kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::body::BodySpec;
    use md5::Digest;

    fn launch(cmd: &str) -> Launch {
        Launch {
            command: cmd.to_string(),
            port: Some(4242),
            stdin: true,
            transport: Transport::Stream,
            workdir: Workdir::Here,
            file: None,
            confine: None,
        }
    }

    /// The first line the target printed, once it has exited.
    fn printed(p: &mut Process) -> String {
        assert!(p.wait_exit(Duration::from_secs(5)).is_some());
        assert!(p
            .stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5)));
        String::from_utf8_lossy(&p.stdout().since(0))
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn a_target_runs_where_the_harness_runs_and_is_given_a_fresh_scratch_directory() {
        let mut p = Fleet::new()
            .spawn(&launch("pwd; ls -A \"$SOCKSPEC_SCRATCH\" | wc -l"))
            .unwrap();
        let scratch = p.scratch().to_path_buf();
        assert!(scratch.is_dir());
        assert_eq!(
            printed(&mut p),
            std::env::current_dir().unwrap().display().to_string()
        );
        let out = String::from_utf8_lossy(&p.stdout().since(0)).into_owned();
        assert_eq!(out.lines().nth(1).map(str::trim), Some("0"), "{out}");
        p.kill();
        assert!(
            !scratch.exists(),
            "the scratch directory outlived its target"
        );
    }

    #[test]
    fn a_target_in_a_folder_of_its_own_runs_deep_in_its_scratch_tree_and_finds_its_script() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("hello.sh"), "echo hello\n").unwrap();
        let mut l = launch("pwd; sh hello.sh; touch ../../../../left");
        l.workdir = Workdir::Own {
            base: Some(base.path().to_path_buf()),
        };
        let mut p = Fleet::new().spawn(&l).unwrap();
        let scratch = p.scratch().to_path_buf();
        let folder = p.folder().unwrap().to_path_buf();
        assert!(folder.starts_with(&scratch) && folder != scratch);
        assert_eq!(
            printed(&mut p),
            folder.canonicalize().unwrap().display().to_string()
        );
        let out = String::from_utf8_lossy(&p.stdout().since(0)).into_owned();
        assert_eq!(out.lines().nth(1).map(str::trim), Some("hello"), "{out}");
        assert!(
            scratch.join("left").exists(),
            "four levels up is the tree's root"
        );
        p.kill();
        assert!(!scratch.exists(), "the tree outlived its target");
        let left: Vec<_> = std::fs::read_dir(base.path()).unwrap().collect();
        assert_eq!(
            left.len(),
            1,
            "nothing is written where the command was typed"
        );
    }

    #[test]
    fn a_given_file_is_made_in_the_scratch_directory_and_named_by_placeholder_and_env() {
        let body = BodySpec::Seeded {
            seed: 7,
            len: 200_000,
        };
        let l = Launch {
            file: Some(GivenFile::new("回顾.mp4", body.clone())),
            ..launch("md5sum < {file}; [ \"$SOCKSPEC_FILE\" = {file} ] && basename {file}")
        };
        let mut p = Fleet::new().spawn(&l).unwrap();
        let path = p.given_file().unwrap().to_path_buf();
        assert_eq!(path, p.scratch().join("回顾.mp4"));
        printed(&mut p);
        let out = String::from_utf8_lossy(&p.stdout().since(0)).into_owned();
        let mut bytes = vec![0u8; 200_000];
        assert_eq!(body.fill(0, &mut bytes), 200_000);
        let sum: String = md5::Md5::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(out.contains(&sum), "{out}");
        assert!(out.contains("回顾.mp4"), "{out}");
        p.kill();
        assert!(!path.exists());
    }

    #[test]
    fn a_seeded_body_fills_as_it_reads_byte_by_byte_from_any_offset() {
        let body = BodySpec::Seeded { seed: 3, len: 100 };
        let mut out = [0u8; 40];
        assert_eq!(body.fill(77, &mut out), 23);
        for (i, b) in out[..23].iter().enumerate() {
            assert_eq!(Some(*b), body.byte_at(77 + i as u64));
        }
    }

    #[test]
    fn a_target_can_run_in_its_scratch_directory_named_in_its_command() {
        let mut l = launch("pwd; echo {scratch}");
        l.workdir = Workdir::Scratch;
        let mut p = Fleet::new().spawn(&l).unwrap();
        let scratch = p.scratch().canonicalize().unwrap();
        assert_eq!(printed(&mut p), scratch.display().to_string());
        let out = String::from_utf8_lossy(&p.stdout().since(0)).into_owned();
        assert_eq!(
            out.lines().nth(1).map(std::path::PathBuf::from),
            Some(p.scratch().to_path_buf())
        );
    }

    #[test]
    fn a_target_runs_in_the_directory_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = launch("pwd");
        l.workdir = Workdir::Dir(dir.path().to_path_buf());
        let mut p = Fleet::new().spawn(&l).unwrap();
        assert_eq!(
            printed(&mut p),
            dir.path().canonicalize().unwrap().display().to_string()
        );
    }

    #[test]
    fn a_missing_working_directory_is_an_error_that_names_it() {
        let mut l = launch("true");
        l.workdir = Workdir::Dir("/nonexistent/sockspec".into());
        let e = Fleet::new().spawn(&l).err().expect("refused");
        assert!(e.to_string().contains("/nonexistent/sockspec"), "{e}");
    }

    #[test]
    fn the_port_is_given_in_the_command_and_the_environment() {
        let mut p = Fleet::new()
            .spawn(&launch("echo {port} $SOCKSPEC_PORT"))
            .unwrap();
        assert!(p.wait_exit(Duration::from_secs(5)).is_some());
        let end = p
            .stdout()
            .wait_for(b"4242 4242", 0, Instant::now() + Duration::from_secs(5));
        assert!(end.is_some());
    }

    #[test]
    fn output_is_drained_so_a_chatty_target_never_blocks() {
        let mut p = Fleet::new()
            .spawn(&launch("head -c 3000000 /dev/zero; echo done >&2"))
            .unwrap();
        let st = p.wait_exit(Duration::from_secs(10)).expect("exits");
        assert!(st.success());
        assert!(p
            .stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5)));
        assert_eq!(p.stdout().total(), 3_000_000);
    }

    #[test]
    fn kill_ends_the_whole_group_including_children() {
        let mut p = Fleet::new()
            .spawn(&launch("sleep 30 & sleep 30 & wait"))
            .unwrap();
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
    fn standard_output_is_a_terminal_and_input_and_stderr_are_not() {
        let mut p = Fleet::new()
            .spawn(&launch(
                "test -t 1 && echo out-tty; test -t 0 || echo in-pipe; \
                 test -t 2 || echo err-pipe",
            ))
            .unwrap();
        p.close_input();
        assert!(p.wait_exit(Duration::from_secs(5)).is_some());
        assert!(p
            .stdout()
            .wait_closed(Instant::now() + Duration::from_secs(5)));
        assert_eq!(p.stdout().since(0), b"out-tty\nin-pipe\nerr-pipe\n");
    }

    #[test]
    fn a_line_printed_before_waiting_shows_without_a_flush() {
        // Python, like C's stdio, buffers a pipe in blocks and a terminal
        // by line; the harness sets nothing in the target's environment.
        let mut p = Fleet::new()
            .spawn(&launch(
                "exec env -u PYTHONUNBUFFERED python3 -c \
                 'import sys, time; print(\"ready\"); sys.stdin.read()'",
            ))
            .unwrap();
        let end = p
            .stdout()
            .wait_for(b"ready\n", 0, Instant::now() + Duration::from_secs(5));
        p.kill();
        assert_eq!(end, Some(6));
    }

    #[test]
    fn stdin_reaches_the_target() {
        let mut p = Fleet::new().spawn(&launch("cat")).unwrap();
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
    fn a_long_output_is_counted_whole_and_its_last_mib_is_kept() {
        let c = Capture::default();
        let piece = [b'x'; 4096];
        for _ in 0..(5 * KEPT_OUTPUT / piece.len()) {
            c.push(&piece);
        }
        c.push(b"the end");
        assert_eq!(c.total(), 5 * KEPT_OUTPUT as u64 + 7);
        let shown = c.since(0);
        assert_eq!(shown.len(), KEPT_OUTPUT);
        assert!(shown.ends_with(b"xthe end"));
        assert!(c.state.lock().unwrap().kept.len() <= 2 * KEPT_OUTPUT);
        let at = c.total() - 3;
        assert_eq!(c.since(at), b"end");
    }

    #[test]
    fn a_needle_is_found_at_its_first_place_only_whole() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"abcab", b"abd"), None);
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"xx", b""), Some(0));
        assert_eq!(find(b"", b"a"), None);
    }

    #[test]
    fn exits_are_described_for_a_student() {
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert!(describe_exit(ExitStatus::from_raw(libc::SIGPIPE)).contains("SIGPIPE"));
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let mut p = Fleet::new()
            .spawn(&launch("for i in 1 2 3 4 5; do echo line$i >&2; done"))
            .unwrap();
        p.wait_exit(Duration::from_secs(5));
        p.stderr()
            .wait_for(b"line5", 0, Instant::now() + Duration::from_secs(5));
        assert_eq!(p.stderr().tail(2), "line4\nline5");
    }
}
