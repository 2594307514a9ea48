//! A look at the machine's processes from outside the harness's user
//! namespace.
//!
//! Inside a user namespace of its own, the harness may no longer read the
//! descriptors (`/proc/PID/fd`) of the user's other processes, which stay
//! in the machine's namespace: the kernel asks for `CAP_SYS_PTRACE` there.
//! Naming the process that holds a port (a stale instance of the server,
//! another program) needs them. So before it enters the namespace the
//! harness forks this helper, which stays outside and answers one question
//! over a pair of pipes: which processes hold the socket with this inode.
//! It ends when the harness closes its end ([`stop`], before the harness
//! exits), and the harness reaps it: left unreaped, it would outlive the
//! harness as a zombie of whoever adopts it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The harness's ends of the pipes: questions out, answers in.
static HELPER: Mutex<Option<(File, File)>> = Mutex::new(None);

/// The helper's pid, 0 when there is none.
static PID: AtomicI32 = AtomicI32::new(0);

/// The most pids one answer carries: more holders of one socket than
/// this are not a program's.
const MOST: usize = 64;

fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors it is given; each is owned by
    // one File from here on.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])))
    }
}

/// Forks the helper. Call it while the process is single-threaded, before
/// it enters its user namespace.
pub fn start() -> io::Result<()> {
    let (ask_read, ask_write) = pipe()?;
    let (answer_read, answer_write) = pipe()?;
    // SAFETY: the process is single-threaded here (the caller's promise),
    // so the child may go on using the allocator and the standard library.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(ask_write);
            drop(answer_read);
            // Off the harness's standard streams: a caller reading them
            // to their end must not wait for the helper.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                for fd in 0..3 {
                    // SAFETY: replaces a standard descriptor of the helper only.
                    unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
                }
            }
            // SAFETY: asks the kernel to end the helper with the harness.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            serve(ask_read, answer_write);
            // SAFETY: leaves without running the harness's exit handlers.
            unsafe { libc::_exit(0) }
        }
        pid => {
            PID.store(pid, Ordering::Relaxed);
            if let Ok(mut helper) = HELPER.lock() {
                *helper = Some((ask_write, answer_read));
            }
            Ok(())
        }
    }
}

fn serve(mut questions: File, mut answers: File) {
    let mut inode = [0u8; 8];
    while questions.read_exact(&mut inode).is_ok() {
        let pids = super::holders_here(u64::from_le_bytes(inode));
        let pids = &pids[..pids.len().min(MOST)];
        let mut answer = Vec::with_capacity(4 + 4 * pids.len());
        answer.extend_from_slice(&(pids.len() as u32).to_le_bytes());
        for p in pids {
            answer.extend_from_slice(&p.to_le_bytes());
        }
        if answers.write_all(&answer).is_err() {
            return;
        }
    }
}

/// The processes holding the socket `inode`, as seen from outside the
/// harness's user namespace; `None` when there is no helper.
pub fn holders(inode: u64) -> Option<Vec<i32>> {
    let mut helper = HELPER.lock().ok()?;
    let (questions, answers) = helper.as_mut()?;
    let asked = (|| -> io::Result<Vec<i32>> {
        questions.write_all(&inode.to_le_bytes())?;
        let mut count = [0u8; 4];
        answers.read_exact(&mut count)?;
        let count = (u32::from_le_bytes(count) as usize).min(MOST);
        let mut pids = vec![0u8; 4 * count];
        answers.read_exact(&mut pids)?;
        Ok(pids
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    })();
    match asked {
        Ok(pids) => Some(pids),
        Err(_) => {
            // A helper that stopped answering is not asked again.
            *helper = None;
            None
        }
    }
}

/// Ends the helper and reaps it: closing the questions' pipe makes it
/// leave at once; one that has not left within a second is killed.
pub fn stop() {
    if let Ok(mut helper) = HELPER.lock() {
        helper.take();
    }
    let pid = PID.swap(0, Ordering::Relaxed);
    if pid <= 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        // SAFETY: reaps the helper, this process's own child, without blocking.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if r != 0 {
            // Reaped, or already reaped by a wait for any child.
            return;
        }
        if Instant::now() >= deadline {
            // SAFETY: the helper is this process's own child, not yet reaped,
            // so the pid is still its.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
