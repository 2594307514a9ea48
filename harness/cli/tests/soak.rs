//! No flakes: every suite against every correct fixture, N times over,
//! while CPU-bound processes keep both cores busy. A correct program must
//! get the manifest's verdicts on every run.
//!
//! `SOCKSPEC_SOAK_RUNS=N` sets the rounds (default 1, the short form that
//! `make test` runs; `make soak` runs 200). The load is three busy loops,
//! the "under load" of the loopback measurements the timing rests on.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::{differences, env_number, manifest, parallel, runnable, seed, unique_tag};

/// Busy processes, ended (by their own ids) when dropped.
struct Load(Vec<Child>);

impl Load {
    fn start(n: usize) -> Load {
        Load(
            (0..n)
                .map(|_| {
                    Command::new("python3")
                        .args(["-c", "while True: pass"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("python3 starts")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn correct_fixtures_get_the_same_verdicts_under_load() {
    let rounds: usize = env_number("SOCKSPEC_SOAK_RUNS", 1);
    let correct: Vec<_> = runnable(manifest().fixture)
        .into_iter()
        .filter(|f| f.fault.is_none() && f.hostile.is_none())
        .collect();
    assert!(!correct.is_empty());
    let base = seed();
    let _load = Load::start(3);
    let started = Instant::now();
    let mut differing = Vec::new();
    let mut verdicts = 0usize;
    for round in 0..rounds {
        let seed = base.wrapping_add(round as u64);
        let results = parallel(correct.clone(), 2, |f| {
            let run = f.run(seed, &unique_tag("soak"), &[]);
            let n = run.results.as_ref().map_or(0, |r| r.checks.len());
            let diffs: Vec<String> = run
                .results
                .as_ref()
                .map(|r| differences(&f, r))
                .unwrap_or_default()
                .into_iter()
                .map(|d| {
                    format!(
                        "{} / {} (seed {seed}): expected {}, got {}\n    {}",
                        d.fixture,
                        d.check,
                        d.expected,
                        d.actual,
                        d.detail.replace('\n', "\n    ")
                    )
                })
                .collect();
            let diffs = if n == 0 {
                vec![format!(
                    "{} (seed {seed}): no report: {}",
                    f.name,
                    String::from_utf8_lossy(&run.output.stderr)
                )]
            } else {
                diffs
            };
            (n, diffs)
        });
        for (n, diffs) in results {
            verdicts += n;
            differing.extend(diffs);
        }
        if (round + 1) % 10 == 0 || round + 1 == rounds {
            eprintln!(
                "soak: {} of {rounds} rounds, {verdicts} verdicts, {} differed, {:.0}s",
                round + 1,
                differing.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "soak: {rounds} rounds x {} correct fixtures under load: {verdicts} verdicts, {} differed from the manifest, {:.0}s",
        correct.len(),
        differing.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        differing.is_empty(),
        "{} verdicts differed:\n- {}",
        differing.len(),
        differing.join("\n- ")
    );
}
