//! What the `sockspec` command prints for real runs, pinned: the built
//! binary run on fixtures whose verdicts and words are fast and certain
//! (the reference tcp-upper server, which passes, and a client that sends
//! the newline it was typed, which fails a check with its detail), in
//! text, JSON and JUnit, compared with the snapshots under
//! `tests/snapshots/`.
//!
//! What changes from run to run is masked before the comparison, so the
//! snapshots hold on any machine and under load: durations and times,
//! the ports the harness and the client connected from, the run's isolation (root gets a
//! network namespace, an ordinary user a user namespace, a container
//! perhaps the shared loopback) and the harness's peak memory. The seed
//! is fixed with `--seed`; the targets' commands name `{port}`, never a
//! number. A changed word or field is a reviewed diff
//! (`INSTA_UPDATE=always cargo test -p sockspec --test reports`, then
//! `git diff`).

mod common;

use assert_cmd::Command;
use regex::Regex;
use serde_json::Value;

use common::{repo_root, sockspec};

/// The reference server: both checks pass.
const SERVER: &str = "python3 fixtures/tcp-upper/server.py {port}";
/// Two checks whose verdicts on the reference server are certain, each
/// well under a second.
const SERVER_CHECKS: [&str; 4] = [
    "--only",
    "tcp-upper.echo",
    "--only",
    "tcp-upper.many-messages",
];

/// Sends the line typed with its newline: client.echo fails, and says
/// which byte was too many. Its one send arrives in one read.
const CLIENT: &str = "python3 fixtures/tcp-upper/faulty/client_sends_newline.py {port}";
const CLIENT_CHECKS: [&str; 2] = ["--only", "tcp-upper.client.echo"];

/// Runs tcp-upper against `target` (`--server` or `--client`) with the
/// checks `only` selects, in `format`, and gives its stdout once the exit
/// status is the one expected.
fn run(role: &str, target: &str, only: &[&str], format: &str, status: i32) -> String {
    let out = Command::new(sockspec())
        .current_dir(repo_root())
        .env_remove("PYTHONUNBUFFERED")
        .args(["run", "tcp-upper", role, target])
        .args(only)
        .args(["--seed", "7", "--color", "never", "--format", format])
        .assert()
        .code(status)
        .get_output()
        .clone();
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

fn server(format: &str) -> String {
    run("--server", SERVER, &SERVER_CHECKS, format, 0)
}

fn client(format: &str) -> String {
    run("--client", CLIENT, &CLIENT_CHECKS, format, 1)
}

/// `text` with each match of `pattern` replaced by `with`.
fn mask(text: &str, pattern: &str, with: &str) -> String {
    Regex::new(pattern)
        .expect("a valid pattern")
        .replace_all(text, with)
        .into_owned()
}

/// A text or JUnit report with what varies between runs masked. A
/// transcript's time keeps its column's width, so the lines stay aligned.
fn steady(report: &str) -> String {
    let report = mask(report, r"\[ *\d+\.\d+s\]", "[ duration ]");
    let report = mask(&report, r#"time="\d+(\.\d+)?""#, r#"time="[duration]""#);
    let report = mask(&report, r"isolation [a-z-]+\)", "isolation [isolation])");
    let report = mask(
        &report,
        r#"name="isolation" value="[a-z-]+""#,
        r#"name="isolation" value="[isolation]""#,
    );
    let report = mask(&report, r"duration_ms: \d+", "duration_ms: [duration]");
    let report = mask(
        &report,
        r"(?m)^(# \d+ checks?) in \d+\.\ds$",
        "$1 in [duration]",
    );
    let report = mask(&report, r"from port \d+", "from port [port]");
    let report = mask(
        &report,
        r"accepted from (\S+):\d+",
        "accepted from $1:[port]",
    );
    Regex::new(r"(?m)^( *\d+\.\d)ms ")
        .expect("a valid pattern")
        .replace_all(&report, |c: &regex::Captures| {
            format!("{:>width$}ms ", "[t]", width = c[1].len())
        })
        .into_owned()
}

/// A JSON report with what varies between runs masked, field by field,
/// in the order the report writes them.
fn steady_json(report: &str) -> String {
    serde_json::from_str::<Value>(report).expect("the JSON report parses");
    let report = mask(
        report,
        r#""(duration_ms|deliberate_ms|confirm_ms|at_us|after_us|waited_ms|local_port|peak_rss_kib)": [-+.0-9eE]+"#,
        r#""$1": "[$1]""#,
    );
    let report = mask(
        &report,
        r#""isolation": "[a-z-]+""#,
        r#""isolation": "[isolation]""#,
    );
    mask(&report, r#""peer": "(\S+):\d+""#, r#""peer": "$1:[port]""#)
}

#[test]
fn a_passing_run_in_text() {
    insta::assert_snapshot!(steady(&server("text")));
}

#[test]
fn a_passing_run_in_json() {
    insta::assert_snapshot!(steady_json(&server("json")));
}

#[test]
fn a_passing_run_in_junit() {
    insta::assert_snapshot!(steady(&server("junit")));
}

#[test]
fn a_failing_run_in_text_explains_the_miss_under_its_line() {
    insta::assert_snapshot!(steady(&client("text")));
}

#[test]
fn a_failing_run_in_json_carries_the_miss_and_its_detail() {
    insta::assert_snapshot!(steady_json(&client("json")));
}

#[test]
fn a_failing_run_in_junit_is_a_failure_with_its_explanation() {
    insta::assert_snapshot!(steady(&client("junit")));
}

#[test]
fn a_passing_run_in_tap() {
    insta::assert_snapshot!(steady(&server("tap")));
}

#[test]
fn a_failing_run_in_tap_is_a_failed_point_with_its_detail() {
    insta::assert_snapshot!(steady(&client("tap")));
}

/// TAP read back by a TAP 14 parser: a plan, one point per check named by
/// its id, `not ok` where the check failed, with its YAML block.
#[test]
fn tap_reports_are_read_by_a_tap_parser() {
    use tap_parser::{TapParser, TapStatement};
    for (report, failing) in [(server("tap"), vec![]), (client("tap"), vec![1])] {
        let mut parser = TapParser::new();
        let statements = parser
            .parse(&report)
            .unwrap_or_else(|e| panic!("not TAP ({e:?}):\n{report}"));
        let plan = statements.iter().find_map(|s| match s {
            TapStatement::Plan(p) => Some(p.count),
            _ => None,
        });
        let points: Vec<_> = statements
            .iter()
            .filter_map(|s| match s {
                TapStatement::TestPoint(t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(plan, Some(points.len()), "{report}");
        for (i, point) in points.iter().enumerate() {
            let id = point.desc.unwrap_or_default();
            assert!(id.starts_with("tcp-upper."), "{id}");
            assert_eq!(point.number, Some(i + 1));
            assert_eq!(!point.result, failing.contains(&(i + 1)), "{report}");
            if !point.result {
                assert!(!point.yaml.is_empty(), "a failed point explains itself");
            }
        }
    }
}
