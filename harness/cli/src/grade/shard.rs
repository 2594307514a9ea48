//! Past one machine: a deterministic share of a class per shard
//! (`--shard K/N`, or the index variables CI engines set), the small
//! `shard.json` each shard writes beside its outputs, and the checks
//! `sockspec merge` makes before it joins shards into one summary.
//!
//! Submissions are sorted by name; the one at index `i` (from 0) goes to
//! shard `(i mod N) + 1`. Every shard lists the same folder, so each
//! computes the same split without talking to the others.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The name of the file each grading run writes beside its reports.
pub const SHARD_FILE: &str = "shard.json";

/// One shard of N, K counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl Shard {
    /// The whole class in one run.
    pub const WHOLE: Shard = Shard { k: 1, n: 1 };

    /// Reads `K/N`, such as `2/5`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "--shard {text:?} is not K/N with 1 <= K <= N; for example --shard 2/5 \
                 (the second of five shards)"
            )
        };
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }

    /// The shard asked for: `--shard`, else the index variables a CI
    /// engine sets: GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL` (from 1), a
    /// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` (from 0) with the
    /// total from `--shard-total`; else the whole class.
    pub fn chosen(
        given: Option<&str>,
        total: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, String> {
        if let Some(text) = given {
            return Shard::parse(text);
        }
        if let Some(index) = env("CI_NODE_INDEX") {
            let Some(of) = env("CI_NODE_TOTAL") else {
                return Err(format!(
                    "CI_NODE_INDEX={index} is set but CI_NODE_TOTAL is not: set both \
                     (GitLab's `parallel:` does), or give --shard K/N"
                ));
            };
            return Shard::parse(&format!("{index}/{of}")).map_err(|_| {
                format!(
                    "CI_NODE_INDEX={index} and CI_NODE_TOTAL={of} are not a shard K of N \
                     with 1 <= K <= N: fix them, or give --shard K/N"
                )
            });
        }
        if let Some(index) = env("JOB_COMPLETION_INDEX") {
            let Some(of) = total else {
                return Err(format!(
                    "JOB_COMPLETION_INDEX={index} is set (a Kubernetes Indexed Job) but the \
                     number of shards is not known: give --shard-total N (the Job's \
                     completions), or --shard K/N"
                ));
            };
            let k = index.trim().parse::<usize>().map_err(|_| {
                format!("JOB_COMPLETION_INDEX={index} is not a number from 0: fix it, or give --shard K/N")
            })?;
            return Shard::parse(&format!("{}/{of}", k + 1)).map_err(|_| {
                format!(
                    "JOB_COMPLETION_INDEX={index} is not below --shard-total {of}: give the \
                     Job's completions as --shard-total"
                )
            });
        }
        if total.is_some() {
            return Err(
                "--shard-total is given but no JOB_COMPLETION_INDEX is set: give --shard K/N \
                 instead"
                    .into(),
            );
        }
        Ok(Shard::WHOLE)
    }

    /// Whether the submission at `index` of the sorted list is this
    /// shard's.
    pub fn takes(self, index: usize) -> bool {
        index % self.n + 1 == self.k
    }

    /// This shard's names, of all the class's names sorted.
    pub fn share<T: Clone>(self, sorted: &[T]) -> Vec<T> {
        sorted
            .iter()
            .enumerate()
            .filter(|(i, _)| self.takes(*i))
            .map(|(_, s)| s.clone())
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

/// A check the assignment grades, with its worth: what the maximum score
/// counts, whether or not the check ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub id: String,
    pub points: f64,
}

/// When one submission was graded, in milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Graded {
    pub submission: String,
    pub status: String,
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Run again after the others, its fixed port held the first time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requeued: bool,
}

/// What a grading run writes to `shard.json`: which shard it was, what
/// it graded, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    pub suite: String,
    pub role: String,
    #[serde(flatten)]
    pub shard: Shard,
    /// Every submission of this shard, graded now or before (`--resume`).
    pub submissions: Vec<String>,
    /// The checks the assignment grades and their points.
    pub plan: Vec<Planned>,
    /// The isolation the machine granted (`namespace`, `user-namespace`,
    /// `shared`).
    pub isolation: String,
    /// Whether each submission saw only its own folder (a mount namespace
    /// of its own).
    #[serde(default)]
    pub confined: bool,
    /// Why submissions ran one after another, when they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_at_a_time: Option<String>,
    /// The submissions this run graded, as they finished.
    #[serde(default)]
    pub timeline: Vec<Graded>,
}

impl ShardFile {
    pub fn read(dir: &Path) -> Result<ShardFile, String> {
        let path = dir.join(SHARD_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}; give folders that `sockspec grade` wrote (each holds \
                 a {SHARD_FILE})",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a shard file sockspec grade writes: {e}; grade that shard again",
                path.display()
            )
        })
    }
}

