//! A fault of the harness or of a suite is never the target's failure: the
//! check is an ERROR, the run counts no FAIL, and the command exits with its
//! own status (4) instead of the one for a failed check (1).

use std::path::Path;

use sockspec_engine::conversations::check::{Body, Check, CheckId, Explain, Role, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::model::cut::Cut;
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::Profile;
use sockspec_engine::model::timing::Timing;
use sockspec_engine::model::verdict::Verdict;
use sockspec_engine::results::RunEvent;
use sockspec_engine::runs::run::{self, RunConfig, ServerPort, TargetSpec};
use sockspec_engine::runs::select::Selection;
use sockspec_engine::targets::fleet::Fleet;
use sockspec_engine::targets::target::Workdir;
use sockspec_engine::Transport;

/// A suite with a bug: it expects a reply on a connection it never opened.
fn buggy_suite() -> Suite {
    Suite {
        name: "buggy",
        transport: Transport::Stream,
        summary: "a suite that expects on a connection it never opened",
        wire: Wire {
            server: "anything",
            client: "anything",
        },
        sanity: |_| Conversation::new(),
        params: &[],
        checks: vec![Check {
            id: CheckId::new("buggy.unopened"),
            level: Level::Must,
            role: Role::Server,
            summary: "expects on c2 after opening c1 only",
            expectation: "none: the suite is wrong",
            abusive: false,
            hint: None,
            hints: &[],
            explain: Explain::default(),
            body: Body::Conversation(|_| {
                Conversation::new()
                    .connect(Conn(1))
                    .send(Conn(1), "hello", Cut::Whole)
                    .expect_bytes(Conn(2), "HELLO")
            }),
        }],
    }
}

#[test]
fn a_suite_that_expects_on_a_connection_it_never_opened_gives_an_error_not_a_fail() {
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tcp-upper/server.py");
    let suite = buggy_suite();
    let config = RunConfig {
        suite: &suite,
        target: TargetSpec::Server {
            command: format!("python3 {} {{port}}", server.display()),
            port: ServerPort::Free,
            transport: Transport::Stream,
            workdir: Workdir::Here,
        },
        fleet: Fleet::new(),
        timing: Timing::default(),
        profile: Profile::default(),
        seed: 1,
        selection: Selection::new(&[], &[]).unwrap(),
        expected_to_miss: Vec::new(),
        retries: 0,
        depends: Default::default(),
        grading: Default::default(),
        confine: None,
    };
    let mut details = Vec::new();
    let summary = run::run(&config, &mut |event| {
        if let RunEvent::CheckFinished { result, .. } = event {
            details.push((result.verdict, sockspec_engine::report::detail(result)));
        }
    })
    .expect("the run itself goes on");
    assert_eq!(summary.count(Verdict::Error), 1);
    assert_eq!(summary.count(Verdict::Fail), 0);
    let (verdict, detail) = &details[0];
    assert_eq!(*verdict, Verdict::Error);
    assert!(detail.contains("c2 is not open"), "{detail}");
    assert!(detail.contains("not of the program"), "{detail}");
}
