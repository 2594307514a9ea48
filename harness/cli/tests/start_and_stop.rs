//! How a run starts and stops its targets: a program's verdicts depend on
//! the program alone. What one check or run leaves on a fixed port never
//! reaches the next; a target that cannot start again is judged at the
//! check's level; another program on the port stops the run and is named;
//! a crash as a client leaves is reported with its traceback; and a run
//! that stops early still writes a complete report.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{differences, env_number, manifest, repo_root, sockspec};
use sockspec_engine::results::RunResults;

fn cmd() -> Command {
    let mut c = Command::new(sockspec());
    c.current_dir(repo_root());
    c
}

fn run_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = cmd().args(args).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn verdict_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("{id} is not in the report: {report}"))
}

/// Who runs the harness, and with which `SOCKSPEC_ISOLATION`.
struct Runner {
    isolation: &'static str,
    /// An ordinary user's uid and gid, with a copy of the binary and the
    /// fixtures it can read, and a `TMPDIR` it can write; `None`: this
    /// process's user, from the repository.
    ordinary: Option<std::sync::Arc<Ordinary>>,
}

/// What an ordinary user needs to run the harness when the tests run as
/// root: the repository and `target/` may be out of its reach.
struct Ordinary {
    uid: u32,
    gid: u32,
    dir: tempfile::TempDir,
}

/// The user the tests borrow when they run as root.
const NOBODY: u32 = 65534;

impl Ordinary {
    fn make() -> Ordinary {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in [
            "fixtures/tcp-upper/fixed-port/textbook_server.py",
            "fixtures/tcp-upper/client.py",
        ] {
            let to = root.join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo_root().join(file), &to).unwrap();
        }
        std::fs::copy(sockspec(), root.join("sockspec")).unwrap();
        std::fs::create_dir(root.join("tmp")).unwrap();
        let open = |path: &std::path::Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        for d in [
            "",
            "fixtures",
            "fixtures/tcp-upper",
            "fixtures/tcp-upper/fixed-port",
        ] {
            open(&root.join(d), 0o755);
        }
        open(&root.join("tmp"), 0o1777);
        Ordinary {
            uid: NOBODY,
            gid: NOBODY,
            dir,
        }
    }
}

