//! The command-line contract: subcommands, exit statuses, report formats,
//! reproducible seeds and cleanup. Scripts and CI jobs depend on all of it.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, sockspec};

fn cmd() -> Command {
    let mut c = Command::new(sockspec());
    c.current_dir(repo_root());
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stdout_of(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the tcp-upper checks matching `only` against `server`.
fn server_run(server: &str, only: &str) -> (i32, String, String) {
    stdout_of(cmd().args(["run", "tcp-upper", "--server", server, "--only", only]))
}

const GOOD_SERVER: &str = "python3 fixtures/tcp-upper/server.py {port}";

#[test]
fn list_shows_every_check_with_its_level() {
    let (code, out, _) = stdout_of(cmd().arg("list"));
    assert_eq!(code, 0);
    for line in [
        "tcp-upper.echo",
        "MUST",
        "tcp-upper.restart",
        "SHOULD",
        "tcp-upper.client.exit",
    ] {
        assert!(out.contains(line), "{line} missing from:\n{out}");
    }
}

#[test]
fn an_unknown_suite_is_a_usage_error_that_names_the_suites() {
    let (code, _, err) = stdout_of(cmd().args(["run", "tcp-uper", "--server", "x"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("no suite named \"tcp-uper\"") && err.contains("tcp-upper"),
        "{err}"
    );
}

#[test]
fn a_run_needs_exactly_one_target() {
    assert_eq!(
        cmd()
            .args(["run", "tcp-upper"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    let both = cmd()
        .args(["run", "tcp-upper", "--server", "a", "--client", "b"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn bad_options_say_what_would_be_right() {
    let (code, _, err) =
        stdout_of(cmd().args(["run", "tcp-upper", "--server", "x", "--param", "nope=1"]));
    assert_eq!(code, 2);
    assert!(err.contains("known parameters are"), "{err}");
    let (code, _, err) =
        stdout_of(cmd().args(["run", "tcp-upper", "--server", "x", "--timeout-scale", "0"]));
    assert_eq!(code, 2);
    assert!(err.contains("--timeout-scale"), "{err}");
    let (code, _, err) =
        stdout_of(cmd().args(["run", "tcp-upper", "--server", "x", "--only", "nothing.*"]));
    assert_eq!(code, 2);
    assert!(err.contains("matches no check"), "{err}");
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        "x",
        "--only",
        "tcp-upper.client.*",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("leave no server check"), "{err}");
}

#[test]
fn a_server_that_never_listens_exits_3_within_its_deadline() {
    let start = Instant::now();
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        "sleep 30",
        "--timeout-scale",
        "0.2",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("did not listen on port"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// A tcp-upper server with its port written in its code, as most course
/// programs are: it reads no argument. The port is an unusual one, so that
/// nothing else on the machine holds it.
const HARD_CODED_SERVER: &str = "import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", 47913))
s.listen()
while True:
    c, _ = s.accept()
    with c:
        while data := c.recv(1024):
            c.sendall(data.upper())
";

fn auto_run(script: &std::path::Path, isolation: Option<&str>) -> Command {
    let mut c = cmd();
    c.args([
        "run",
        "tcp-upper",
        "--server",
        &format!("python3 {}", script.display()),
        "--port",
        "auto",
        "--only",
        "tcp-upper.echo",
        "--only",
        "tcp-upper.restart",
    ]);
    if let Some(level) = isolation {
        c.env("SOCKSPEC_ISOLATION", level);
    }
    c
}

#[test]
fn a_server_with_its_port_written_in_its_code_is_found_with_port_auto_in_every_isolation() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.py");
    std::fs::write(&script, HARD_CODED_SERVER).unwrap();
    for isolation in [None, Some("shared")] {
        let (code, out, err) = stdout_of(&mut auto_run(&script, isolation));
        assert_eq!(code, 0, "{isolation:?}\n{out}\n{err}");
        // Found again after the restart check kills it.
        assert!(
            out.contains("PASS") && out.contains("tcp-upper.restart") && !out.contains("FAIL"),
            "{out}"
        );
    }
}

#[test]
fn two_servers_on_the_same_written_port_run_at_once_on_private_loopbacks() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.py");
    std::fs::write(&script, HARD_CODED_SERVER).unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            auto_run(&script, None)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("isolation shared") {
            return; // the machine grants no namespace: one port, one at a time
        }
        assert_eq!(out.status.code(), Some(0), "{text}");
    }
}

#[test]
fn port_auto_is_for_a_server_given_no_port() {
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--port",
        "auto",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--port auto") && err.contains("{port}"),
        "{err}"
    );
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--client",
        "python3 fixtures/tcp-upper/client.py {port}",
        "--port",
        "auto",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--port auto is for a server"), "{err}");
}

#[test]
fn a_server_that_never_listens_on_any_port_exits_3_within_its_deadline() {
    let start = Instant::now();
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        "sleep 30",
        "--port",
        "auto",
        "--timeout-scale",
        "0.2",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("did not listen on any port"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_server_that_dies_at_start_exits_3_with_its_stderr() {
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        "python3 -c 'raise SystemExit(\"cannot bind: port taken\")'",
    ]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("exit status 1") && err.contains("cannot bind: port taken"),
        "{err}"
    );
}

#[test]
fn a_failed_must_check_exits_1_and_a_clean_run_exits_0() {
    let faulty = "python3 fixtures/tcp-upper/faulty/server_one_client.py {port}";
    let (code, out, _) = server_run(faulty, "*.next-client");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL") && out.contains("tcp-upper.next-client"),
        "{out}"
    );
    let (code, out, _) = server_run(GOOD_SERVER, "*.echo");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 passed"), "{out}");
}

/// `--xfail ID`: a known deviation. Its miss passes the run and is marked
/// in the report; its pass fails the run, so the list stays true; an id
/// that names no check is refused before anything runs.
#[test]
fn an_expected_failure_passes_the_run_and_an_unexpected_pass_fails_it() {
    let faulty = "python3 fixtures/tcp-upper/faulty/server_one_client.py {port}";
    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        faulty,
        "--only",
        "*.next-client",
        "--xfail",
        "tcp-upper.next-client",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(report["checks"][0]["verdict"], "fail", "{out}");
    assert_eq!(report["checks"][0]["expected_to_miss"], true, "{out}");
    assert_eq!(report["summary"]["expected_fails"], 1, "{out}");

    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--only",
        "*.echo",
        "--xfail",
        "tcp-upper.echo",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("1 passed unexpectedly"), "{out}");
    assert!(out.contains("take it off the --xfail list"), "{out}");

    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--xfail",
        "tcp-upper.nxt-client",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--xfail \"tcp-upper.nxt-client\"") && err.contains("tcp-upper.next-client"),
        "{err}"
    );
}

/// `--retries N`: a check that missed is run again on a fresh target. A
/// program that misses on its first start only (a race, here forced with
/// a counter file) is FLAKY: it passes the run, with its tries and the
/// first miss in the report; a program that misses every time fails.
#[test]
fn a_check_that_misses_then_passes_when_run_again_is_flaky() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = common::first_start_one_shot_server(dir.path());
    let count = dir.path().join("starts");
    let command = format!("python3 {} {{port}}", server.display());
    let run = |retries: &str| {
        stdout_of(cmd().args([
            "run",
            "tcp-upper",
            "--server",
            &command,
            "--only",
            "*.next-client",
            "--retries",
            retries,
            "--format",
            "json",
        ]))
    };
    let (code, out, _) = run("2");
    assert_eq!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let check = &report["checks"][0];
    assert_eq!(check["verdict"], "pass", "{out}");
    assert_eq!(check["earlier_tries"][0]["verdict"], "fail", "{out}");
    assert_eq!(report["summary"]["flaky"], 1, "{out}");

    // Without retries the same program fails on its first start.
    std::fs::remove_file(&count).expect("the counter is reset");
    let (code, out, _) = run("0");
    assert_eq!(code, 1, "{out}");

    // A program that misses every time misses every try.
    let faulty = "python3 fixtures/tcp-upper/faulty/server_one_client.py {port}";
    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        faulty,
        "--only",
        "*.next-client",
        "--retries",
        "1",
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missed all 2 tries"), "{out}");
}

