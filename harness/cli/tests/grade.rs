//! `sockspec grade` and `sockspec merge` on the example course
//! (`fixtures/course/`): the scores its profile implies, the status of each
//! kind of broken submission, two submissions on one fixed port side by
//! side where the machine grants private loopbacks and one after the other
//! where it does not, `--resume`, an interrupted batch, shards merged, and
//! a submission that sees neither its neighbours nor the profile.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{repo_root, sockspec};
use serde::Deserialize;

/// Tests that put the course's fixed port 9000 on the machine's loopback
/// (where no private namespace is granted) take turns.
static PORT_9000: Mutex<()> = Mutex::new(());

fn course() -> PathBuf {
    repo_root().join("fixtures/course")
}

/// A folder of submissions holding copies of the course's `names`.
fn class_of(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let from = course().join("submissions").join(name);
        let to = dir.path().join(name);
        std::fs::create_dir(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    dir
}

/// `sockspec grade tcp-upper` with the course's profile and command.
fn grade(submissions: &Path, out: &Path) -> Command {
    grade_with(submissions, out, "python3 server.py {port}")
}

/// The same with another server command.
fn grade_with(submissions: &Path, out: &Path, server: &str) -> Command {
    let mut cmd = Command::new(sockspec());
    cmd.arg("grade")
        .arg("tcp-upper")
        .arg("--submissions")
        .arg(submissions)
        .args(["--server", server, "--seed", "7"])
        .arg("--profile")
        .arg(course().join("profile.toml"))
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null());
    cmd
}

fn ran(cmd: &mut Command) -> (i32, String) {
    let Output { status, stderr, .. } = cmd.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// summary.csv, each row by its submission's name.
fn summary(out: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("summary.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let row: BTreeMap<String, String> = headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            (row["submission"].clone(), row)
        })
        .collect()
}

#[derive(Deserialize)]
struct ShardFile {
    isolation: String,
    one_at_a_time: Option<String>,
    submissions: Vec<String>,
    timeline: Vec<Graded>,
}

#[derive(Deserialize)]
struct Graded {
    submission: String,
    started_ms: u64,
    finished_ms: u64,
}

fn shard_file(out: &Path) -> ShardFile {
    serde_json::from_slice(&std::fs::read(out.join("shard.json")).unwrap()).unwrap()
}

/// When the two submissions were graded, from shard.json: whether one's
/// run began before the other's ended.
fn overlapped(shard: &ShardFile, a: &str, b: &str) -> bool {
    let span = |name: &str| {
        let g = shard
            .timeline
            .iter()
            .find(|g| g.submission == name)
            .unwrap_or_else(|| panic!("{name} is not in the timeline"));
        (g.started_ms, g.finished_ms)
    };
    let ((a0, a1), (b0, b1)) = (span(a), span(b));
    a0 < b1 && b0 < a1
}

/// The points the course's profile gives each check.
fn profile_points() -> BTreeMap<String, f64> {
    #[derive(Deserialize)]
    struct Entry {
        points: Option<f64>,
    }
    #[derive(Deserialize)]
    struct Profile {
        checks: BTreeMap<String, Entry>,
    }
    let text = std::fs::read_to_string(course().join("profile.toml")).unwrap();
    let p: Profile = toml::from_str(&text).unwrap();
    p.checks
        .into_iter()
        .filter_map(|(id, e)| Some((id, e.points?)))
        .collect()
}

fn points_of(ids: &[&str]) -> String {
    let points = profile_points();
    let sum: f64 = ids
        .iter()
        .map(|id| points[&format!("tcp-upper.{id}")])
        .fold(0.0, |a, b| a + b);
    format!("{sum}")
}