impl Runner {
    fn label(&self) -> String {
        match &self.ordinary {
            None => format!("{} as this user", self.isolation),
            Some(o) => format!("{} as uid {}", self.isolation, o.uid),
        }
    }

    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = match &self.ordinary {
            None => {
                let mut c = Command::new(sockspec());
                c.current_dir(repo_root());
                c
            }
            Some(o) => {
                let root = o.dir.path();
                let mut c = Command::new(root.join("sockspec"));
                c.current_dir(root)
                    .env("TMPDIR", root.join("tmp"))
                    .env("HOME", root.join("tmp"))
                    .uid(o.uid)
                    .gid(o.gid);
                c
            }
        };
        c.env("SOCKSPEC_ISOLATION", self.isolation);
        c
    }

    /// Runs the harness with `args` and a JSON report: exit status, report
    /// and stderr.
    fn run(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let out = self
            .command()
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (
            out.status.code().unwrap_or(-1),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Whether the machine gives this runner its isolation: a level it
    /// refuses is a usage error (exit status 2) before anything starts.
    fn offered(&self) -> bool {
        let (code, _, err) = self.run(&[
            "run",
            "tcp-upper",
            "--server",
            ":",
            "--timeout-scale",
            "0.01",
        ]);
        code != 2 || !err.contains("SOCKSPEC_ISOLATION")
    }
}

/// Every way of running the harness this machine offers: each isolation
/// level for this process's user and, when it is root, for an ordinary
/// user too.
fn runners() -> Vec<Runner> {
    // SAFETY: geteuid only reads the process's credentials.
    let root = unsafe { libc::geteuid() } == 0;
    let ordinary = root.then(|| std::sync::Arc::new(Ordinary::make()));
    let mut all = Vec::new();
    for user in [None, ordinary] {
        for isolation in ["namespace", "user-namespace", "shared"] {
            let r = Runner {
                isolation,
                ordinary: user.clone(),
            };
            if r.offered() {
                eprintln!("runs with {}", r.label());
                all.push(r);
            } else {
                eprintln!("not offered here: {}", r.label());
            }
        }
    }
    all
}

/// The runs on the machine's port 12000 take turns: on the shared
/// loopback two at once would meet.
static PORT_12000: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn textbook_fixture() -> common::Fixture {
    manifest()
        .fixture
        .into_iter()
        .find(|f| f.port == Some(12000))
        .expect("a fixture on port 12000 in the manifest")
}

/// Runs the textbook server on port 12000 and says how its verdicts and
/// exit status differ from the manifest's.
fn textbook_run(runner: &Runner, fixture: &common::Fixture, seed: u64) -> Vec<String> {
    let seed = seed.to_string();
    let (code, report, err) = runner.run(&[
        "run",
        "tcp-upper",
        "--server",
        &fixture.command,
        "--port",
        "12000",
        "--seed",
        &seed,
    ]);
    let mut problems = Vec::new();
    if code != fixture.expected_exit() {
        problems.push(format!("exit status {code}: {}", err.trim()));
    }
    match serde_json::from_value::<RunResults>(report) {
        Ok(results) => {
            if results.run.isolation.as_str() != runner.isolation {
                problems.push(format!(
                    "the report says isolation {:?}",
                    results.run.isolation
                ));
            }
            for d in differences(fixture, &results) {
                problems.push(format!(
                    "{} expected {}, got {}: {}",
                    d.check, d.expected, d.actual, d.detail
                ));
            }
        }
        Err(e) => problems.push(format!("no report ({e}): {}", err.trim())),
    }
    problems
}

#[test]
fn the_textbook_server_on_a_fixed_port_gets_the_same_verdicts_run_after_run() {
    let runs: usize = env_number("SOCKSPEC_FIXED_PORT_RUNS", 4);
    let fixture = textbook_fixture();
    let _turn = PORT_12000.lock().unwrap_or_else(|e| e.into_inner());
    let mut problems = Vec::new();
    for runner in runners() {
        // No pause between runs: whatever a run leaves on port 12000 would
        // show in the next.
        for run in 1..=runs {
            for p in textbook_run(&runner, &fixture, run as u64) {
                problems.push(format!("{}, run {run}: {p}", runner.label()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_client_run_on_a_fixed_port_leaves_it_free_for_the_next_server_at_once() {
    let fixture = textbook_fixture();
    let _turn = PORT_12000.lock().unwrap_or_else(|e| e.into_inner());
    let mut problems = Vec::new();
    for runner in runners() {
        let (code, report, err) = runner.run(&[
            "run",
            "tcp-upper",
            "--client",
            "python3 fixtures/tcp-upper/client.py 12000",
            "--port",
            "12000",
        ]);
        if code != 0 {
            problems.push(format!(
                "{}: the client run: exit status {code}: {report} {err}",
                runner.label()
            ));
        }
        // At once: what the harness's accepted connections left on 12000
        // would keep a server without SO_REUSEADDR from binding it.
        for p in textbook_run(&runner, &fixture, 1) {
            problems.push(format!("{}: the server run after it: {p}", runner.label()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_isolation_the_machine_refuses_or_does_not_know_is_a_usage_error() {
    let ordinary = (unsafe { libc::geteuid() } == 0).then(|| std::sync::Arc::new(Ordinary::make()));
    // An ordinary user may not make network namespaces without a user
    // namespace of its own.
    let user = Runner {
        isolation: "namespace",
        ordinary: ordinary.clone(),
    };
    if ordinary.is_some() || !user.offered() {
        let (code, _, err) = user.run(&["run", "tcp-upper", "--server", ":"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("SOCKSPEC_ISOLATION=namespace") && err.contains("CAP_SYS_ADMIN"),
            "{err}"
        );
    }
    let unknown = Runner {
        isolation: "private",
        ordinary: None,
    };
    let (code, _, err) = unknown.run(&["run", "tcp-upper", "--server", ":"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("namespace, user-namespace, shared"), "{err}");
}

#[test]
fn a_should_check_whose_target_cannot_start_again_warns_and_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let server = format!(
        "if test -e {m}; then echo 'refusing to start twice' >&2; exit 1; fi; touch {m}; \
         exec python3 fixtures/tcp-upper/server.py {{port}}",
        m = marker.display()
    );
    let (code, report, err) = run_json(&[
        "run",
        "tcp-upper",
        "--server",
        &server,
        "--only",
        "tcp-upper.echo",
        "--only",
        "tcp-upper.backlog",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "a SHOULD miss does not fail the run: {err}");
    assert_eq!(verdict_of(&report, "tcp-upper.echo")["verdict"], "pass");
    let backlog = verdict_of(&report, "tcp-upper.backlog");
    assert_eq!(backlog["verdict"], "warn", "{backlog}");
    assert!(backlog["detail"]
        .as_str()
        .unwrap()
        .contains("could not be started for this check"));
    assert!(backlog["stderr_tail"]
        .as_str()
        .unwrap_or_default()
        .contains("refusing to start twice"));
}

/// A server started by the test itself, listening on `port` like a stale
/// instance a student forgot in another terminal.
struct Stale(Child);

impl Stale {
    fn start(port: u16) -> Stale {
        let child = Command::new("python3")
            .current_dir(repo_root())
            .args(["fixtures/tcp-upper/server.py", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the stale server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Stale(child)
    }
}

impl Drop for Stale {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_port_held_by_another_process_stops_the_run_with_exit_3_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stale = Stale::start(port);
    let (code, report, err) = run_json(&[
        "run",
        "tcp-upper",
        "--server",
        "python3 fixtures/tcp-upper/server.py",
        "--port",
        &port.to_string(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 3, "{err}");
    let pid = format!("pid {}", stale.0.id());
    assert!(err.contains(&pid) && err.contains("server.py"), "{err}");
    assert_eq!(report["error"]["kind"], "target_failed");
    assert!(report["error"]["message"].as_str().unwrap().contains(&pid));
    assert_eq!(report["checks"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_server_that_raises_after_its_client_closes_is_reported_crashed_every_time() {
    let runs: usize = env_number("SOCKSPEC_CRASH_RUNS", 10);
    for run in 1..=runs {
        let (code, report, err) = run_json(&[
            "run",
            "tcp-upper",
            "--server",
            "python3 fixtures/tcp-upper/faulty/server_crashes_after_close.py {port}",
            "--only",
            "tcp-upper.next-client",
            "--format",
            "json",
        ]);
        assert_eq!(code, 1, "run {run}: {err}");
        let check = verdict_of(&report, "tcp-upper.next-client");
        let detail = check["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("the server crashed during the check: exit status 1"),
            "run {run}: {detail}"
        );
        let tail = check["stderr_tail"].as_str().unwrap_or_default();
        assert!(
            tail.contains("Traceback") && tail.contains("TypeError"),
            "run {run}: the traceback is missing: {tail:?}"
        );
    }
}

#[test]
fn a_run_that_stops_early_still_writes_a_complete_json_and_junit_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let never = [
        "run",
        "tcp-upper",
        "--server",
        "sleep 30",
        "--timeout-scale",
        "0.1",
    ];
    let out = cmd()
        .args(never)
        .args(["--format", "json", "--output"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("whole JSON");
    assert_eq!(report["error"]["kind"], "target_failed");
    assert!(report["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did not listen on port"));
    assert!(report["summary"].is_object());

    let out = cmd()
        .args(never)
        .args(["--format", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<error") && xml.contains("did not listen on port"),
        "{xml}"
    );
    assert!(xml.trim_end().ends_with("</testsuites>"), "{xml}");
}

#[test]
fn without_namespaces_the_time_wait_a_restart_leaves_is_cleared_before_the_next_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = format!("python3 fixtures/tcp-upper/fixed-port/textbook_server.py {port}");
    // The restart check kills the server with a connection open on
    // purpose: its port is in TIME_WAIT when the check ends.
    for run in 1..=3 {
        let out = cmd()
            .env("SOCKSPEC_ISOLATION", "shared")
            .args(["run", "tcp-upper", "--server", &server, "--port", &port])
            .args(["--only", "tcp-upper.restart", "--only", "tcp-upper.echo"])
            .args(["--format", "json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "run {run}: {err}");
        assert_eq!(verdict_of(&report, "tcp-upper.echo")["verdict"], "pass");
        let restart = verdict_of(&report, "tcp-upper.restart");
        assert_eq!(restart["verdict"], "warn", "run {run}: {restart}");
        assert!(restart["detail"]
            .as_str()
            .unwrap()
            .contains("the new instance could not bind it"));
    }
}