/// `--profile FILE`: a check that does not run is left out, a check whose
/// dependency missed is skipped with the reason (one root cause costs one
/// check), and each check's points and visibility reach the report; a
/// profile `sockspec profile` prints is one `--profile` takes.
#[test]
fn an_assignment_profile_skips_runs_and_grades_checks() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("assignment.toml");
    std::fs::write(
        &path,
        "suite = \"tcp-upper\"\nrole = \"server\"\n\
         [params]\nbuf = 1024\n\
         [checks.\"tcp-upper.echo\"]\npoints = 2\n\
         [checks.\"tcp-upper.next-client\"]\npoints = 3\nvisibility = \"hidden\"\n\
         [checks.\"tcp-upper.reset\"]\ndepends = [\"tcp-upper.next-client\"]\n\
         [checks.\"tcp-upper.no-spin\"]\nrun = false\n",
    )
    .expect("the profile is written");
    let faulty = "python3 fixtures/tcp-upper/faulty/server_one_client.py {port}";
    let (code, out, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        faulty,
        "--profile",
        path.to_str().unwrap(),
        "--only",
        "*.echo",
        "--only",
        "*.next-client",
        "--only",
        "*.reset",
        "--only",
        "*.no-spin",
        "--format",
        "json",
    ]));
    assert_eq!(code, 1, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let check = |id: &str| {
        report["checks"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == id))
            .cloned()
    };
    assert!(
        check("tcp-upper.no-spin").is_none(),
        "run = false leaves it out: {out}"
    );
    assert_eq!(check("tcp-upper.echo").unwrap()["grading"]["points"], 2.0);
    let next = check("tcp-upper.next-client").unwrap();
    assert_eq!(next["verdict"], "fail");
    assert_eq!(next["grading"]["visibility"], "hidden");
    let reset = check("tcp-upper.reset").unwrap();
    assert_eq!(reset["verdict"], "skip", "{out}");
    assert_eq!(reset["not_run"]["on"], "tcp-upper.next-client", "{out}");

    let (code, starting, _) = stdout_of(cmd().args(["profile", "tcp-upper"]));
    assert_eq!(code, 0);
    std::fs::write(&path, starting).expect("the starting profile is written");
    let (code, out, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--profile",
        path.to_str().unwrap(),
        "--only",
        "*.echo",
    ]));
    assert_eq!(code, 0, "{out}{err}");

    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "udp-upper",
        "--server",
        GOOD_SERVER,
        "--profile",
        path.to_str().unwrap(),
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("a profile for tcp-upper"), "{err}");
}

