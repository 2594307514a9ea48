//! Process hygiene: a run interrupted at a random moment by SIGINT or
//! SIGTERM leaves no process of any target behind, not even a zombie for
//! init to reap, no temporary file, and the terminal as it found it; and it
//! says which check it was in.
//!
//! `SOCKSPEC_HYGIENE_ROUNDS=N` sets the number of interrupted runs (default
//! 8); the moments and signals come from `SOCKSPEC_SEED` (default: the clock).

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{env_number, repo_root, seed, sockspec, survivors, unique_tag, TAG_VAR};

/// Targets that fork, escape their group, spin, flood, or read stdin, with
/// the suite each is run through.
const TARGETS: &[(&str, &str, &str)] = &[
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/tcp-upper/server.py {port}",
    ),
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/tcp-upper/faulty/server_fork_spin.py {port}",
    ),
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/hostile/forks_escape.py {port}",
    ),
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/hostile/stderr_flood.py {port}",
    ),
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/hostile/ignores_sigterm.py {port}",
    ),
    (
        "tcp-upper",
        "--server",
        "python3 fixtures/hostile/slow_answer.py {port}",
    ),
    (
        "tcp-upper",
        "--client",
        "python3 fixtures/tcp-upper/faulty/client_sends_empty.py {port}",
    ),
    (
        "udp-upper",
        "--server",
        "python3 fixtures/hostile/udp_flood.py {port}",
    ),
    (
        "udp-chat",
        "--server",
        "python3 fixtures/udp-chat/server.py {port}",
    ),
    (
        "udp-upper",
        "--client",
        "python3 fixtures/udp-upper/client.py {port}",
    ),
    (
        "cmd-udp",
        "--server",
        "python3 fixtures/cmd-udp/server.py {port}",
    ),
];

/// A small deterministic generator for the moments and choices.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

fn termios(fd: i32) -> libc::termios {
    // SAFETY: tcgetattr fills the struct for a terminal descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(fd, &mut t), 0, "tcgetattr");
        t
    }
}

fn same(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

/// A pseudo-terminal: the harness writes to it as to a user's terminal.
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors that we then own.
    unsafe {
        let r = libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        );
        assert_eq!(r, 0, "openpty");
        (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

/// The tests here one at a time: each tells the harness's leftovers from
/// the processes it started itself by when they started.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Makes this test process the subreaper of what it starts: a process the
/// harness leaves unreaped when it exits comes here, not to init, where the
/// test sees it.
fn adopt_orphans() {
    // SAFETY: prctl with these arguments only changes this process's flags.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// When a process started, in clock ticks after boot.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The processes, zombies included, that became this test's children after
/// a harness that started at `since` exited: what it left unreaped. Each
/// is reaped here, so it is reported once.
fn left_unreaped(since: u64) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let started = f.get(19).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        if f.get(1) == Some(&me.as_str()) && started >= since {
            let name = head.split_once('(').map_or("", |(_, n)| n);
            found.push(format!("{pid} ({name}) in state {}", f[0]));
            // SAFETY: kills and reaps a child of this test process.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    found
}

/// Waits for `run` to exit, at most 10 s (then kills it).
fn exit_of(run: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = run.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() >= deadline {
            let _ = run.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_interrupted_run_names_its_check_and_reaps_its_children_before_it_exits() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    adopt_orphans();
    // The server under a shell of its own: killed together, either may
    // end first, and the harness adopts the server when the shell goes.
    let server = "python3 fixtures/hostile/slow_answer.py {port} & wait";
    let mut run = Command::new(sockspec())
        .current_dir(repo_root())
        .args([
            "run",
            "tcp-upper",
            "--server",
            server,
            "--only",
            "tcp-upper.echo",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let since = start_time(run.id() as i32).unwrap_or(0);
    // The answer comes a byte a second: a second in, the check is under way.
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: signals the sockspec process this test started.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let status = exit_of(&mut run);
    let mut err = String::new();
    if let Some(mut e) = run.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{err}");
    assert!(
        err.trim_end()
            .ends_with("interrupted during tcp-upper.echo; every target process was ended"),
        "{err}"
    );
    let left = left_unreaped(since);
    assert!(left.is_empty(), "the harness exited leaving {left:?}");
}

#[test]
fn an_interrupted_run_leaves_nothing_behind() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    adopt_orphans();
    let rounds: u64 = env_number("SOCKSPEC_HYGIENE_ROUNDS", 8);
    let seed = seed();
    let mut rng = Lcg(seed);
    let mut problems = Vec::new();
    for round in 0..rounds {
        let (suite, flag, target) = TARGETS[rng.next(TARGETS.len() as u64) as usize];
        let (signal, name) = if rng.next(2) == 0 {
            (libc::SIGINT, "SIGINT")
        } else {
            (libc::SIGTERM, "SIGTERM")
        };
        // From just after the harness starts (its handler is in place within a
        // few milliseconds) to well into a run.
        let moment = Duration::from_millis(60 + rng.next(2940));
        let what = format!(
            "round {round} (seed {seed}): {name} after {}ms to {target}",
            moment.as_millis()
        );

        let tag = unique_tag("hygiene");
        let tmp = tempfile::tempdir().unwrap();
        let (master, slave) = pty();
        let before = termios(slave.as_raw_fd());
        let mut run = Command::new(sockspec())
            .current_dir(repo_root())
            .env(TAG_VAR, &tag)
            .env("TMPDIR", tmp.path())
            .args(["run", suite, flag, target])
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()))
            .spawn()
            .unwrap();
        let since = start_time(run.id() as i32).unwrap_or(0);
        // Drain the terminal so the harness never blocks writing to it.
        let mut reader = std::fs::File::from(master);
        let screen = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&buf[..n]);
            }
            all
        });
        std::thread::sleep(moment);
        // SAFETY: signals the sockspec process this test started.
        unsafe {
            libc::kill(run.id() as i32, signal);
        }
        let status = exit_of(&mut run);
        let unreaped = left_unreaped(since);
        if !unreaped.is_empty() {
            problems.push(format!("{what}: the harness exited leaving {unreaped:?}"));
        }
        let after = termios(slave.as_raw_fd());
        drop(slave);
        let shown = String::from_utf8_lossy(&screen.join().unwrap()).into_owned();

        match status.and_then(|s| s.code()) {
            // A run that finished before the signal is fine too.
            Some(130) | Some(0) | Some(1) => {}
            other => problems.push(format!("{what}: exit {other:?}")),
        }
        if status.and_then(|s| s.code()) == Some(130)
            && !shown.trim_end().ends_with("every target process was ended")
        {
            problems.push(format!(
                "{what}: the terminal does not end on the interrupt message: {:?}",
                tail(&shown)
            ));
        }
        if !same(&before, &after) {
            problems.push(format!("{what}: the terminal's settings changed"));
        }
        let left = survivors(&tag, Duration::from_secs(3));
        if !left.is_empty() {
            problems.push(format!("{what}: processes survived: {left:?}"));
        }
        let files: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        if !files.is_empty() {
            problems.push(format!("{what}: temporary files left: {files:?}"));
        }
        eprintln!("{what}: exit {:?}", status.and_then(|s| s.code()));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(200)..].iter().collect()
}
