//! The fixture manifest and running the `sockspec` binary on a fixture,
//! shared by the project's end-to-end tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use sockspec_engine::results::RunResults;

/// The repository's top folder (fixture commands run from there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn sockspec() -> PathBuf {
    assert_cmd::cargo::cargo_bin("sockspec")
}

#[derive(Deserialize, Debug, Clone)]
pub struct Manifest {
    pub fixture: Vec<Fixture>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub suite: String,
    pub role: String,
    pub command: String,
    /// A command that makes the program from its source, run once before
    /// the fixture's first run, from the repository's top folder. `{build}`
    /// in it and in `command` is a directory of the test's own for what it
    /// makes: compiled programs are made where they run, never committed.
    pub build: Option<String>,
    pub fault: Option<String>,
    pub catches: Option<String>,
    /// What a hostile fixture does (no protocol names it).
    pub hostile: Option<String>,
    /// The exit status expected when it is not 0 or 1 (3: never listened).
    pub exit: Option<i32>,
    /// Text the harness's stderr must hold (with `exit`).
    pub stderr_contains: Option<String>,
    /// A bound on the whole run's time.
    pub max_seconds: Option<u64>,
    /// The port written in the program's code, given with `--port`.
    pub port: Option<u16>,
    /// The isolation the run is held to (`SOCKSPEC_ISOLATION`), where the
    /// fixture is about one; unset, the most the machine allows.
    pub isolation: Option<String>,
    /// Profile parameters the program's assignment variant needs, each
    /// given as `--param KEY=VALUE`.
    #[serde(default)]
    pub params: Vec<String>,
    /// The fixture connects to ::1: a machine without it cannot run it.
    #[serde(default)]
    pub needs_ipv6: bool,
    /// Its processes spin by design, dozens at a time (a forking server
    /// whose every child spins): the matrix runs such fixtures one at a
    /// time, so that the load they make on purpose does not add up and
    /// decide other fixtures' verdicts.
    #[serde(default)]
    pub spins: bool,
    /// It only sleeps through the harness's deadlines (never listens,
    /// never answers, answers a byte a second): it costs the machine no
    /// CPU, so the matrix runs such fixtures in lanes of their own beside
    /// the others instead of letting them hold a lane for half a minute.
    #[serde(default)]
    pub waits: bool,
    #[serde(default)]
    pub expect: BTreeMap<String, String>,
    /// Words a check's detail must hold: that it names the cause (a
    /// process, a count, the holder of a connection).
    #[serde(default)]
    pub words: BTreeMap<String, Vec<String>>,
    /// Phrases a check's detail must not hold: advice or findings the
    /// program's own code contradicts (a hint about a call it never makes).
    #[serde(default)]
    pub not_words: BTreeMap<String, Vec<String>>,
}

pub fn manifest() -> Manifest {
    let path = repo_root().join("fixtures/manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures this machine can run, saying which it leaves out and why.
///
/// `SOCKSPEC_MATRIX_ONLY=TEXT` keeps the fixtures whose name contains TEXT
/// (several, comma-separated), to rerun a few while working on them.
pub fn runnable(fixtures: Vec<Fixture>) -> Vec<Fixture> {
    let ipv6 = std::net::TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok();
    let only: Vec<String> = std::env::var("SOCKSPEC_MATRIX_ONLY")
        .map(|s| {
            s.split(',')
                .map(str::to_owned)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    fixtures
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|t| f.name.contains(t.as_str())))
        .filter(|f| {
            let runs = ipv6 || !f.needs_ipv6;
            if !runs {
                eprintln!(
                    "skipped {}: this machine has no IPv6 loopback (::1)",
                    f.name
                );
            }
            runs
        })
        .collect()
}

impl Fixture {
    pub fn command_line(&self) -> String {
        let command = self
            .command
            .replace("{sockspec}", &sockspec().display().to_string());
        match &self.build {
            Some(build) => {
                command.replace("{build}", &built(&self.name, build).display().to_string())
            }
            None => command,
        }
    }

    /// The verdict the manifest expects of `id` at `level`.
    pub fn expected(&self, id: &str, level: &str) -> String {
        self.expect.get(id).cloned().unwrap_or_else(|| {
            if level == "info" {
                "info".into()
            } else {
                "pass".into()
            }
        })
    }

    /// The exit status the manifest implies.
    pub fn expected_exit(&self) -> i32 {
        self.exit
            .unwrap_or(if self.expect.values().any(|v| v == "fail") {
                1
            } else {
                0
            })
    }

    /// Runs the fixture's suite against it. Every process the run starts
    /// carries `tag` in its environment, so survivors can be found.
    pub fn run(&self, seed: u64, tag: &str, extra: &[&str]) -> Run {
        let flag = if self.role == "client" {
            "--client"
        } else {
            "--server"
        };
        // Compiled before the clock starts: javac's own start is seconds
        // on a loaded machine, and no part of the program's run.
        let command = self.command_line();
        let started = std::time::Instant::now();
        let output = Command::new(sockspec())
            .current_dir(repo_root())
            .env(TAG_VAR, tag)
            // A program is judged as its user runs it: a Python made
            // unbuffered by the caller's environment would hide one that
            // only prints in time that way.
            .env_remove("PYTHONUNBUFFERED")
            .envs(self.isolation.iter().map(|i| ("SOCKSPEC_ISOLATION", i)))
            .args(["run", &self.suite, flag, &command, "--format", "json"])
            .args(["--seed", &seed.to_string()])
            .args(
                self.port
                    .iter()
                    .flat_map(|p| ["--port".to_string(), p.to_string()]),
            )
            .args(self.params.iter().flat_map(|p| ["--param", p.as_str()]))
            .args(extra)
            .output()
            .expect("sockspec runs");
        let elapsed = started.elapsed();
        let results = serde_json::from_slice(&output.stdout).map_err(|e| {
            let start = String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(200)]);
            format!("{e}; stdout begins {start:?}")
        });
        Run {
            results,
            output,
            elapsed,
        }
    }
}

