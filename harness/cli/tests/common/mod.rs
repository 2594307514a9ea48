//! The fixture manifest and running the `sockspec` binary on a fixture,
//! shared by the project's end-to-end tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

/// The repository's top folder (fixture commands run from there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn sockspec() -> PathBuf {
    assert_cmd::cargo::cargo_bin("sockspec")
}

#[derive(Deserialize, Debug, Clone)]
pub struct Manifest {
    pub fixture: Vec<Fixture>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub suite: String,
    pub role: String,
    pub command: String,
    pub fault: Option<String>,
    pub catches: Option<String>,
    #[serde(default)]
    pub expect: BTreeMap<String, String>,
}

pub fn manifest() -> Manifest {
    let path = repo_root().join("fixtures/manifest.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Fixture {
    pub fn command_line(&self) -> String {
        self.command
            .replace("{sockspec}", &sockspec().display().to_string())
    }

    /// The verdict the manifest expects of `id` at `level`.
    pub fn expected(&self, id: &str, level: &str) -> String {
        self.expect.get(id).cloned().unwrap_or_else(|| {
            if level == "info" {
                "info".into()
            } else {
                "pass".into()
            }
        })
    }

    /// Runs the fixture's suite against it and returns the JSON report.
    pub fn run(&self, seed: u64, extra: &[&str]) -> (serde_json::Value, Output) {
        let flag = if self.role == "client" {
            "--client"
        } else {
            "--server"
        };
        let output = Command::new(sockspec())
            .current_dir(repo_root())
            .args([
                "run",
                &self.suite,
                flag,
                &self.command_line(),
                "--format",
                "json",
            ])
            .args(["--seed", &seed.to_string()])
            .args(extra)
            .output()
            .expect("sockspec runs");
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: no JSON report ({e}); exit {:?}\nstderr:\n{}",
                self.name,
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (report, output)
    }
}

/// A verdict that differs from the manifest.
#[derive(Debug)]
pub struct Difference {
    pub fixture: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    pub detail: String,
}

/// Compares a report with the manifest's expectations for `fixture`.
pub fn differences(fixture: &Fixture, report: &serde_json::Value) -> Vec<Difference> {
    let mut out = Vec::new();
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    for check in &checks {
        let id = check["id"].as_str().unwrap_or_default();
        let level = check["level"].as_str().unwrap_or_default();
        let actual = check["verdict"].as_str().unwrap_or_default();
        let expected = fixture.expected(id, level);
        if actual != expected {
            out.push(Difference {
                fixture: fixture.name.clone(),
                check: id.to_string(),
                expected,
                actual: actual.to_string(),
                detail: check["detail"].as_str().unwrap_or_default().to_string(),
            });
        }
    }
    for id in fixture.expect.keys() {
        if !checks.iter().any(|c| c["id"] == id.as_str()) {
            out.push(Difference {
                fixture: fixture.name.clone(),
                check: id.clone(),
                expected: fixture.expect[id].clone(),
                actual: "not run".into(),
                detail: "the manifest names a check the run did not report".into(),
            });
        }
    }
    out
}

/// A seed from the environment (`SOCKSPEC_SEED`) or the clock.
pub fn seed() -> u64 {
    std::env::var("SOCKSPEC_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                % 1_000_000_000
        })
}

/// Runs `jobs` on `workers` threads, returning results in order.
pub fn parallel<T: Send, R: Send>(
    jobs: Vec<T>,
    workers: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            s.spawn(|| loop {
                let job = queue.lock().unwrap().pop();
                let Some((i, job)) = job else { break };
                let r = f(job);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
