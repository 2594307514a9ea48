//! Several runs at once in one process, as a grader judging submissions
//! side by side does: each run owns its targets, and its cleanup ends them
//! and nothing else — not another run's target in the middle of a check,
//! not a helper process the grader started itself.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use sockspec_engine::conversations::check::{
    Body, Check, CheckId, Explain, Level, Role, Suite, Wire,
};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::kernel::procfs;
use sockspec_engine::model::profile::Profile;
use sockspec_engine::results::Summary;
use sockspec_engine::runs::run::{self, RunConfig, ServerPort, TargetSpec};
use sockspec_engine::runs::select::Selection;
use sockspec_engine::targets::fleet::{Fleet, MARK_VAR};
use sockspec_engine::targets::target::Workdir;
use sockspec_engine::{Cut, Pause, Timing, Transport, Verdict};

const C1: Conn = Conn(1);

/// How long the slow check waits in the middle of its conversation: the
/// other run starts, checks and ends meanwhile.
const MIDDLE: u32 = 2500;

fn sanity(_: &Profile) -> Conversation {
    Conversation::new()
        .connect(C1)
        .send(C1, "ping", Cut::Whole)
        .expect_bytes(C1, "PING")
        .close(C1)
}

fn slow(_: &Profile) -> Conversation {
    Conversation::new()
        .connect(C1)
        .send(C1, "before", Cut::Whole)
        .expect_bytes(C1, "BEFORE")
        .pause(Pause::Millis(MIDDLE))
        .send(C1, "after", Cut::Whole)
        .expect_bytes(C1, "AFTER")
        .close(C1)
}

fn check(id: &'static str, body: fn(&Profile) -> Conversation) -> Check {
    Check {
        id: CheckId::new(id),
        level: Level::Must,
        role: Role::Server,
        summary: "answers in upper case",
        expectation: "each message comes back in upper case",
        abusive: false,
        hint: None,
        hints: &[],
        explain: Explain::default(),
        body: Body::Conversation(body),
    }
}

fn suite(name: &'static str, check: Check) -> Suite {
    Suite {
        name,
        transport: Transport::Stream,
        summary: "a one-check suite for running side by side",
        wire: Wire {
            server: "uppercase echo",
            client: "uppercase echo",
        },
        sanity,
        params: &[],
        checks: vec![check],
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn config<'a>(suite: &'a Suite, command: &str, fleet: &Fleet) -> RunConfig<'a> {
    RunConfig {
        suite,
        target: TargetSpec::Server {
            command: command.into(),
            port: ServerPort::Free,
            transport: Transport::Stream,
            // The fixtures' paths are relative to the repository.
            workdir: Workdir::Dir(repo_root()),
        },
        fleet: fleet.clone(),
        timing: Timing::default(),
        profile: Profile::default(),
        seed: 1,
        selection: Selection::new(&[], &[]).unwrap(),
        expected_to_miss: Vec::new(),
        retries: 0,
        depends: Default::default(),
        grading: Default::default(),
        confine: None,
    }
}

/// The live processes carrying a fleet's mark.
fn marked(mark: &str) -> Vec<i32> {
    procfs::all_stats()
        .into_iter()
        .filter(|s| !s.zombie)
        .filter(|s| procfs::environ_var(s.pid, MARK_VAR).as_deref() == Some(mark))
        .map(|s| s.pid)
        .collect()
}

fn wait_until(within: Duration, what: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !what() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

fn passed_alone(summary: &Summary) -> bool {
    summary.count(Verdict::Pass) == 1 && summary.count(Verdict::Fail) == 0
}

#[test]
fn a_run_that_ends_leaves_another_run_s_target_and_the_harness_s_helpers_alone() {
    // A helper of the grader's own, a child of this process like the targets.
    let mut helper = Command::new("sleep").arg("60").spawn().unwrap();

    let (slow_fleet, quick_fleet) = (Fleet::new(), Fleet::new());
    let (slow_mark, quick_mark) = (
        slow_fleet.mark().to_string(),
        quick_fleet.mark().to_string(),
    );
    let slow_suite = suite("slow", check("slow.echo", slow));
    let quick_suite = suite("quick", check("quick.echo", sanity));

    let (slow_summary, quick_summary, slow_alive_after_quick) = thread::scope(|scope| {
        let slow_run = scope.spawn(|| {
            let config = config(
                &slow_suite,
                "python3 fixtures/tcp-upper/server.py {port}",
                &slow_fleet,
            );
            run::run(&config, &mut |_| {})
        });
        // The quick run starts once the slow run's target is up, and ends
        // while the slow check waits in its middle.
        assert!(
            wait_until(Duration::from_secs(10), || !marked(&slow_mark).is_empty()),
            "the slow run's target never started"
        );
        let quick = {
            // A server that forks a daemon escaping its group: the quick
            // run's cleanup must find it, and only it.
            let config = config(
                &quick_suite,
                "python3 fixtures/hostile/forks_escape.py {port}",
                &quick_fleet,
            );
            run::run(&config, &mut |_| {})
        };
        let slow_alive = !marked(&slow_mark).is_empty();
        (slow_run.join().unwrap(), quick, slow_alive)
    });

    assert!(
        slow_alive_after_quick,
        "the quick run's cleanup ended the slow run's target, or the slow check \
         was over before the quick run ended"
    );
    let quick_summary = quick_summary.expect("the quick run ran");
    assert!(passed_alone(&quick_summary), "{quick_summary:?}");
    let slow_summary = slow_summary.expect("the slow run ran");
    assert!(passed_alone(&slow_summary), "{slow_summary:?}");
    assert!(
        wait_until(Duration::from_secs(3), || marked(&slow_mark).is_empty()
            && marked(&quick_mark).is_empty()),
        "processes of a run survived it: {:?} {:?}",
        marked(&slow_mark),
        marked(&quick_mark)
    );
    assert!(
        procfs::stat(helper.id() as i32).is_some_and(|s| !s.zombie),
        "the runs ended a process they did not start"
    );
    helper.kill().unwrap();
    helper.wait().unwrap();
}
