//! A server the harness starts: launched through the shell, waited for
//! until its port is listening (read from the kernel, never by connecting),
//! and restarted on the same port when a check asks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Instant;

use crate::procfs;
use crate::target::{describe_exit, Launch, Process};
use crate::timing::{Deadline, Timing};

/// A server the harness started.
pub struct Launched {
    launch: Launch,
    process: Process,
    addr: SocketAddr,
}

/// Why a target could not be brought up.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
}

impl Launched {
    /// Starts the server and waits, without connecting, until its port is
    /// in LISTEN state.
    pub fn start(launch: Launch, timing: &Timing) -> Result<Launched, StartError> {
        let mut process = Process::spawn(&launch).map_err(|e| StartError {
            message: format!("could not run `{}` through sh: {e}", launch.command_line()),
        })?;
        let addr = wait_listening(&mut process, launch.port, timing)?;
        Ok(Launched {
            launch,
            process,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.launch.port
    }

    pub fn process(&mut self) -> &mut Process {
        &mut self.process
    }

    pub fn command_line(&self) -> String {
        self.launch.command_line()
    }

    /// Kills the running instance and starts another on the same port.
    pub fn restart(&mut self, timing: &Timing) -> Result<(), StartError> {
        self.process.kill();
        let mut process = Process::spawn(&self.launch).map_err(|e| StartError {
            message: format!("could not run `{}` again: {e}", self.launch.command_line()),
        })?;
        let waited = wait_listening(&mut process, self.launch.port, timing);
        self.process = process;
        self.addr = waited?;
        Ok(())
    }
}

fn wait_listening(
    process: &mut Process,
    port: u16,
    timing: &Timing,
) -> Result<SocketAddr, StartError> {
    let within = timing.deadline(Deadline::Listen);
    let deadline = Instant::now() + within;
    loop {
        if let Some(ip) = procfs::listening_on(port) {
            let ip = match ip {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                other => other,
            };
            return Ok(SocketAddr::new(ip, port));
        }
        if let Some(status) = process.exited() {
            process
                .stderr()
                .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
            return Err(StartError {
                message: format!(
                    "the server ended ({}) before listening on port {port}{}",
                    describe_exit(status),
                    stderr_block(process)
                ),
            });
        }
        if Instant::now() >= deadline {
            return Err(StartError {
                message: format!(
                    "the server did not listen on port {port} within {:.1}s; if its port is written \
                     in the code, pass it with --port, or use {{port}} in the command{}",
                    within.as_secs_f64(),
                    stderr_block(process)
                ),
            });
        }
        thread::sleep(Timing::POLL);
    }
}

pub(crate) fn stderr_block(process: &Process) -> String {
    let tail = process.stderr().tail(12);
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\nits stderr ends with:\n{}", indent(&tail, "  | "))
    }
}

/// Prefixes every line of `text`.
pub fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
