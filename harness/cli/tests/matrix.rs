//! The verdict matrix: every fixture through its suite, every verdict held
//! to `fixtures/manifest.toml`, and every run bounded: in time, in the
//! harness's memory, and in what it leaves behind (no process of a target
//! survives a run). The project's most important test: a harness is worth
//! what it tells apart.
//!
//! `SOCKSPEC_MATRIX_RUNS=N` repeats the whole matrix N times (default 1);
//! `SOCKSPEC_SEED` fixes the seed of generated cuts (default: the clock).

mod common;

use std::time::Duration;

use common::{
    differences, env_number, manifest, parallel, runnable, seed, survivors, unique_tag, Fixture,
};

/// The harness reads in 64 KiB pieces and keeps at most 1 MiB of each of a
/// target's output streams; a whole run against the flooding fixtures peaks
/// near 10 MiB. 64 MiB leaves room for the allocator and still catches any
/// buffer that grows with what a target sends.
const MAX_RSS_KIB: u64 = 64 * 1024;

/// Unless the manifest says otherwise, a run must end within this.
const DEFAULT_MAX_SECONDS: u64 = 60;

/// Fixtures on a port written in their code take turns: where the
/// machine's loopback is shared, two at once would meet on it.
static FIXED_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Everything wrong with one run of one fixture.
fn problems(f: &Fixture, seed: u64) -> Vec<String> {
    let _turn = f
        .port
        .map(|_| FIXED_PORT.lock().unwrap_or_else(|e| e.into_inner()));
    let tag = unique_tag("matrix");
    let run = f.run(seed, &tag, &[]);
    let mut out = Vec::new();
    let code = run.output.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    if code != f.expected_exit() {
        out.push(format!(
            "exit status {code}, expected {}\n    stderr: {}",
            f.expected_exit(),
            stderr.trim()
        ));
    }
    if let Some(text) = &f.stderr_contains {
        if !stderr.contains(text.as_str()) {
            out.push(format!("stderr lacks {text:?}: {}", stderr.trim()));
        }
    }
    if f.exit.is_none() {
        match &run.results {
            Err(why) => out.push(format!("no JSON report ({why}); stderr: {}", stderr.trim())),
            Ok(results) => {
                for d in differences(f, results) {
                    out.push(format!(
                        "{}: expected {}, got {}\n    {}",
                        d.check,
                        d.expected,
                        d.actual,
                        d.detail.replace('\n', "\n    ")
                    ));
                }
                for (id, words) in &f.words {
                    let detail = results
                        .checks
                        .iter()
                        .find(|c| c.id == *id)
                        // What a student reads of a check: its detail and
                        // the end of the target's stderr (a traceback).
                        .map(|c| {
                            format!(
                                "{}\n{}",
                                sockspec_engine::report::detail(c),
                                c.stderr_tail.clone().unwrap_or_default()
                            )
                        })
                        .unwrap_or_default();
                    for w in words {
                        if !detail.contains(w.as_str()) {
                            out.push(format!("{id}: the detail lacks {w:?}:\n    {detail}"));
                        }
                    }
                }
                for (id, phrases) in &f.not_words {
                    // Only the harness's own words: the program's stderr
                    // may say anything.
                    let detail = results
                        .checks
                        .iter()
                        .find(|c| c.id == *id)
                        .map(sockspec_engine::report::detail)
                        .unwrap_or_default();
                    for w in phrases {
                        if detail.contains(w.as_str()) {
                            out.push(format!("{id}: the detail holds {w:?}:\n    {detail}"));
                        }
                    }
                }
                let rss = results.summary.peak_rss_kib;
                if rss > MAX_RSS_KIB {
                    out.push(format!(
                        "the harness peaked at {rss} KiB of memory (bound {MAX_RSS_KIB} KiB)"
                    ));
                }
            }
        }
    }
    let bound = Duration::from_secs(f.max_seconds.unwrap_or(DEFAULT_MAX_SECONDS));
    if run.elapsed > bound {
        out.push(format!(
            "the run took {:.1}s (bound {}s)",
            run.elapsed.as_secs_f64(),
            bound.as_secs()
        ));
    }
    let left = survivors(&tag, Duration::from_secs(2));
    if !left.is_empty() {
        out.push(format!(
            "processes of the target outlived the run: {left:?}"
        ));
    }
    eprintln!(
        "seed {seed}: {:<48} exit {code} {:>5.1}s {:>6} KiB{}",
        f.name,
        run.elapsed.as_secs_f64(),
        run.results.as_ref().map_or(0, |r| r.summary.peak_rss_kib),
        if out.is_empty() {
            String::new()
        } else {
            format!("  <-- {} problems", out.len())
        }
    );
    out.into_iter()
        .map(|p| format!("{} (seed {seed}): {p}", f.name))
        .collect()
}

#[test]
fn every_fixture_gets_the_verdicts_of_the_manifest() {
    let runs: usize = env_number("SOCKSPEC_MATRIX_RUNS", 1);
    let fixtures = runnable(manifest().fixture);
    let mut all = Vec::new();
    for run in 1..=runs {
        let seed = seed().wrapping_add(run as u64);
        eprintln!("matrix run {run} of {runs}");
        // The fixtures that spin dozens of processes on purpose have a
        // lane of their own, one at a time, so the load they make does not
        // add up; those that only sleep through deadlines have two lanes
        // beside the two for the others, as they cost no CPU.
        let (spinning, rest): (Vec<Fixture>, Vec<Fixture>) =
            fixtures.iter().cloned().partition(|f| f.spins);
        let (waiting, rest): (Vec<Fixture>, Vec<Fixture>) = rest.into_iter().partition(|f| f.waits);
        let (alone, asleep, others) = std::thread::scope(|s| {
            let alone = s.spawn(|| parallel(spinning, 1, |f| problems(&f, seed)));
            let asleep = s.spawn(|| parallel(waiting, 2, |f| problems(&f, seed)));
            let others = parallel(rest, 2, |f| problems(&f, seed));
            (
                alone.join().expect("the spinning fixtures ran"),
                asleep.join().expect("the waiting fixtures ran"),
                others,
            )
        });
        all.extend(others.into_iter().chain(alone).chain(asleep).flatten());
    }
    assert!(
        all.is_empty(),
        "{} problems with the verdict matrix:\n- {}",
        all.len(),
        all.join("\n- ")
    );
}

