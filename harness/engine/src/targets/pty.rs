//! A pseudo-terminal for a target's standard output.
//!
//! A program is judged as its user runs it: in a terminal. C's stdio, and
//! the runtimes of most languages, buffer standard output by line on a
//! terminal and in blocks of kilobytes on a pipe, so a correct program that
//! prints a reply and then waits (for its next input line, its next
//! datagram) shows nothing on a pipe until it exits. Giving its standard
//! output the slave side of a pseudo-terminal makes every language behave
//! as it does for its user, without touching its environment.
//!
//! The terminal is made raw, so the bytes read from the master are the
//! bytes written (no "\n" turned into "\r\n"), and it is opened without
//! becoming anyone's controlling terminal: the target runs in a process
//! group of its own, and neither its job control nor the harness's own
//! terminal (Ctrl-C) reaches it through this one. Only standard output is
//! given the terminal: input stays a pipe the harness writes (a terminal
//! would echo typed lines into the output) and stderr stays a pipe (its
//! tail is kept apart from the output).

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Both sides of a new pseudo-terminal, made raw.
pub(crate) struct Pty {
    /// The harness's side: what the target writes is read here. Reading
    /// it gives `EIO` once every holder of the slave has closed it.
    pub(crate) master: File,
    /// The target's side, to be its standard output.
    pub(crate) slave: OwnedFd,
}

/// Checks a libc return value, turning -1 into the error it set.
fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret == -1 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("could not {what} for the target's output: {e}"),
        ));
    }
    Ok(ret)
}

impl Pty {
    /// Opens a pseudo-terminal whose sides are closed on exec (the target
    /// gets the slave as its standard output only) and never become a
    /// controlling terminal.
    pub(crate) fn open() -> io::Result<Pty> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: posix_openpt returns a new descriptor or -1.
        let fd = check(
            unsafe { libc::posix_openpt(flags) },
            "open a pseudo-terminal",
        )?;
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let master = unsafe { File::from_raw_fd(fd) };
        // SAFETY: grantpt and unlockpt only act on the master's descriptor.
        check(unsafe { libc::grantpt(fd) }, "grant a pseudo-terminal")?;
        check(unsafe { libc::unlockpt(fd) }, "unlock a pseudo-terminal")?;
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: ptsname_r writes a NUL-terminated name of at most the
        // buffer's length, or fails.
        let err = unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) };
        if err != 0 {
            return Err(io::Error::new(
                io::Error::from_raw_os_error(err).kind(),
                format!(
                    "could not name a pseudo-terminal for the target's output: {}",
                    io::Error::from_raw_os_error(err)
                ),
            ));
        }
        // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated path.
        let path = unsafe { CStr::from_ptr(name.as_ptr()) };
        // SAFETY: the path is a valid C string; the result is checked.
        let sfd = check(
            unsafe { libc::open(path.as_ptr(), flags) },
            "open a pseudo-terminal's slave",
        )?;
        // SAFETY: `sfd` is a new descriptor that nothing else owns.
        let slave = unsafe { OwnedFd::from_raw_fd(sfd) };
        make_raw(sfd)?;
        Ok(Pty { master, slave })
    }
}

/// Makes the terminal pass bytes through as written: no output processing
/// (OPOST off: "\n" stays "\n"), no echo, no line editing, no signals from
/// typed characters.
fn make_raw(fd: libc::c_int) -> io::Result<()> {
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open terminal; `t` is a valid termios.
    check(
        unsafe { libc::tcgetattr(fd, &mut t) },
        "read a terminal's settings",
    )?;
    // SAFETY: cfmakeraw only changes the fields of `t`.
    unsafe { libc::cfmakeraw(&mut t) };
    // SAFETY: as for tcgetattr.
    check(
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) },
        "set a terminal raw",
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn bytes_arrive_as_written_and_the_end_reads_as_eio() {
        let pty = Pty::open().unwrap();
        let mut slave = File::from(pty.slave);
        slave.write_all(b"one\ntwo\r\n\x00end").unwrap();
        drop(slave);
        let mut master = pty.master;
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // The end of the target's side, as Linux reports it.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, b"one\ntwo\r\n\x00end");
    }

    #[test]
    fn the_slave_is_a_terminal() {
        use std::os::fd::AsRawFd;
        let pty = Pty::open().unwrap();
        // SAFETY: isatty only inspects the descriptor.
        assert_eq!(unsafe { libc::isatty(pty.slave.as_raw_fd()) }, 1);
    }
}
