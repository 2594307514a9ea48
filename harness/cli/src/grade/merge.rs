//! `sockspec merge`: the outputs of a grading's shards joined into one
//! folder, with one `summary.csv` and `summary.md` of the whole class, as
//! one machine grading every submission would have written them.

use std::io;
use std::path::PathBuf;

use clap::Args;
use sockspec_engine::kernel::netns::Isolation;
use sockspec_engine::model::exit;
use sockspec_engine::results::RunResults;

use super::isolation_words;
use super::shard::{self, Shard, ShardFile, SHARD_FILE};
use super::summary::{self, About, Row};

#[derive(Args)]
pub struct MergeArgs {
    /// The output folders of every shard of one grading.
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,
    /// Where the joined reports and summaries go.
    #[arg(long, value_name = "DIR", default_value = "grades")]
    out: PathBuf,
}

/// `sockspec merge`: the shards' reports copied into one folder, with one
/// summary of them all.
pub fn merge(args: MergeArgs) -> i32 {
    let mut shards = Vec::new();
    for dir in &args.dirs {
        match ShardFile::read(dir) {
            Ok(s) => shards.push((dir.display().to_string(), s)),
            Err(message) => return crate::usage(&message),
        }
    }
    if let Err(message) = shard::check_complete(&shards) {
        return crate::usage(&message);
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return crate::usage(&format!(
            "cannot make --out {}: {e}; give a folder you can write",
            args.out.display()
        ));
    }
    let first = &shards[0].1;
    let mut rows = Vec::new();
    let mut names = Vec::new();
    let mut timeline = Vec::new();
    for ((_, s), dir) in shards.iter().zip(&args.dirs) {
        for name in &s.submissions {
            let from = dir.join(format!("{name}.json"));
            let bytes = match std::fs::read(&from) {
                Ok(b) => b,
                Err(e) => {
                    return crate::usage(&format!(
                        "cannot read {}: {e}; that shard was not graded to its end: run its \
                         grade again with --resume",
                        from.display()
                    ))
                }
            };
            let report: RunResults = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    return crate::usage(&format!(
                        "{} is not a report sockspec writes: {e}; grade that submission again",
                        from.display()
                    ))
                }
            };
            rows.push(Row::new(name, &report, &first.plan));
            names.push(name.clone());
            let to = args.out.join(format!("{name}.json"));
            if to.canonicalize().ok() != from.canonicalize().ok() {
                if let Err(e) = summary::write_atomically(&to, &bytes) {
                    eprintln!("error: could not write {}: {e}", to.display());
                    return exit::HARNESS_ERROR;
                }
            }
        }
        timeline.extend(s.timeline.iter().cloned());
    }
    names.sort();
    let isolations: Vec<&str> = {
        let mut v: Vec<&str> = shards.iter().map(|(_, s)| s.isolation.as_str()).collect();
        v.sort();
        v.dedup();
        v
    };
    // Read from the shards: the machine merging them may grant another.
    let confined = shards.iter().all(|(_, s)| s.confined);
    let isolation = match isolations.as_slice() {
        [one] => Isolation::named(one).map_or(one.to_string(), |i| isolation_words(i, confined)),
        many => format!(
            "the shards ran with different isolation: {}",
            many.join(", ")
        ),
    };
    let one_at_a_time = shards.iter().find_map(|(_, s)| s.one_at_a_time.clone());
    let about = About {
        suite: &first.suite,
        role: &first.role,
        plan: &first.plan,
        isolation,
        one_at_a_time: one_at_a_time.as_deref(),
        left: 0,
    };
    let merged = ShardFile {
        shard: Shard::WHOLE,
        submissions: names,
        isolation: isolations.join(","),
        confined,
        one_at_a_time: one_at_a_time.clone(),
        timeline,
        ..first.clone()
    };
    let written = summary::csv(&rows)
        .and_then(|csv| summary::write_atomically(&args.out.join("summary.csv"), &csv))
        .and_then(|()| {
            summary::write_atomically(
                &args.out.join("summary.md"),
                summary::markdown(&about, &rows).as_bytes(),
            )
        })
        .and_then(|()| {
            let bytes = serde_json::to_vec_pretty(&merged).map_err(io::Error::other)?;
            summary::write_atomically(&args.out.join(SHARD_FILE), &bytes)
        });
    if let Err(e) = written {
        eprintln!(
            "error: could not write the summaries in {}: {e}",
            args.out.display()
        );
        return exit::HARNESS_ERROR;
    }
    eprintln!(
        "sockspec merge: {} shards, {} submissions in {}: summary.csv, summary.md",
        shards.len(),
        rows.len(),
        args.out.display()
    );
    exit::OK
}