#[test]
fn a_warning_alone_does_not_fail_the_run() {
    let faulty = "python3 fixtures/tcp-upper/faulty/server_no_reuseaddr.py {port}";
    let (code, out, _) = server_run(faulty, "*.restart");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("WARN") && out.contains("SO_REUSEADDR"),
        "{out}"
    );
}

#[test]
fn the_json_report_has_the_documented_shape() {
    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--format",
        "json",
        "--seed",
        "5",
        "--only",
        "*.echo",
    ]));
    assert_eq!(code, 0);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["suite"], "tcp-upper");
    assert_eq!(r["role"], "server");
    assert_eq!(r["seed"], 5);
    assert_eq!(r["target"], GOOD_SERVER);
    let c = &r["checks"][0];
    assert_eq!(c["id"], "tcp-upper.echo");
    assert_eq!(c["level"], "must");
    assert_eq!(c["verdict"], "pass");
    assert!(c["duration_ms"].is_number() && c["detail"].is_string() && c["transcript"].is_array());
    assert_eq!(r["summary"]["pass"], 1);
    assert_eq!(r["summary"]["fail"], 0);
}

#[test]
fn junit_output_is_well_formed_xml_with_a_failure_per_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    let faulty = "python3 fixtures/tcp-upper/faulty/server_closes_after_reply.py {port}";
    let status = cmd()
        .args([
            "run",
            "tcp-upper",
            "--server",
            faulty,
            "--only",
            "*.echo",
            "--only",
            "*.many-messages",
        ])
        .args(["--format", "junit", "--output"])
        .arg(&path)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let check = "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
                 cases = r.findall('.//testcase'); \
                 print(len(cases), len(r.findall('.//testcase/failure')), cases[1].get('name'))";
    let out = Command::new("python3")
        .args(["-c", check])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2 1 tcp-upper.many-messages"
    );
}