#[test]
fn every_fault_is_expected_to_be_caught_by_the_check_that_names_it() {
    for f in manifest().fixture {
        match (&f.fault, &f.catches, &f.hostile) {
            (Some(_), Some(check), None) => {
                let v = f.expected(check, "must");
                assert!(v == "fail" || v == "warn", "{}: {check} is expected to {v}, not to flag the fault", f.name);
            }
            (None, None, Some(_)) => {}
            (None, None, None) => assert!(f.expect.is_empty(), "{}: a correct fixture must pass everything", f.name),
            _ => panic!("{}: a faulty fixture names its fault and the check that catches it; a hostile one says what it does", f.name),
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

/// Every datagram fault of the protocol reference's fault table has a
/// faulty fixture, caught by the check the table names.
#[test]
fn every_datagram_fault_of_the_reference_has_a_fixture() {
    let faults = [
        ("udp-upper.empty", "does not answer empty datagrams"),
        (
            "udp-upper.truncation",
            "crashes on a datagram longer than BUF",
        ),
        ("udp-upper.senders", "replies to a fixed address"),
        ("udp-upper.binary", "decoding as UTF-8"),
        ("udp-upper.senders", "connect()s to its first client"),
        ("udp-upper.client.empty-line", "sends empty lines"),
        ("udp-chat.two-clients", "answers the latest sender"),
        (
            "udp-chat.two-clients",
            "a receiving thread and a typing thread",
        ),
        ("udp-chat.unicode", "GBK"),
        ("udp-chat.client.skip", "sends empty messages"),
        ("cmd-udp.two-datagrams", "in one datagram"),
        ("cmd-udp.two-datagrams", "the empty datagram skipped"),
        ("cmd-udp.two-datagrams", "placeholder"),
        ("cmd-udp.client.in-step", "one receive per command"),
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

/// The faults of the framed remote-command protocols, each with a fixture.
#[test]
fn every_framing_fault_of_the_reference_has_a_fixture() {
    let faults = [
        ("cmd-len.frame", "prefix counts stdout only"),
        ("cmd-len.byte-order", "prefix in network order"),
        ("cmd-len.bytes", "decodes and re-encodes the output"),
        ("cmd-len.large", "with a socket timeout set, count ignored"),
        ("cmd-len.large", "stderr pipe to the end before stdout"),
        ("cmd-len.disconnect", "catches only `ConnectionResetError`"),
        ("cmd-len.stderr", "placeholder"),
        (
            "cmd-len.client.split-prefix",
            "one receive of 4 for the prefix",
        ),
        ("cmd-len.client.empty-line", "sends empty lines"),
        ("cmd-json.header", "prefix counts characters, not bytes"),
        ("cmd-json.header", "`data_size` under the default profile"),
        ("cmd-json.header", "`size` sent as a string"),
        (
            "cmd-json.client.split-header",
            "one receive of H for the header",
        ),
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

/// The upload faults of the protocol reference, each with a fixture.
#[test]
fn every_file_upload_fault_of_the_reference_has_a_fixture() {
    let faults = [
        (
            "file-upload.split-header",
            "one receive of 4 for the prefix, one of H for the header",
        ),
        ("file-upload.content", "one receive of `size` for the body"),
        ("file-upload.traversal", "uses the filename as a path"),
        ("file-upload.content", "writes the body as decoded text"),
        (
            "file-upload.bad-header",
            "`recv(claimed_size)` for a 2^31-1 prefix",
        ),
        ("file-upload.truncated", "no end-of-stream check"),
        (
            "file-upload.client.header",
            "header length counted in characters",
        ),
        ("file-upload.client.header", "`size` in characters"),
        (
            "file-upload.client.slow-reader",
            "with a socket timeout set, count ignored",
        ),
        ("file-upload.client.md5", "MD5"),
        ("file-upload.client.content", "reads the file as text"),
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

/// The hostile catalogue: each behaviour has a fixture in the matrix.
#[test]
fn every_hostile_behaviour_has_a_fixture() {
    let behaviours = [
        "never listens",
        "never accepts",
        "never answers",
        "one byte a second",
        "a length prefix of 2^31-1",
        "a header that is not JSON",
        "whose size is negative",
        "streams without end",
        "floods",
        "closes every connection",
        "resets every connection",
        "prefix of 2^31-1",
        "forks",
        "ignores SIGTERM",
        "exits in the middle",
        "megabytes to stderr",
        "never reads its standard input",
        "sends the same answer to the same address as fast as it can",
        "answers every datagram ten times",
        "never binds",
        "binds the port after the one it is given",
        "never stops reading",
        "8 GiB of zeros",
    ];
    let fixtures = manifest().fixture;
    for b in behaviours {
        assert!(
            fixtures
                .iter()
                .any(|f| f.hostile.as_deref().is_some_and(|h| h.contains(b))),
            "no hostile fixture that {b}"
        );
    }
}
