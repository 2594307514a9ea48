//! The no-spin check holds on a crowded machine: sixteen spinning servers
//! judged at once (the two cores shared among them, each spinner gets a
//! few percent of a core) are all caught, and sixteen correct servers
//! judged at once, half of them polling with a 1 ms timeout, all pass.
//!
//! `SOCKSPEC_SPIN_ROUNDS=N` sets the rounds (default 1, the short form that
//! `make test` runs; `make spin ROUNDS=10` runs ten).

mod common;

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{env_number, manifest, parallel, seed, survivors, unique_tag, Fixture};
use sockspec_engine::conversations::transcript::{Entry, Event, Record};

const CHECK: &str = "tcp-upper.no-spin";

/// How many targets are judged at once.
const AT_ONCE: usize = 16;

/// The two crowds take turns: each is the whole load while it is judged.
static ONE_CROWD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `AT_ONCE` runs, alternating between the fixtures named.
fn crowd(names: [&str; 2]) -> Vec<Fixture> {
    let all = manifest().fixture;
    let pick = |name: &str| {
        all.iter()
            .find(|f| f.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is not in the manifest"))
    };
    let pair = names.map(pick);
    (0..AT_ONCE).map(|i| pair[i % 2].clone()).collect()
}

/// What one run of the check on one fixture gave.
struct Judged {
    fixture: String,
    verdict: String,
    /// The transcript's CPU note, or the run's stderr when there is none.
    figures: String,
    /// Everything the report says of the check, to explain a wrong verdict.
    report: String,
}

/// `n` different free ports. The harness picks a free port for each run by
/// itself, but the kernel picks at random, so sixteen runs started at once
/// share one now and then (2 rounds in 70 when measured): one target then
/// cannot bind and its run talks to another run's target. Ports held open
/// together are distinct.
fn distinct_ports(n: usize) -> Vec<String> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("a bound port").port().to_string())
        .collect()
}

fn judge_all_at_once(fixtures: Vec<Fixture>, seed: u64) -> Vec<Judged> {
    let jobs: Vec<_> = fixtures.into_iter().zip(distinct_ports(AT_ONCE)).collect();
    parallel(jobs, AT_ONCE, |(f, port)| {
        let tag = unique_tag("spin");
        let run = f.run(seed, &tag, &["--only", CHECK, "--port", &port]);
        let left = survivors(&tag, Duration::from_secs(2));
        assert!(
            left.is_empty(),
            "{}: processes outlived the run: {left:?}",
            f.name
        );
        let check = run
            .results
            .as_ref()
            .ok()
            .and_then(|r| r.checks.iter().find(|c| c.id == CHECK));
        let note = check.and_then(|c| {
            c.transcript.iter().rev().find_map(|r| match r {
                Record::Entry(Entry {
                    event: Event::Note { text },
                    ..
                }) if text.starts_with("CPU ") => Some(text.as_str()),
                _ => None,
            })
        });
        Judged {
            fixture: f.name.clone(),
            verdict: check
                .map_or("no report", |c| c.verdict.as_str())
                .to_string(),
            figures: note.map(str::to_string).unwrap_or_else(|| {
                String::from_utf8_lossy(&run.output.stderr)
                    .trim()
                    .to_string()
            }),
            report: serde_json::to_string_pretty(&check).unwrap_or_default(),
        }
    })
}

/// The whole number just after `label` in a CPU note ("CPU 4%" gives 4).
fn percent_after(note: &str, label: &str) -> Option<u32> {
    let rest = &note[note.find(label)? + label.len()..];
    rest[..rest.find('%')?].parse().ok()
}

/// The lowest and highest of the figures after `label` in the runs' notes.
fn span(judged: &[Judged], label: &str) -> String {
    let all: Vec<u32> = judged
        .iter()
        .filter_map(|j| percent_after(&j.figures, label))
        .collect();
    match (all.iter().min(), all.iter().max()) {
        (Some(lo), Some(hi)) => format!("{lo}-{hi}%"),
        _ => "none".to_string(),
    }
}

/// Runs `rounds` rounds and returns every run whose verdict was not `want`.
fn rounds_of(names: [&str; 2], want: &str, what: &str) -> Vec<String> {
    let _turn = ONE_CROWD_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let rounds: usize = env_number("SOCKSPEC_SPIN_ROUNDS", 1);
    let base = seed();
    let started = Instant::now();
    let mut wrong = Vec::new();
    let mut judged = Vec::new();
    for round in 0..rounds {
        let seed = base.wrapping_add(round as u64);
        let this_round = judge_all_at_once(crowd(names), seed);
        for j in &this_round {
            if j.verdict != want {
                wrong.push(format!(
                    "round {} (seed {seed}): {}: {}, expected {want}\n    {}",
                    round + 1,
                    j.fixture,
                    j.verdict,
                    j.report.replace('\n', "\n    ")
                ));
            }
        }
        judged.extend(this_round);
    }
    eprintln!(
        "spin under load: {rounds} rounds x {AT_ONCE} {what} at once: {} of {} {want}, {:.1}s; \
         share of a core {}, busiest thread ready to run {}",
        rounds * AT_ONCE - wrong.len(),
        rounds * AT_ONCE,
        started.elapsed().as_secs_f64(),
        span(&judged, "CPU "),
        span(&judged, "ready to run ")
    );
    wrong
}

#[test]
fn sixteen_spinning_servers_judged_at_once_all_fail_no_spin() {
    let missed = rounds_of(
        [
            "tcp-upper/faulty/server_spin.py",
            "tcp-upper/faulty/server_fork_spin.py",
        ],
        "fail",
        "spinning servers",
    );
    assert!(
        missed.is_empty(),
        "{} spinners were not caught:\n- {}",
        missed.len(),
        missed.join("\n- ")
    );
}

#[test]
fn sixteen_correct_servers_judged_at_once_all_pass_no_spin() {
    let flagged = rounds_of(
        ["tcp-upper/server.py", "tcp-upper/server_poll.py"],
        "pass",
        "correct servers",
    );
    assert!(
        flagged.is_empty(),
        "{} correct servers were called spinning:\n- {}",
        flagged.len(),
        flagged.join("\n- ")
    );
}
