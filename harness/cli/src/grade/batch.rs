//! Runs a class's submissions side by side: each on a thread of its own,
//! with its own run of the engine (its own targets, ports, scratch
//! directories and, where the machine grants them, a private loopback per
//! check), at most `jobs` at a time. A submission whose fixed port was held
//! by another process is run once more after the others.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use sockspec_engine::conversations::check::Role;
use sockspec_engine::kernel::netns;
use sockspec_engine::report::{JsonReporter, Reporter};
use sockspec_engine::results::{RunError, RunEvent, RunInfo, RunResults, SCHEMA_VERSION};
use sockspec_engine::runs::run::{self, RunConfig};
use sockspec_engine::targets::fleet;

use super::summary::Status;

/// One submission's run, as it ended.
pub struct Done {
    pub name: String,
    /// The JSON report, as `sockspec run --format json` writes it, and its
    /// results; `None` when the run was interrupted (nothing of it is the
    /// submission's doing).
    pub report: Option<(Vec<u8>, RunResults)>,
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Whether this was the run again after the fixed port was held.
    pub requeued: bool,
}

/// What every submission is graded on, for a report of the harness's
/// own failure.
#[derive(Clone, Copy)]
pub struct Assignment<'a> {
    pub suite: &'a str,
    pub role: Role,
}

/// What the batch tells its caller as it goes.
pub enum Event<'a> {
    Started {
        name: &'a str,
    },
    /// The fixed port was held: the submission runs again after the others.
    Requeued {
        name: &'a str,
    },
    Finished(Box<Done>),
}

/// Grades `names` in order, at most `jobs` at once, each run configured by
/// `config_for`; reports every start and end to `on_event`. Once the
/// harness is interrupted no run starts, and the runs under way are waited
/// for (their targets are being ended) and not reported.
pub fn run_all<'a>(
    names: Vec<String>,
    jobs: usize,
    graded: Assignment<'_>,
    config_for: &(dyn Fn(&str) -> RunConfig<'a> + Sync),
    on_event: &mut dyn FnMut(Event),
) {
    let mut queue: VecDeque<(String, bool)> = names.into_iter().map(|n| (n, false)).collect();
    thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Done>();
        let mut running = 0usize;
        loop {
            while running < jobs.max(1) && !fleet::interrupted() {
                let Some((name, requeued)) = queue.pop_front() else {
                    break;
                };
                on_event(Event::Started { name: &name });
                let tx = tx.clone();
                // A fresh thread per submission: it starts in the harness's
                // own network namespace, not in one a previous run's check
                // left its thread in.
                scope.spawn(move || {
                    let done = grade_one(&name, requeued, graded, config_for);
                    let _ = tx.send(done);
                });
                running += 1;
            }
            if running == 0 {
                break;
            }
            let Ok(done) = rx.recv() else { break };
            running -= 1;
            if fleet::interrupted() {
                continue;
            }
            let port_held = done
                .report
                .as_ref()
                .is_some_and(|(_, r)| Status::of(r) == Status::PortBusy);
            if port_held && !done.requeued {
                on_event(Event::Requeued { name: &done.name });
                queue.push_back((done.name, true));
                continue;
            }
            on_event(Event::Finished(Box::new(done)));
        }
    });
}

/// Runs one submission's checks, its JSON report written to memory.
fn grade_one<'a>(
    name: &str,
    requeued: bool,
    graded: Assignment<'_>,
    config_for: &(dyn Fn(&str) -> RunConfig<'a> + Sync),
) -> Done {
    let started_ms = now_ms();
    let played = panic::catch_unwind(AssertUnwindSafe(|| {
        // Where each check gets a private loopback, the run's look at its
        // fixed port before the first check is made from one as well: a
        // process on the machine's loopback holding that port keeps no
        // submission from being graded in its own.
        netns::fresh_loopback();
        let config = config_for(name);
        let mut bytes = Vec::new();
        let mut write_failed = None;
        {
            let mut reporter = JsonReporter::new(&mut bytes);
            let _ = run::run(&config, &mut |event: &RunEvent| {
                // What an interrupt causes is not the submission's doing.
                if fleet::interrupted() {
                    return;
                }
                if let Err(e) = reporter.report(event) {
                    write_failed.get_or_insert(e);
                }
            });
        }
        drop(config);
        (bytes, write_failed)
    }));
    let report = match played {
        _ if fleet::interrupted() => None,
        Ok((bytes, None)) => match serde_json::from_slice::<RunResults>(&bytes) {
            Ok(results) => Some((bytes, results)),
            Err(e) => Some(harness_failed(
                graded,
                name,
                format!("its report did not read back: {e}"),
            )),
        },
        Ok((_, Some(e))) => Some(harness_failed(graded, name, format!("its report: {e}"))),
        Err(_) => Some(harness_failed(
            graded,
            name,
            "the harness failed while grading it (a panic; see above)".into(),
        )),
    };
    Done {
        name: name.to_string(),
        report,
        started_ms,
        finished_ms: now_ms(),
        requeued,
    }
}

/// A report that says the harness, not the submission, failed.
fn harness_failed(graded: Assignment, name: &str, what: String) -> (Vec<u8>, RunResults) {
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        run: RunInfo {
            suite: graded.suite.to_string(),
            role: graded.role,
            target: name.to_string(),
            seed: 0,
            isolation: Default::default(),
        },
        checks: Vec::new(),
        summary: Default::default(),
        error: Some(RunError::Harness(format!("grading {name}: {what}"))),
    };
    let bytes = serde_json::to_vec_pretty(&results).unwrap_or_default();
    (bytes, results)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
