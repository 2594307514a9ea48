//! Whether the kernel grants something, asked in a child process that
//! exits at once: a namespace or a mount tried there moves nothing of the
//! harness, and the harness stays single-threaded (a user namespace can
//! only be entered by a process with one thread).

use std::io;

/// Runs `attempt` in a forked child and gives back what it returned: the
/// child exits with the errno of its failure, 0 when it succeeded.
///
/// # Safety
///
/// `attempt` runs in a child of a process that may have other threads: it
/// must only make system calls, taking no lock and allocating nothing.
pub unsafe fn in_child(attempt: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    match libc::fork() {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match attempt() {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(libc::EPERM),
            };
            libc::_exit(code.clamp(0, 255))
        }
        child => {
            let mut status = 0;
            while libc::waitpid(child, &mut status, 0) < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => Ok(()),
                (true, errno) => Err(io::Error::from_raw_os_error(errno)),
                _ => Err(io::Error::other("the trial process did not exit")),
            }
        }
    }
}