/// The directory where `build` made the fixture `name`, made on the first
/// call of this test process and kept for the others: a compiler's own
/// start (javac's is a second or more) is then paid once, not at every
/// start of the program.
fn built(name: &str, build: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<BTreeMap<String, PathBuf>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.get(name) {
        return dir.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fixture-build-{}", std::process::id()))
        .join(built.len().to_string());
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let command = build.replace("{build}", &dir.display().to_string());
    let out = Command::new("sh")
        .args(["-c", &command])
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("{name}: could not run its build `{command}`: {e}"));
    assert!(
        out.status.success(),
        "{name}: its build `{command}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    built.insert(name.to_owned(), dir.clone());
    dir
}

/// What one run of the harness on a fixture gave.
pub struct Run {
    /// The JSON report read back into the engine's results, or why it
    /// could not be.
    pub results: Result<RunResults, String>,
    pub output: Output,
    pub elapsed: std::time::Duration,
}

/// The environment variable that marks a run's processes.
pub const TAG_VAR: &str = "SOCKSPEC_TEST_RUN_TAG";

/// Processes (not zombies) whose environment holds `tag`, waiting up to
/// `grace` for them to go.
pub fn survivors(tag: &str, grace: std::time::Duration) -> Vec<String> {
    let needle = format!("{TAG_VAR}={tag}");
    let deadline = std::time::Instant::now() + grace;
    loop {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if !env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
                continue;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
            if !zombie {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                found.push(format!("{pid} {}", cmd.trim()));
            }
        }
        if found.is_empty() || std::time::Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A unique tag for one run.
pub fn unique_tag(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}-{what}", std::process::id(), seed())
}

/// A verdict that differs from the manifest.
#[derive(Debug)]
pub struct Difference {
    pub fixture: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    pub detail: String,
}

/// Compares a run's results with the manifest's expectations for `fixture`.
pub fn differences(fixture: &Fixture, results: &RunResults) -> Vec<Difference> {
    let mut out = Vec::new();
    for check in &results.checks {
        let actual = check.verdict.as_str();
        let expected = fixture.expected(&check.id, check.level.as_str());
        if actual != expected {
            out.push(Difference {
                fixture: fixture.name.clone(),
                check: check.id.clone(),
                expected,
                actual: actual.to_string(),
                detail: sockspec_engine::report::detail(check),
            });
        }
    }
    for id in fixture.expect.keys() {
        if !results.checks.iter().any(|c| &c.id == id) {
            out.push(Difference {
                fixture: fixture.name.clone(),
                check: id.clone(),
                expected: fixture.expect[id].clone(),
                actual: "not run".into(),
                detail: "the manifest names a check the run did not report".into(),
            });
        }
    }
    out
}

/// A whole number from the environment variable `name`, or `default`.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A seed from the environment (`SOCKSPEC_SEED`) or the clock.
pub fn seed() -> u64 {
    std::env::var("SOCKSPEC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                % 1_000_000_000
        })
}

/// Runs `jobs` on `workers` threads, returning results in order.
pub fn parallel<T: Send, R: Send>(
    jobs: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let job = queue.lock().unwrap().pop();
                let Some((i, job)) = job else { break };
                let r = f(job);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Writes into `dir` the course's uppercase server with a race forced by
/// a count of its starts (kept in `dir`): on its first start it serves one
/// client and exits, on every later one it serves them all. A check that
/// needs a second client misses on the first try only: it is FLAKY.
pub fn first_start_one_shot_server(dir: &Path) -> PathBuf {
    let count = dir.join("starts");
    let server = dir.join("server.py");
    std::fs::write(
        &server,
        format!(
            "import socket, sys, os\n\
             path = {count:?}\n\
             n = int(open(path).read()) + 1 if os.path.exists(path) else 1\n\
             open(path, 'w').write(str(n))\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('127.0.0.1', int(sys.argv[1])))\n\
             s.listen()\n\
             while True:\n\
             \x20   c, _ = s.accept()\n\
             \x20   while True:\n\
             \x20       d = c.recv(1024)\n\
             \x20       if not d:\n\
             \x20           break\n\
             \x20       c.sendall(d.upper())\n\
             \x20   c.close()\n\
             \x20   if n == 1:\n\
             \x20       break\n",
            count = count.display().to_string()
        ),
    )
    .expect("the server is written");
    server
}