#[test]
fn checks_that_need_the_process_are_skipped_against_a_running_server() {
    let port = free_port();
    let mut server = Command::new(sockspec())
        .args(["serve", "tcp-upper", "--port", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--target",
        &format!("127.0.0.1:{port}"),
        "--format",
        "json",
        "--only",
        "*.echo",
        "--only",
        "*.no-spin",
    ]));
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(code, 0, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["checks"][0]["verdict"], "pass");
    assert_eq!(r["checks"][1]["verdict"], "skip");
    assert!(r["checks"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("--server"));
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `request` to 127.0.0.1:`port` until a datagram comes back or 5 s
/// pass: the server may not have bound its port yet, and a datagram sent
/// before is lost.
fn first_answer(port: u16, request: &[u8]) -> Option<Vec<u8>> {
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut data = vec![0u8; 2048];
    while Instant::now() < deadline {
        client.send_to(request, ("127.0.0.1", port)).unwrap();
        if let Ok((n, _)) = client.recv_from(&mut data) {
            return Some(data[..n].to_vec());
        }
    }
    None
}

#[test]
fn serve_udp_upper_answers_a_datagram_on_its_port() {
    let port = free_udp_port();
    let mut server = Command::new(sockspec())
        .args(["serve", "udp-upper", "--port", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = first_answer(port, b"hello, udp");
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(answer.as_deref(), Some(&b"HELLO, UDP"[..]));
}

#[test]
fn serve_udp_chat_prints_the_message_answers_with_a_line_of_its_input_and_stops_at_its_end() {
    let port = free_udp_port();
    let mut server = Command::new(sockspec())
        .args(["serve", "udp-chat", "--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // One line: a retried request that arrives after the first is
    // answered by the end of the input instead, which stops the server.
    std::io::Write::write_all(server.stdin.as_mut().unwrap(), "你好\n".as_bytes()).unwrap();
    let answer = first_answer(port, b"hi");
    drop(server.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            server.kill().unwrap();
            server.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = server.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(answer.as_deref(), Some("你好".as_bytes()), "{stderr}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert!(
        stdout.contains("127.0.0.1:") && stdout.contains(": hi\n"),
        "{stdout}"
    );
    assert!(stderr.contains("read from standard input"), "{stderr}");
}

#[test]
fn serve_lists_its_protocols_in_its_help_and_names_them_for_an_unknown_one() {
    let (code, out, _) = stdout_of(cmd().args(["serve", "--help"]));
    assert_eq!(code, 0);
    for name in [
        "tcp-upper",
        "udp-upper",
        "udp-chat",
        "cmd-udp",
        "standard input",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    let (code, _, err) = stdout_of(cmd().args(["serve", "udp-uper", "--port", "9"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean udp-upper?") && err.contains("cmd-udp"),
        "{err}"
    );
}

#[test]
fn serve_takes_a_decimal_prefix_for_cmd_len_alone() {
    let (code, _, err) =
        stdout_of(cmd().args(["serve", "cmd-json", "--prefix", "decimal", "--port", "9"]));
    assert_eq!(code, 2);
    assert!(err.contains("--prefix decimal is cmd-len's alone"), "{err}");
}

#[test]
fn connect_sends_each_line_to_the_reference_server_and_prints_each_answer() {
    let port = free_port();
    let mut server = Command::new(sockspec())
        .args(["serve", "cmd-len", "--port", &port.to_string()])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut client = cmd()
        .args(["connect", "cmd-len", "--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = client.stdin.take().unwrap();
    input
        .write_all(b"printf one\n\nprintf two; printf err >&2\n")
        .unwrap();
    drop(input);
    let out = client.wait_with_output().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "onetwoerr");
}

#[test]
fn connect_lists_its_protocols_in_its_help_and_exits_3_with_no_server() {
    let (code, out, _) = stdout_of(cmd().args(["connect", "--help"]));
    assert_eq!(code, 0);
    for name in ["cmd-raw", "cmd-len", "cmd-json", "time: ..."] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    let (code, _, err) = stdout_of(cmd().args(["connect", "tcp-upper", "--port", "9"]));
    assert_eq!(code, 2);
    assert!(err.contains("no reference client for tcp-upper"), "{err}");
    let port = free_port().to_string();
    let (code, _, err) = stdout_of(cmd().args(["connect", "cmd-len", "--port", &port]));
    assert_eq!(code, 3);
    assert!(err.contains("could not connect"), "{err}");
}

/// A server that answers a receive of 200 to 2999 bytes without upper-casing
/// it: only generated cuts reach it, and the smallest failing case is a
/// message of exactly 200 bytes sent in one piece.
const FLAWED_ON_MIDSIZE_READS: &str = "python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(5)
while True:
    c, _ = s.accept()
    while True:
        try:
            d = c.recv(4096)
        except ConnectionResetError:
            break
        if not d:
            break
        c.sendall(d if 200 <= len(d) < 3000 else d.upper())
    c.close()
' {port}";

#[test]
fn a_generated_failure_shrinks_to_the_smallest_case_and_its_seed_reproduces_it() {
    let run = || {
        let (code, out, _) = stdout_of(cmd().args([
            "run",
            "tcp-upper",
            "--server",
            FLAWED_ON_MIDSIZE_READS,
            "--only",
            "*.stream",
            "--format",
            "json",
            "--seed",
            "1234",
        ]));
        assert_eq!(code, 1, "{out}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        r["checks"][0]["detail"].as_str().unwrap().to_string()
    };
    let first = run();
    assert!(
        first.contains("smallest failing case: a message of 200 bytes"),
        "{first}"
    );
    assert!(
        first.contains("reproduce with: --seed 1234 --only tcp-upper.stream"),
        "{first}"
    );
    let case = |d: &str| d.lines().next().unwrap_or_default().to_string();
    assert_eq!(case(&first), case(&run()));
}

/// A server that is busy for 0.7 s after every receive of one byte, and
/// answers a receive of exactly 17 bytes without upper-casing it. Sent one
/// byte at a time, "one byte at a time" (18 bytes) meets it busy after the
/// first byte (0.9 s: past the 0.5 s the second byte is waited for even
/// when a loaded machine makes the harness see the first one read 0.4 s
/// late, and within the 0.5 s more the whole message is waited for after
/// its last piece): the second stays unread past the read deadline, so the
/// harness cannot make that cut, and the 17 bytes the server then reads
/// at once are answered wrong.
const BUSY_AFTER_ONE_BYTE: &str = "python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(5)
while True:
    c, _ = s.accept()
    while True:
        try:
            d = c.recv(1024)
        except ConnectionResetError:
            break
        if not d:
            break
        if len(d) == 1:
            time.sleep(0.9)
        c.sendall(d if len(d) == 17 else d.upper())
    c.close()
' {port}";

#[test]
fn a_miss_after_a_cut_the_harness_could_not_make_is_info_with_the_cut_made() {
    let (code, out, _) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        BUSY_AFTER_ONE_BYTE,
        "--only",
        "*.stream",
        "--format",
        "json",
        "--seed",
        "1",
    ]));
    assert_eq!(code, 0, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let check = &r["checks"][0];
    assert_eq!(check["verdict"], "info", "{out}");
    let detail = check["detail"].as_str().unwrap();
    assert!(
        detail.contains("cut one byte at a time, each read before the next: the cut was not made"),
        "{detail}"
    );
    assert!(detail.contains("not counted against it"), "{detail}");
    let transcript = serde_json::to_string(&check["transcript"]).unwrap();
    assert!(transcript.contains("not_yet_read"), "{transcript}");
}

#[test]
fn ctrl_c_ends_the_run_and_every_target_process() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let server = format!(
        "python3 fixtures/tcp-upper/faulty/server_spin.py {{port}} & echo $! > {}; wait",
        pidfile.display()
    );
    let mut run = cmd()
        .args([
            "run",
            "tcp-upper",
            "--server",
            &server,
            "--only",
            "*.no-spin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signals the sockspec process this test started.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGINT);
    }
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let gone_by = Instant::now() + Duration::from_secs(3);
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    };
    while alive() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(),
        "the target's process {pid} outlived the interrupted run"
    );
}

#[test]
fn a_client_with_its_port_written_in_the_code_is_served_on_that_port() {
    let port = free_port().to_string();
    let client = format!("python3 fixtures/tcp-upper/client.py {port}");
    let (code, out, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--client",
        &client,
        "--port",
        &port,
        "--only",
        "*.client.echo",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 passed"), "{out}");
}

#[test]
fn an_ipv6_client_with_its_port_written_in_the_code_is_served_on_that_port() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback (::1)");
        return;
    }
    let port = free_port().to_string();
    let client = format!("python3 fixtures/tcp-upper/client_ipv6.py {port}");
    let (code, out, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--client",
        &client,
        "--port",
        &port,
        "--only",
        "*.client.echo",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let accepted = r["checks"][0]["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "accepted")
        .cloned()
        .unwrap_or_default();
    let from = accepted["peer"].as_str().unwrap_or_default();
    assert!(from.starts_with("[::1]:"), "{accepted}");
}

/// This test process as `describe_holders` names a holder: its pid and
/// the start of its command line.
fn this_process() -> (String, String) {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
    let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    (
        format!("pid {}", std::process::id()),
        String::from_utf8_lossy(program).into_owned(),
    )
}

#[test]
fn a_client_port_held_by_another_program_stops_the_run_with_exit_3_naming_it_and_the_fix() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let client = format!("python3 fixtures/tcp-upper/client.py {port}");
    // On a private loopback per check the port held outside is no obstacle;
    // on the machine's own loopback it is.
    let (code, out, err) = stdout_of(cmd().env("SOCKSPEC_ISOLATION", "shared").args([
        "run",
        "tcp-upper",
        "--client",
        &client,
        "--port",
        &port,
    ]));
    assert_eq!(code, 3, "{err}");
    let (pid, program) = this_process();
    assert!(
        err.contains(&format!(
            "could not listen on 127.0.0.1:{port} for the client"
        )) && err.contains(&pid)
            && err.contains(&program)
            && err.contains("--port"),
        "{err}"
    );
    assert!(!out.contains("PASS") && !out.contains("FAIL"), "{out}");
}

#[test]
fn a_udp_client_port_held_by_another_program_stops_the_run_with_exit_3_naming_it() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let client = format!("python3 fixtures/udp-upper/client.py {port}");
    let (code, _, err) = stdout_of(cmd().env("SOCKSPEC_ISOLATION", "shared").args([
        "run",
        "udp-upper",
        "--client",
        &client,
        "--port",
        &port,
    ]));
    assert_eq!(code, 3, "{err}");
    let (pid, program) = this_process();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains(&pid) && err.contains(&program),
        "{err}"
    );
}

#[test]
fn a_target_where_nothing_listens_stops_before_any_check_with_exit_3() {
    let port = free_port();
    let (code, out, err) =
        stdout_of(cmd().args(["run", "tcp-upper", "--target", &format!("127.0.0.1:{port}")]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(&format!("nothing listens on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!out.contains("PASS") && !out.contains("FAIL"), "{out}");
}

#[test]
fn a_udp_target_where_nothing_is_bound_stops_before_any_check_with_exit_3() {
    let port = free_udp_port();
    let (code, out, err) =
        stdout_of(cmd().args(["run", "udp-upper", "--target", &format!("127.0.0.1:{port}")]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(&format!("nothing listens on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!out.contains("PASS") && !out.contains("FAIL"), "{out}");
}

#[test]
fn spec_of_a_suite_prints_its_wire_parameters_and_checks_as_markdown() {
    let (code, out, _) = stdout_of(cmd().args(["spec", "udp-chat"]));
    assert_eq!(code, 0);
    for words in [
        "## `udp-chat`",
        "**Server.**",
        "**Client.**",
        "| `contact` | the contact name the chat client is given | text | TOM |",
        "| `udp-chat.two-clients` | MUST |",
        "- `udp-chat.client.skip`: ",
    ] {
        assert!(out.contains(words), "{words:?} missing from:\n{out}");
    }
    assert!(!out.contains("tcp-upper"), "{out}");
}

#[test]
fn spec_of_an_unknown_suite_is_a_usage_error_that_names_the_suites() {
    let (code, _, err) = stdout_of(cmd().args(["spec", "udp-chatt"]));
    assert_eq!(code, 2);
    assert!(err.contains("did you mean udp-chat?"), "{err}");
}

#[test]
fn docs_protocols_md_is_what_sockspec_spec_prints() {
    let (code, printed, _) = stdout_of(cmd().arg("spec"));
    assert_eq!(code, 0);
    let path = repo_root().join("docs/protocols.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != printed {
        let line = committed
            .lines()
            .zip(printed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(printed.lines().count()));
        panic!(
            "{} is not what `sockspec spec` prints (first difference at line {}): \
             run `make docs` and commit the file",
            path.display(),
            line + 1
        );
    }
}

#[test]
fn help_says_what_each_exit_status_means_as_the_readme_does() {
    let (code, out, _) = stdout_of(cmd().arg("--help"));
    assert_eq!(code, 0);
    let help = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "0 no MUST check failed",
        "1 a MUST check failed",
        "2 bad usage",
        "3 the target could not be started or never listened",
        "4 the harness itself failed, or a check ended in ERROR",
        "130 interrupted",
    ] {
        assert!(help.contains(words), "{words:?} missing from:\n{out}");
    }
}

#[test]
fn a_server_with_relative_paths_runs_in_the_folder_given_with_workdir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("fixtures/tcp-upper/server.py"),
        dir.path().join("server.py"),
    )
    .unwrap();
    let workdir = dir.path().display().to_string();
    let (code, out, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        "python3 server.py {port}",
        "--workdir",
        &workdir,
        "--only",
        "tcp-upper.echo",
    ]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn an_upload_server_typed_in_its_own_folder_runs_in_a_folder_of_the_harness_and_leaves_nothing() {
    // The student's folder holds the server; the harness's temporary tree
    // is one of the test's own, so what is left in it can be seen.
    let folder = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo_root().join("fixtures/file-upload/dev_server.py"),
        folder.path().join("server.py"),
    )
    .unwrap();
    let out = Command::new(sockspec())
        .current_dir(folder.path())
        .env("TMPDIR", tmp.path())
        .args([
            "run",
            "file-upload",
            "--server",
            "python3 server.py {port}",
            "--only",
            "file-upload.name",
            "--only",
            "file-upload.traversal",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(folder.path()), vec!["server.py".to_string()]);
    assert!(names(tmp.path()).is_empty(), "{:?}", names(tmp.path()));
}

#[test]
fn a_missing_workdir_is_a_usage_error_that_names_it() {
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--workdir",
        "/nonexistent/sockspec-workdir",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/sockspec-workdir"), "{err}");
}

#[test]
fn each_start_gets_a_scratch_directory_that_is_gone_after_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let seen = tmp.path().join("seen");
    // Records its scratch directory, then serves as the textbook server does.
    let server = format!(
        "echo \"$SOCKSPEC_SCRATCH {{scratch}}\" >> {}; exec python3 fixtures/tcp-upper/server.py {{port}}",
        seen.display()
    );
    let scratch_parent = tmp.path().join("tmp");
    std::fs::create_dir(&scratch_parent).unwrap();
    let (code, out, err) = stdout_of(
        cmd()
            .env("TMPDIR", &scratch_parent)
            .args(["run", "tcp-upper", "--server", &server])
            .args(["--only", "tcp-upper.echo", "--only", "tcp-upper.reset"]),
    );
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<String> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 2, "one start per check: {lines:?}");
    let dirs: Vec<&str> = lines
        .iter()
        .map(|l| {
            let (env, placeholder) = l.split_once(' ').unwrap();
            assert_eq!(env, placeholder, "{{scratch}} is $SOCKSPEC_SCRATCH");
            env
        })
        .collect();
    assert_ne!(dirs[0], dirs[1], "each start gets a fresh directory");
    assert!(dirs
        .iter()
        .all(|d| d.starts_with(&scratch_parent.display().to_string())));
    let left: Vec<_> = std::fs::read_dir(&scratch_parent).unwrap().collect();
    assert!(left.is_empty(), "scratch directories left: {left:?}");
}

#[test]
fn a_selection_that_matches_nothing_names_the_closest_ids() {
    let (code, _, err) = stdout_of(cmd().args([
        "run",
        "tcp-upper",
        "--server",
        GOOD_SERVER,
        "--only",
        "tcp-upper.ech",
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"tcp-upper.ech\" matches no check") && err.contains("tcp-upper.echo"),
        "{err}"
    );
}

#[test]
fn a_misspelt_suite_suggests_the_closest_one() {
    let (code, _, err) = stdout_of(cmd().args(["run", "tcp-uper", "--server", GOOD_SERVER]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean tcp-upper?"), "{err}");
}

#[test]
fn every_check_of_every_suite_can_be_explained() {
    let (_, list, _) = stdout_of(cmd().arg("list"));
    let ids: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.contains('.') && !w.ends_with(':'))
        .collect();
    assert!(ids.len() >= 16, "{list}");
    for id in ids {
        let (code, out, err) = stdout_of(cmd().args(["explain", id]));
        assert_eq!(code, 0, "{id}: {err}");
        for part in ["Requirement:", "Why it matters:", "The mistake", "The fix:"] {
            assert!(out.contains(part), "{id} lacks {part:?}: {out}");
        }
    }
}

#[test]
fn a_failure_ends_with_the_explain_command_to_read_more() {
    let (code, out, _) = server_run(
        "python3 fixtures/tcp-upper/faulty/server_dies_on_reset.py {port}",
        "tcp-upper.reset",
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("more: sockspec explain tcp-upper.reset"),
        "{out}"
    );
}
