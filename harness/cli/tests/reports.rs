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

// ---------------------------------------------------------------------
// Gradescope's results and JUnit XML, read by real consumers: a JSON
// Schema validator against Gradescope's documented format, and an XML
// Schema validator against the JUnit format CI servers read.

/// Gives up listening: it prints a line and sleeps. With deadlines at a
/// fifth, the run stops in two seconds, before its first check.
const NEVER_LISTENS: &str = "python3 fixtures/hostile/never_listens.py {port}";

/// Closes each connection after its first reply: `many-messages` and
/// `binary` fail, `echo` passes, each well under a second.
const CLOSES_AFTER_REPLY: &str =
    "python3 fixtures/tcp-upper/faulty/server_closes_after_reply.py {port}";

/// Runs `sockspec run tcp-upper` with `args` and gives its stdout once the
/// exit status is `status`.
fn sockspec_run(args: &[&str], status: i32) -> String {
    let out = Command::new(sockspec())
        .current_dir(repo_root())
        .args(["run", "tcp-upper", "--seed", "7", "--color", "never"])
        .args(args)
        .assert()
        .code(status)
        .get_output()
        .clone();
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

/// A profile for tcp-upper in a file of its own, kept while the run reads it.
fn profile(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("a temporary profile");
    std::fs::write(file.path(), text).expect("the profile is written");
    file
}

/// A Gradescope results document, checked against the JSON Schema written
/// from Gradescope's format and against what sockspec promises of it: every
/// test has a name, a number, a score and a maximum, a status and an output,
/// and the document's score is the sum of its tests'.
fn gradescope_results(report: &str) -> Value {
    let path = repo_root().join("harness/cli/tests/schemas/gradescope-results.schema.json");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).expect("the Gradescope results schema"),
    )
    .expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema is a JSON Schema");
    let doc: Value = serde_json::from_str(report).expect("the results are JSON");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report}");
    for key in ["score", "execution_time", "output", "stdout_visibility"] {
        assert!(doc.get(key).is_some(), "no {key}: {report}");
    }
    let tests = doc["tests"].as_array().expect("tests");
    let mut sum = 0.0;
    for (i, t) in tests.iter().enumerate() {
        for key in [
            "name",
            "number",
            "score",
            "max_score",
            "status",
            "output",
            "visibility",
            "tags",
        ] {
            assert!(t.get(key).is_some(), "test {i} has no {key}: {report}");
        }
        assert_eq!(t["number"], (i + 1).to_string());
        sum += t["score"].as_f64().expect("a score");
    }
    assert_eq!(doc["score"].as_f64(), Some(sum), "{report}");
    doc
}

/// The test named `id` in a Gradescope results document.
fn test_named<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["tests"]
        .as_array()
        .and_then(|tests| tests.iter().find(|t| t["name"] == id))
        .unwrap_or_else(|| panic!("no test {id} in {doc:#}"))
}

/// Without a profile each check is worth a point, and a passing run earns
/// them all. Gradescope shows no autograder stdout to students: the text
/// progress there explains hidden checks too.
#[test]
fn gradescope_results_of_a_passing_run_meet_gradescopes_format() {
    let doc = gradescope_results(&server("gradescope"));
    assert_eq!(doc["score"], 2.0);
    assert_eq!(doc["stdout_visibility"], "hidden");
    for id in SERVER_CHECKS.iter().filter(|a| **a != "--only") {
        let t = test_named(&doc, id);
        assert_eq!((&t["score"], &t["max_score"]), (&1.0.into(), &1.0.into()));
        assert_eq!(t["status"], "passed");
        assert_eq!(t["visibility"], "visible");
    }
}

