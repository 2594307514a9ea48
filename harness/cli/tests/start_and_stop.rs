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

#[test]
fn the_textbook_server_on_a_fixed_port_gets_the_same_verdicts_run_after_run() {
    let runs: usize = env_number("SOCKSPEC_FIXED_PORT_RUNS", 10);
    let fixture = manifest()
        .fixture
        .into_iter()
        .find(|f| f.port.is_some())
        .expect("a fixed-port fixture in the manifest");
    let mut problems = Vec::new();
    // No pause between runs: whatever a run leaves on port 12000 would
    // show in the next.
    for run in 1..=runs {
        let r = fixture.run(run as u64, "fixed-port", &[]);
        match &r.results {
            Ok(results) => {
                for d in differences(&fixture, results) {
                    problems.push(format!(
                        "run {run}: {} expected {}, got {}: {}",
                        d.check, d.expected, d.actual, d.detail
                    ));
                }
            }
            Err(why) => problems.push(format!(
                "run {run}: no report ({why}); {}",
                String::from_utf8_lossy(&r.output.stderr)
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