#[test]
fn the_course_is_scored_as_its_profile_implies_and_same_port_submissions_share_the_time() {
    let _turn = PORT_9000.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    // Given no port, every course server listens on the lab's 9000: the
    // harness finds the port each one bound (`--port auto`, the default
    // for a command without {port}).
    let (code, stderr) = ran(&mut grade_with(
        &course().join("submissions"),
        out.path(),
        "python3 server.py",
    ));
    assert_eq!(code, 0, "{stderr}");
    let rows = summary(out.path());
    let every = [
        "echo",
        "many-messages",
        "next-client",
        "half-close",
        "large",
        "binary",
    ];
    // Each submission: the checks it passes, and its status.
    let expected: [(&str, &[&str], &str); 7] = [
        ("alice_correct", &every, "graded"),
        // One recv per connection, then close: a second message, a long
        // one and one after the ready probe find the connection closed.
        (
            "bob_partial",
            &["echo", "next-client", "half-close"],
            "graded",
        ),
        // Sends a str: a TypeError on the first message; echo depends on
        // nothing, the rest depend on echo and are skipped.
        ("carol_broken", &[], "crashed"),
        ("dan_hangs", &[], "timeout"),
        ("erin_never_listens", &[], "no-listen"),
        ("frank_port9000", &every, "graded"),
        ("grace_port9000", &every, "graded"),
    ];
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    let max = points_of(&every);
    for (name, passes, status) in expected {
        let row = &rows[name];
        assert_eq!(row["score"], points_of(passes), "{name}: {row:?}");
        assert_eq!(row["max_score"], max, "{name}: every planned check counts");
        assert_eq!(row["status"], status, "{name}: {row:?}");
        assert_eq!(row["passed"], passes.len().to_string(), "{name}: {row:?}");
        assert!(
            out.path().join(format!("{name}.json")).is_file(),
            "{name} has its report"
        );
    }
    assert!(
        rows["carol_broken"]["failed_checks"] == "tcp-upper.echo"
            && rows["carol_broken"]["skipped"] == "5",
        "one root cause costs one check: {:?}",
        rows["carol_broken"]
    );
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let first_check = md
        .lines()
        .skip_while(|l| !l.starts_with("## Checks"))
        .find(|l| l.starts_with("| tcp-upper."))
        .unwrap();
    assert!(
        first_check.starts_with("| tcp-upper.echo |"),
        "the check most of the class missed comes first: {md}"
    );
    let shard = shard_file(out.path());
    assert!(
        md.contains(&format!("Isolation: {}", shard.isolation)),
        "{md}"
    );
    if shard.isolation == "shared" {
        assert!(!overlapped(&shard, "frank_port9000", "grace_port9000"));
        assert!(shard.one_at_a_time.is_some());
    } else {
        assert!(
            overlapped(&shard, "frank_port9000", "grace_port9000"),
            "with a private loopback per check, the two servers on port 9000 are graded at \
             the same time"
        );
        assert!(shard.one_at_a_time.is_none(), "{md}");
    }
}

#[test]
fn without_a_private_loopback_same_port_submissions_run_one_after_another() {
    let _turn = PORT_9000.lock().unwrap_or_else(|e| e.into_inner());
    let class = class_of(&["frank_port9000", "grace_port9000"]);
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = ran(grade(class.path(), out.path())
        .args(["--port", "9000"])
        .env("SOCKSPEC_ISOLATION", "shared"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("submissions run one after another"),
        "{stderr}"
    );
    let rows = summary(out.path());
    for name in ["frank_port9000", "grace_port9000"] {
        assert_eq!(
            rows[name]["score"], rows[name]["max_score"],
            "{:?}",
            rows[name]
        );
    }
    let shard = shard_file(out.path());
    assert_eq!(shard.isolation, "shared");
    assert!(!overlapped(&shard, "frank_port9000", "grace_port9000"));
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.contains("Submissions ran one after another"), "{md}");
    assert!(md.contains("Isolation: shared"), "{md}");
}