/// A profile's points and visibility reach the results. A visible check
/// that failed explains itself as the terminal does, with the bytes it
/// expected; the same check hidden gives its verdict and summary, and none
/// of those bytes.
#[test]
fn a_hidden_checks_gradescope_output_never_shows_what_it_expects() {
    let graded = |binary: &str| {
        let profile = profile(&format!(
            "suite = \"tcp-upper\"\n\
             [checks.\"tcp-upper.echo\"]\npoints = 2\n\
             [checks.\"tcp-upper.many-messages\"]\npoints = 1\n\
             [checks.\"tcp-upper.binary\"]\npoints = 3\nvisibility = \"{binary}\"\n"
        ));
        let path = profile.path().to_str().expect("a UTF-8 path").to_string();
        gradescope_results(&sockspec_run(
            &[
                "--server",
                CLOSES_AFTER_REPLY,
                "--only",
                "tcp-upper.echo",
                "--only",
                "tcp-upper.many-messages",
                "--only",
                "tcp-upper.binary",
                "--profile",
                &path,
                "--format",
                "gradescope",
            ],
            1,
        ))
    };
    let visible = graded("visible");
    let shown = test_named(&visible, "tcp-upper.binary")["output"]
        .as_str()
        .expect("an output");
    // What the visible check shows: the bytes it expected, its steps.
    let expected = shown
        .lines()
        .find(|l| l.trim_start().starts_with("expected:"))
        .unwrap_or_else(|| panic!("the visible check shows what it expected:\n{shown}"))
        .trim();
    assert!(shown.contains("steps:"), "{shown}");

    for visibility in ["hidden", "after_due_date"] {
        let doc = graded(visibility);
        assert_eq!(doc["score"], 2.0, "echo's 2 points of 6");
        let binary = test_named(&doc, "tcp-upper.binary");
        assert_eq!(binary["visibility"], visibility);
        assert_eq!(
            (&binary["score"], &binary["max_score"]),
            (&0.0.into(), &3.0.into())
        );
        assert_eq!(binary["status"], "failed");
        let output = binary["output"].as_str().expect("an output");
        assert!(output.starts_with("FAIL tcp-upper.binary: "), "{output}");
        for secret in [expected, "steps:", "transcript", "\\xff"] {
            assert!(!output.contains(secret), "{secret:?} shown:\n{output}");
        }
        // The visible check beside it still explains itself.
        let many = test_named(&doc, "tcp-upper.many-messages");
        assert_eq!(many["status"], "failed");
        assert!(many["output"].as_str().unwrap().contains("transcript"));
    }
}

/// A target that never listens stops the run before its first check: every
/// selected check is still a test, worth its points and scoring nothing,
/// with the reason, so the maximum Gradescope shows is the assignment's.
#[test]
fn gradescope_results_of_a_target_that_never_listens_list_every_check() {
    let profile = profile(
        "suite = \"tcp-upper\"\n\
         [checks.\"tcp-upper.echo\"]\npoints = 2\n\
         [checks.\"tcp-upper.reset\"]\npoints = 3\nvisibility = \"hidden\"\n",
    );
    let report = sockspec_run(
        &[
            "--server",
            NEVER_LISTENS,
            "--timeout-scale",
            "0.2",
            "--only",
            "tcp-upper.echo",
            "--only",
            "tcp-upper.many-messages",
            "--only",
            "tcp-upper.reset",
            "--profile",
            profile.path().to_str().expect("a UTF-8 path"),
            "--format",
            "gradescope",
        ],
        3,
    );
    let doc = gradescope_results(&report);
    assert_eq!(doc["score"], 0.0);
    let names: Vec<&str> = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tcp-upper.echo",
            "tcp-upper.many-messages",
            "tcp-upper.reset"
        ]
    );
    let max: Vec<f64> = doc["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["max_score"].as_f64().unwrap())
        .collect();
    assert_eq!(max, [2.0, 1.0, 3.0]);
    for t in doc["tests"].as_array().unwrap() {
        assert_eq!(t["status"], "failed");
        assert!(
            t["output"].as_str().unwrap().contains("did not listen"),
            "{t:#}"
        );
    }
    assert_eq!(test_named(&doc, "tcp-upper.reset")["visibility"], "hidden");
    assert!(doc["output"].as_str().unwrap().contains("did not listen"));
}

/// Where `make test` puts the XML Schema validator (the `xmlschema`
/// package from PyPI, pure Python).
fn pydeps() -> std::path::PathBuf {
    repo_root().join("target/pydeps")
}

