//! A client under test is given time to start in proportion to the CPU it
//! gets: one starved of a core on a crowded machine is waited for past the
//! accept deadline and judged on what it does, and one that sleeps instead
//! of connecting is failed at the deadline, as before.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::{repo_root, sockspec};

const CHECK: &str = "tcp-upper.client.echo";

/// Busy loops pinned to the first core, each ending on its own after
/// `seconds`: ended by the test as well, by their ids.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(n: usize, seconds: u32) -> Hogs {
        let script = format!(
            "import os, time\nos.sched_setaffinity(0, {{0}})\nend = time.time() + {seconds}\n\
             while time.time() < end:\n    pass\n"
        );
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("python3")
                        .args(["-c", &script])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("python3 starts")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The check's verdict and detail from a JSON report of `client`.
fn judge(client: &str) -> (String, String, f64) {
    let started = Instant::now();
    let out = Command::new(sockspec())
        .current_dir(repo_root())
        .args(["run", "tcp-upper", "--client", client, "--only", CHECK])
        .args(["--format", "json"])
        .output()
        .expect("sockspec runs");
    let seconds = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let check = report["checks"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == CHECK))
        .cloned()
        .unwrap_or_else(|| panic!("{CHECK} is not in the report: {report}"));
    (
        check["verdict"].as_str().unwrap_or("").to_string(),
        check["detail"].to_string(),
        seconds,
    )
}

#[test]
fn a_client_starved_of_a_core_is_waited_for_and_one_asleep_is_not() {
    // Two busy loops and the client on one core, the client at the
    // lowest priority: it gets well under 1 % of the core, so CPython's
    // start-up of some 40 ms of CPU takes several seconds.
    let _hogs = Hogs::start(2, 25);
    let starved = "python3 -c \"import os, sys; os.sched_setaffinity(0, {0}); os.nice(19); \
                   os.execvp('python3', ['python3', 'fixtures/tcp-upper/client.py', sys.argv[1]])\" {port}";
    let asleep = "python3 -c \"import time; time.sleep(30)\"";
    let (slow, quiet) = std::thread::scope(|s| {
        let slow = s.spawn(|| judge(starved));
        let quiet = s.spawn(|| judge(asleep));
        (slow.join(), quiet.join())
    });
    let (verdict, detail, seconds) = slow.expect("the starved run ends");
    assert_eq!(
        verdict, "pass",
        "the starved client ({seconds:.1}s): {detail}"
    );
    let (verdict, detail, seconds) = quiet.expect("the sleeping run ends");
    assert_eq!(verdict, "fail", "{detail}");
    assert!(
        detail.contains("did not connect within 5.0s") && !detail.contains("still starting"),
        "a client asleep is judged at the accept deadline: {detail}"
    );
    assert!(seconds < 15.0, "the sleeping client took {seconds:.1}s");
}
