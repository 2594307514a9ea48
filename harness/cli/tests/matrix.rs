//! The verdict matrix: every fixture through its suite, every verdict held
//! to `fixtures/manifest.toml`. The project's most important test: a
//! harness is worth what it tells apart.
//!
//! `SOCKSPEC_MATRIX_RUNS=N` repeats the whole matrix N times (default 1);
//! `SOCKSPEC_SEED` fixes the seed of generated cuts (default: the clock).

mod common;

use common::{differences, manifest, parallel, seed, Fixture};

#[test]
fn every_fixture_gets_the_verdicts_of_the_manifest() {
    let runs: usize = std::env::var("SOCKSPEC_MATRIX_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let fixtures = manifest().fixture;
    let mut all = Vec::new();
    for run in 1..=runs {
        let seed = seed().wrapping_add(run as u64);
        let jobs: Vec<Fixture> = fixtures.clone();
        let found = parallel(jobs, 2, |f| {
            let (report, _) = f.run(seed, &[]);
            let diffs = differences(&f, &report);
            let counts = report["summary"].clone();
            eprintln!(
                "run {run}/{runs} seed {seed}: {:<52} {} pass {} fail {} warn{}",
                f.name,
                counts["pass"],
                counts["fail"],
                counts["warn"],
                if diffs.is_empty() {
                    String::new()
                } else {
                    format!("  <-- {} differ", diffs.len())
                }
            );
            diffs
        });
        all.extend(found.into_iter().flatten().map(|d| (seed, d)));
    }
    if !all.is_empty() {
        let mut msg = format!(
            "{} verdicts differ from fixtures/manifest.toml:\n",
            all.len()
        );
        for (seed, d) in &all {
            msg.push_str(&format!(
                "- {} / {}: expected {}, got {} (seed {seed})\n    {}\n",
                d.fixture,
                d.check,
                d.expected,
                d.actual,
                d.detail.replace('\n', "\n    ")
            ));
        }
        panic!("{msg}");
    }
}

#[test]
fn every_fault_is_expected_to_be_caught_by_the_check_that_names_it() {
    for f in manifest().fixture {
        match (&f.fault, &f.catches) {
            (Some(_), Some(check)) => {
                let v = f.expected(check, "must");
                assert!(
                    v == "fail" || v == "warn",
                    "{}: {check} is expected to {v}, not to flag the fault",
                    f.name
                );
            }
            (None, None) => assert!(
                f.expect.is_empty(),
                "{}: a correct fixture must pass everything",
                f.name
            ),
            _ => panic!(
                "{}: a faulty fixture names both its fault and the check that catches it",
                f.name
            ),
        }
    }
}

/// The faults of the protocol reference, each with a fixture.
#[test]
fn every_tcp_upper_fault_of_the_reference_has_a_fixture() {
    let faults = [
        ("tcp-upper.no-spin", "receive loop never stops"),
        ("tcp-upper.next-client", "no accept loop"),
        (
            "tcp-upper.many-messages",
            "closes the connection after one reply",
        ),
        ("tcp-upper.reset", "dies on a reset"),
        ("tcp-upper.binary", "decodes as UTF-8"),
        ("tcp-upper.restart", "no SO_REUSEADDR"),
        ("tcp-upper.no-leak", "never closes accepted connections"),
        ("tcp-upper.large", "answers only the first BUF bytes"),
        ("tcp-upper.no-spin", "the child spins"),
        ("tcp-upper.half-close", "parent never closes its copy"),
        ("tcp-upper.client.empty-line", "sends empty lines"),
        ("tcp-upper.client.echo", "sends the newline"),
    ];
    let fixtures = manifest().fixture;
    for (check, words) in faults {
        assert!(
            fixtures.iter().any(|f| f.catches.as_deref() == Some(check)
                && f.fault.as_deref().is_some_and(|t| t.contains(words))),
            "no fixture for the fault {words:?} caught by {check}"
        );
    }
}