/// The errors an XML Schema validator finds in `xml` against the JUnit
/// schema (`tests/schemas/junit.xsd`): none for a valid report. The
/// validator must be there: a test that skipped would prove nothing.
fn junit_errors(xml: &str) -> String {
    use std::io::Write as _;
    use std::process::{Command as Process, Stdio};
    const VALIDATE: &str = "import sys\n\
        try:\n    import xmlschema\n\
        except ImportError:\n    sys.exit(3)\n\
        schema = xmlschema.XMLSchema(sys.argv[1])\n\
        for e in schema.iter_errors(sys.stdin.read()):\n    print(e.reason, 'at', e.path)\n";
    let xsd = repo_root().join("harness/cli/tests/schemas/junit.xsd");
    let mut child = Process::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&xsd)
        .env("PYTHONPATH", pydeps())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the JUnit schema validator");
    child
        .stdin
        .take()
        .expect("its input")
        .write_all(xml.as_bytes())
        .expect("the report is given to the validator");
    let out = child.wait_with_output().expect("the validator ends");
    assert_ne!(
        out.status.code(),
        Some(3),
        "the XML Schema validator is missing from {}: run `make test`, which installs it \
         (python3 -m pip install --target target/pydeps xmlschema)",
        pydeps().display()
    );
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the validator writes UTF-8")
}

fn assert_valid_junit(what: &str, xml: &str) {
    let errors = junit_errors(xml);
    assert!(errors.is_empty(), "{what}: {errors}\n{xml}");
}

/// The schema refuses what CI servers would: a validator that took
/// anything would prove nothing.
#[test]
fn the_junit_schema_refuses_a_report_ci_servers_would_not_read() {
    for bad in [
        // A test case outside any suite.
        r#"<testsuites><testcase name="a"/></testsuites>"#,
        // A test case with no name.
        r#"<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>"#,
        // A rerun without the type Surefire's readers need.
        r#"<testsuites><testsuite name="s" tests="1"><testcase name="a">
           <failure/><rerunFailure><stackTrace>x</stackTrace></rerunFailure>
           </testcase></testsuite></testsuites>"#,
        // A time that is not a number of seconds.
        r#"<testsuites><testsuite name="s" tests="0" time="[duration]"/></testsuites>"#,
    ] {
        assert!(!junit_errors(bad).is_empty(), "accepted: {bad}");
    }
}

/// JUnit reports of real runs meet the JUnit schema: a passing run, a
/// failing one, a run whose target never listened, a check that missed
/// every try (rerunFailure), and one that missed and then passed
/// (flakyFailure); and the pinned reports of every kind of result
/// (a WARN, a SKIP, an ERROR, a run stopped early).
#[test]
fn junit_reports_meet_the_junit_schema() {
    assert_valid_junit("a passing run", &server("junit"));
    assert_valid_junit("a failing run", &client("junit"));
    let never = sockspec_run(
        &[
            "--server",
            NEVER_LISTENS,
            "--timeout-scale",
            "0.2",
            "--only",
            "tcp-upper.echo",
            "--format",
            "junit",
        ],
        3,
    );
    assert_valid_junit("a target that never listens", &never);

    let always = sockspec_run(
        &[
            "--server",
            "python3 fixtures/tcp-upper/faulty/server_one_client.py {port}",
            "--only",
            "tcp-upper.next-client",
            "--retries",
            "1",
            "--format",
            "junit",
        ],
        1,
    );
    assert!(always.contains("<rerunFailure"), "{always}");
    assert_valid_junit("a check that missed every try", &always);

    // Serves one client on its first start, every client after: a race
    // forced with a count of its starts.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = common::first_start_one_shot_server(dir.path());
    let flaky = sockspec_run(
        &[
            "--server",
            &format!("python3 {} {{port}}", script.display()),
            "--only",
            "tcp-upper.next-client",
            "--retries",
            "2",
            "--format",
            "junit",
        ],
        0,
    );
    assert!(flaky.contains("<flakyFailure"), "{flaky}");
    assert_valid_junit("a flaky check", &flaky);

    // The engine's pinned reports, each the reporter's whole output after
    // insta's header.
    let snapshots = repo_root().join("harness/engine/tests/snapshots");
    let mut pinned = 0;
    for entry in std::fs::read_dir(&snapshots).expect("the engine's snapshots") {
        let path = entry.expect("a snapshot").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("junit") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a snapshot");
        let xml = text.splitn(3, "---\n").nth(2).expect("insta's header");
        assert_valid_junit(&name, xml);
        pinned += 1;
    }
    assert!(pinned >= 2, "the engine pins JUnit reports");
}