/// Checks that `shards` (each with the folder it came from) are the N
/// shards of one grading: the same suite, role and plan, the same N, every
/// K from 1 to N once, and no submission in two of them.
pub fn check_complete(shards: &[(String, ShardFile)]) -> Result<(), String> {
    let Some((first_dir, first)) = shards.first() else {
        return Err("give the folders of the shards to merge".into());
    };
    for (dir, s) in &shards[1..] {
        if (s.suite.as_str(), s.role.as_str()) != (first.suite.as_str(), first.role.as_str()) {
            return Err(format!(
                "{dir} graded the {} checks of {}, and {first_dir} the {} checks of {}: merge \
                 shards of one assignment only",
                s.role, s.suite, first.role, first.suite
            ));
        }
        if s.shard.n != first.shard.n {
            return Err(format!(
                "{dir} is shard {} and {first_dir} shard {}: the shards of one grading share \
                 their N; grade every shard with the same --shard K/N total",
                s.shard, first.shard
            ));
        }
        if s.plan != first.plan {
            return Err(format!(
                "{dir} and {first_dir} grade different checks or points: grade every shard \
                 with the same profile"
            ));
        }
    }
    let mut by_k: BTreeMap<usize, &str> = BTreeMap::new();
    for (dir, s) in shards {
        if let Some(other) = by_k.insert(s.shard.k, dir) {
            return Err(format!(
                "{other} and {dir} are both shard {}: give each shard's folder once",
                s.shard
            ));
        }
    }
    let n = first.shard.n;
    let missing: Vec<String> = (1..=n)
        .filter(|k| !by_k.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard {} missing: grade it (`sockspec grade ... --shard K/N`) and give its \
             folder too",
            missing.join(", ")
        ));
    }
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (dir, s) in shards {
        for name in &s.submissions {
            if let Some(other) = owner.insert(name, dir) {
                return Err(format!(
                    "{name} is in {other} and in {dir}: the shards overlap; were they cut \
                     from different submission folders? Grade them again from one"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn submission_i_goes_to_shard_i_mod_n_plus_one() {
        let names: Vec<String> = (0..7).map(|i| format!("s{i}")).collect();
        let shard = |k| Shard { k, n: 3 }.share(&names);
        assert_eq!(shard(1), ["s0", "s3", "s6"]);
        assert_eq!(shard(2), ["s1", "s4"]);
        assert_eq!(shard(3), ["s2", "s5"]);
        assert_eq!(Shard::WHOLE.share(&names), names);
    }

    #[test]
    fn every_submission_is_in_exactly_one_shard() {
        for n in 1..6 {
            for i in 0..20 {
                let owners = (1..=n).filter(|&k| Shard { k, n }.takes(i)).count();
                assert_eq!(owners, 1, "submission {i} of {n} shards");
            }
        }
    }

    #[test]
    fn a_shard_is_k_of_n_from_one() {
        assert_eq!(Shard::parse("2/5"), Ok(Shard { k: 2, n: 5 }));
        for bad in ["0/3", "4/3", "1/0", "2", "a/b", ""] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("for example --shard 2/5"), "{bad}: {e}");
        }
    }

    #[test]
    fn gitlab_counts_from_one_and_kubernetes_from_zero() {
        let gitlab = |name: &str| match name {
            "CI_NODE_INDEX" => Some("2".to_string()),
            "CI_NODE_TOTAL" => Some("4".to_string()),
            _ => None,
        };
        assert_eq!(Shard::chosen(None, None, gitlab), Ok(Shard { k: 2, n: 4 }));
        let k8s = |name: &str| (name == "JOB_COMPLETION_INDEX").then(|| "0".to_string());
        assert_eq!(Shard::chosen(None, Some(3), k8s), Ok(Shard { k: 1, n: 3 }));
        let e = Shard::chosen(None, None, k8s).unwrap_err();
        assert!(e.contains("--shard-total"), "{e}");
        // --shard wins over the environment.
        assert_eq!(
            Shard::chosen(Some("1/2"), None, gitlab),
            Ok(Shard { k: 1, n: 2 })
        );
        assert_eq!(Shard::chosen(None, None, no_env), Ok(Shard::WHOLE));
    }

    fn file(k: usize, n: usize, names: &[&str]) -> (String, ShardFile) {
        (
            format!("out{k}"),
            ShardFile {
                suite: "tcp-upper".into(),
                role: "server".into(),
                shard: Shard { k, n },
                submissions: names.iter().map(|s| s.to_string()).collect(),
                plan: vec![Planned {
                    id: "tcp-upper.echo".into(),
                    points: 1.0,
                }],
                isolation: "namespace".into(),
                confined: true,
                one_at_a_time: None,
                timeline: Vec::new(),
            },
        )
    }

    #[test]
    fn merging_needs_every_shard_once_and_no_submission_twice() {
        assert!(check_complete(&[file(1, 2, &["a"]), file(2, 2, &["b"])]).is_ok());
        let missing = check_complete(&[file(1, 3, &["a"]), file(3, 3, &["c"])]).unwrap_err();
        assert!(missing.contains("shard 2/3 missing"), "{missing}");
        let twice = check_complete(&[file(1, 2, &["a"]), file(1, 2, &["b"])]).unwrap_err();
        assert!(twice.contains("both shard 1/2"), "{twice}");
        let overlap = check_complete(&[file(1, 2, &["a"]), file(2, 2, &["a"])]).unwrap_err();
        assert!(overlap.contains("overlap"), "{overlap}");
        let other_n = check_complete(&[file(1, 2, &["a"]), file(2, 3, &["b"])]).unwrap_err();
        assert!(other_n.contains("share their N"), "{other_n}");
        let mut other_suite = file(2, 2, &["b"]);
        other_suite.1.suite = "udp-upper".into();
        let e = check_complete(&[file(1, 2, &["a"]), other_suite]).unwrap_err();
        assert!(e.contains("one assignment only"), "{e}");
    }
}