#[test]
fn resume_skips_the_submissions_already_graded() {
    let class = class_of(&["alice_correct"]);
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = ran(&mut grade(class.path(), out.path()));
    assert_eq!(code, 0, "{stderr}");
    let alice = std::fs::read(out.path().join("alice_correct.json")).unwrap();

    // Bob hands in late.
    let late = class_of(&["bob_partial"]);
    std::fs::rename(
        late.path().join("bob_partial"),
        class.path().join("bob_partial"),
    )
    .unwrap();
    let (code, stderr) = ran(grade(class.path(), out.path()).arg("--resume"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 submission already graded"), "{stderr}");
    let graded: Vec<String> = shard_file(out.path())
        .timeline
        .into_iter()
        .map(|g| g.submission)
        .collect();
    assert_eq!(graded, ["bob_partial"], "only the new submission ran");
    assert_eq!(
        std::fs::read(out.path().join("alice_correct.json")).unwrap(),
        alice,
        "the earlier report stays as it was"
    );
    let rows = summary(out.path());
    assert_eq!(rows.len(), 2, "the summary covers both: {rows:?}");
    assert_eq!(rows["alice_correct"]["status"], "graded");
}

#[test]
fn an_interrupted_batch_leaves_a_valid_summary_of_what_was_graded() {
    // One at a time: Alice is graded in a second or two, then Dan's checks
    // wait out their deadlines while the batch is interrupted.
    let class = class_of(&["alice_correct", "dan_hangs", "erin_never_listens"]);
    let out = tempfile::tempdir().unwrap();
    let batch = grade(class.path(), out.path())
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.path().join("alice_correct.json").exists() {
        assert!(Instant::now() < deadline, "Alice was never graded");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Into Dan's first check.
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: signals the batch this test started.
    unsafe {
        libc::kill(batch.id() as i32, libc::SIGINT);
    }
    let output = batch.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let rows = summary(out.path());
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        ["alice_correct"],
        "the summary holds what was graded, and nothing of the interrupted run"
    );
    assert_eq!(
        rows["alice_correct"]["score"],
        rows["alice_correct"]["max_score"]
    );
    assert!(!out.path().join("dan_hangs.json").exists());
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path().join("cwd")).ok())
        .filter(|cwd| cwd.starts_with(class.path()))
        .map(|cwd| cwd.display().to_string())
        .collect();
    assert!(
        survivors.is_empty(),
        "a submission's process outlived the batch: {survivors:?}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(md.contains("1 submission graded"), "{md}");
}

#[test]
fn shards_merged_equal_the_unsharded_grading_and_merge_refuses_overlap_and_gaps() {
    let class = class_of(&["alice_correct", "bob_partial", "carol_broken"]);
    let (whole, one, two, merged) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let runs: Vec<(i32, String)> = std::thread::scope(|s| {
        let jobs = [
            s.spawn(|| ran(&mut grade(class.path(), whole.path()))),
            s.spawn(|| ran(grade(class.path(), one.path()).args(["--shard", "1/2"]))),
            // The second shard as GitLab's parallel jobs name it.
            s.spawn(|| {
                ran(grade(class.path(), two.path())
                    .env("CI_NODE_INDEX", "2")
                    .env("CI_NODE_TOTAL", "2"))
            }),
        ];
        jobs.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for (code, stderr) in &runs {
        assert_eq!(*code, 0, "{stderr}");
    }
    // Sorted by name, index i goes to shard (i mod 2) + 1.
    assert_eq!(
        shard_file(one.path()).submissions,
        ["alice_correct", "carol_broken"]
    );
    assert_eq!(shard_file(two.path()).submissions, ["bob_partial"]);

    let merge = |dirs: &[&Path], out: &Path| {
        ran(Command::new(sockspec())
            .arg("merge")
            .args(dirs)
            .arg("--out")
            .arg(out))
    };
    let (code, stderr) = merge(&[one.path(), two.path()], merged.path());
    assert_eq!(code, 0, "{stderr}");
    for file in ["summary.csv", "summary.md"] {
        assert_eq!(
            std::fs::read_to_string(merged.path().join(file)).unwrap(),
            std::fs::read_to_string(whole.path().join(file)).unwrap(),
            "{file} of the merged shards"
        );
    }
    for name in ["alice_correct", "bob_partial", "carol_broken"] {
        assert!(
            merged.path().join(format!("{name}.json")).is_file(),
            "{name}"
        );
    }

    let elsewhere = tempfile::tempdir().unwrap();
    let (code, stderr) = merge(&[one.path()], elsewhere.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("shard 2/2 missing"), "{stderr}");
    let (code, stderr) = merge(&[one.path(), one.path(), two.path()], elsewhere.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("are both shard 1/2"), "{stderr}");
    let (code, stderr) = merge(&[whole.path(), two.path()], elsewhere.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("share their N"), "{stderr}");
}

#[test]
fn bad_usage_names_the_fix() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = ran(&mut grade(Path::new("/nonexistent/class"), out.path()));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("give the folder whose subfolders are the submissions"),
        "{stderr}"
    );
    let class = class_of(&["alice_correct"]);
    let (code, stderr) = ran(grade(class.path(), out.path()).env("JOB_COMPLETION_INDEX", "0"));
    assert_eq!(code, 2);
    assert!(stderr.contains("give --shard-total N"), "{stderr}");
    let (code, stderr) = ran(grade(class.path(), out.path()).args(["--shard", "3/2"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("for example --shard 2/5"), "{stderr}");
}

#[test]
fn a_fixed_port_held_on_the_shared_loopback_is_tried_once_more_then_reported_as_not_graded() {
    let _turn = PORT_9000.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(holder) = std::net::TcpListener::bind("127.0.0.1:9000") else {
        eprintln!("port 9000 is in use on this machine: nothing to hold it with");
        return;
    };
    let class = class_of(&["frank_port9000"]);
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = ran(grade(class.path(), out.path())
        .args(["--port", "9000"])
        .env("SOCKSPEC_ISOLATION", "shared"));
    assert_eq!(code, 4, "the machine kept it from being graded: {stderr}");
    assert!(
        stderr.contains("it runs again after the others"),
        "{stderr}"
    );
    assert!(stderr.contains("frank_port9000 (port-busy)"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert_eq!(summary(out.path())["frank_port9000"]["status"], "port-busy");

    // In a private loopback the machine's port 9000 is another port.
    let private = tempfile::tempdir().unwrap();
    let (code, stderr) = ran(grade(class.path(), private.path()).args(["--port", "9000"]));
    drop(holder);
    if shard_file(private.path()).isolation != "shared" {
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            summary(private.path())["frank_port9000"]["status"],
            "graded"
        );
    }
}

/// A submission that looks around: it answers in upper case only when it
/// sees no other submission beside its folder and reads nothing in the
/// assignment's profile; otherwise it answers with what it saw.
const SNOOPING_SERVER: &str = r#"
import os, socket, sys

PROFILE = sys.argv[2]
here = os.path.basename(os.getcwd())
try:
    neighbours = sorted(n for n in os.listdir("..") if n != here)
except OSError as e:
    neighbours = [type(e).__name__]
try:
    with open(PROFILE) as f:
        profile = f.read()
except OSError as e:
    profile = type(e).__name__
seen = f"neighbours={neighbours} profile={len(profile)} bytes".encode()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    conn, _ = s.accept()
    with conn:
        while data := conn.recv(1024):
            conn.sendall(data.upper() if not neighbours and "suite" not in profile else seen)
"#;

#[test]
fn a_confined_submission_sees_neither_its_neighbours_nor_the_profile() {
    let class = tempfile::tempdir().unwrap();
    for name in ["ann", "ben"] {
        let dir = class.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("server.py"), SNOOPING_SERVER).unwrap();
    }
    // The profile lies outside the submissions' folder, as an instructor's
    // usually does.
    let course = tempfile::tempdir().unwrap();
    let profile = course.path().join("profile.toml");
    // The echo alone: the answer is all it takes.
    let mut text = String::from("suite = \"tcp-upper\"\nrole = \"server\"\n");
    for id in [
        "many-messages",
        "next-client",
        "no-spin",
        "reset",
        "half-close",
        "stream",
        "large",
        "binary",
        "backlog",
        "no-leak",
        "restart",
    ] {
        text += &format!("[checks.\"tcp-upper.{id}\"]\nrun = false\n");
    }
    std::fs::write(&profile, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let command = format!("python3 server.py {{port}} {}", profile.display());
    let mut cmd = Command::new(sockspec());
    cmd.args(["grade", "tcp-upper", "--submissions"])
        .arg(class.path())
        .args(["--server", &command, "--seed", "7", "--profile"])
        .arg(&profile)
        .arg("--out")
        .arg(out.path())
        .stdin(Stdio::null());
    let (code, stderr) = ran(cmd.args(["--retries", "0"]));
    assert_eq!(code, 0, "{stderr}");
    let md = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let report = std::fs::read_to_string(out.path().join("ann.json")).unwrap();
    let rows = summary(out.path());
    if md.contains("each submission saw only its own folder") {
        for name in ["ann", "ben"] {
            let echo = rows[name]["failed_checks"].clone();
            assert!(
                !echo.contains("tcp-upper.echo"),
                "{name} saw a neighbour or the profile: {report}"
            );
        }
    } else {
        // Not confined (no namespace granted, or mounts refused): the
        // summary says so, and the submission indeed saw its neighbour.
        assert!(md.contains("submissions were not confined"), "{md}");
        assert!(
            rows["ann"]["failed_checks"].contains("tcp-upper.echo") && report.contains("ben"),
            "{report}"
        );
    }
}
