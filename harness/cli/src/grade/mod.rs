//! `sockspec grade`: a whole class's submissions through one suite, side by
//! side, with a JSON report per submission, `summary.csv`, `summary.md` and
//! `shard.json` in the output folder, all rewritten as each result arrives;
//! and `sockspec merge`, which joins the outputs of a grading's shards.

mod batch;
mod merge;
mod progress;
mod shard;
mod summary;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use sockspec_engine::conversations::check::{Role, Suite};
use sockspec_engine::kernel::confine::{self, Confinement};
use sockspec_engine::kernel::netns::{self, Isolation};
use sockspec_engine::kernel::procfs;
use sockspec_engine::model::exit;
use sockspec_engine::model::profile::Profile;
use sockspec_engine::model::timing::Timing;
use sockspec_engine::results::{Grading, RunResults, Visibility};
use sockspec_engine::runs::run::{self as engine_run, RunConfig, ServerPort, TargetSpec};
use sockspec_engine::runs::select::Selection;
use sockspec_engine::targets::fleet::{self, Fleet};
use sockspec_engine::targets::target::Workdir;

use crate::{profile, PortArg};
use batch::{Assignment, Done, Event};
use shard::{Graded, Planned, Shard, ShardFile, SHARD_FILE};
use summary::{About, Row, Status};

pub use merge::{merge, MergeArgs};
use progress::Progress;

/// How many tries a missed check gets by default when grading: a race in
/// a submission comes out FLAKY and scores the profile's share, instead of
/// one run's luck.
const GRADE_RETRIES: u32 = 2;

/// Submissions run at once per core by default: most of a check's time is
/// spent waiting on the target, not computing.
const JOBS_PER_CORE: usize = 4;

#[derive(Args)]
#[command(
    after_help = "Each subfolder of --submissions (hidden ones aside) is one submission, \
    graded by name order; its command runs in it, with {submission} its absolute path and \
    {port} its port. A server command without {port} is given none: the harness finds the \
    port each server binds (--port auto). Where the machine grants namespaces, each \
    submission sees its own folder and the system, not the other submissions, the profile \
    or --out. Without a profile every check is worth one point.\n\n\
    Outputs in --out: SUBMISSION.json (the report `run --format json` writes), summary.csv, \
    summary.md (the checks most of the class missed first) and shard.json.\n\n\
    --shard K/N grades the submissions at index i (from 0, by name) with i mod N = K - 1; \
    without it, GitLab's CI_NODE_INDEX/CI_NODE_TOTAL or a Kubernetes Indexed Job's \
    JOB_COMPLETION_INDEX (with --shard-total) choose it. `sockspec merge` joins the shards.\n\n\
    Exit status: 0 every submission graded, whatever the scores; 2 bad usage; 4 the harness \
    or the machine kept a submission from being graded (named; --resume grades it again); \
    130 interrupted (what was graded stays in --out).\n\nExample:\n  \
    sockspec grade tcp-upper --submissions fixtures/course/submissions \\\n    \
    --server 'python3 server.py' --profile fixtures/course/profile.toml"
)]
pub struct GradeArgs {
    /// The suite to grade with (see `sockspec list`).
    suite: String,
    /// The folder whose subfolders are the submissions.
    #[arg(long, value_name = "DIR")]
    submissions: PathBuf,
    #[command(flatten)]
    target: GradeTarget,
    /// An assignment profile (TOML): points, visibility, checks that do not
    /// run, dependencies, parameters, retries.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// How many submissions run at once [default: 4 x the cores].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Where the reports and summaries go.
    #[arg(long, value_name = "DIR", default_value = "grades")]
    out: PathBuf,
    /// The port the assignment fixes: every submission gets it as {port}
    /// and the harness expects it there. `auto`, the default for a server
    /// command without {port}: each server is given no port, and the
    /// harness finds the one it binds (the one written in its code). Where
    /// the machine grants no private network namespace, submissions on a
    /// fixed or written port run one after another.
    #[arg(long, value_name = "PORT|auto", value_parser = crate::parse_port)]
    port: Option<PortArg>,
    /// Skip submissions whose report is already in --out (and stands:
    /// a report of the harness's own failure is graded again).
    #[arg(long)]
    resume: bool,
    /// Grade shard K of N (from 1): the submissions at index i (from 0,
    /// sorted by name) with i mod N = K - 1.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// The number of shards, with a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX (its completions).
    #[arg(long, value_name = "N")]
    shard_total: Option<usize>,
    /// A profile parameter, KEY=VALUE (repeatable); overrides the profile.
    #[arg(long, value_name = "KEY=VALUE")]
    param: Vec<String>,
    /// Run a missed check up to N more times, each on a fresh target: one
    /// that then passes is FLAKY [default: the profile's, else 2].
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: Option<u32>,
    /// Multiply every deadline (not the deliberate pauses), for slow targets.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    timeout_scale: f64,
    /// Seed for generated cuts, the same for every submission.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct GradeTarget {
    /// Start each submission's server with this command, in its folder.
    #[arg(long, value_name = "CMD")]
    server: Option<String>,
    /// Start each submission's client with this command, in its folder.
    #[arg(long, value_name = "CMD")]
    client: Option<String>,
}

/// The port each submission's program is given or found on.
#[derive(Clone, Copy)]
enum PlanPort {
    Server(ServerPort),
    /// The port a client connects to: fixed, or a free one in {port}.
    Client(Option<u16>),
}

/// `--port` for the role: a server command without {port} has its port
/// found (`auto`) unless one is fixed; a client connects to a fixed port
/// or to the one in {port}.
fn plan_port(role: Role, command: &str, asked: Option<PortArg>) -> Result<PlanPort, String> {
    let placeholder = command.contains("{port}");
    Ok(match (role, asked) {
        (Role::Server, Some(PortArg::Fixed(n))) => PlanPort::Server(ServerPort::Fixed(n)),
        (Role::Server, Some(PortArg::Auto)) if placeholder => {
            return Err(engine_run::AUTO_WITH_PLACEHOLDER.to_string())
        }
        (Role::Server, Some(PortArg::Auto)) => PlanPort::Server(ServerPort::Auto),
        (Role::Server, None) if placeholder => PlanPort::Server(ServerPort::Free),
        (Role::Server, None) => PlanPort::Server(ServerPort::Auto),
        (Role::Client, Some(PortArg::Fixed(n))) => PlanPort::Client(Some(n)),
        (Role::Client, Some(PortArg::Auto)) => {
            return Err(
                "--port auto finds the port a server binds; a client is given \
                        the harness's port: give --port N or {port} in its command"
                    .to_string(),
            )
        }
        (Role::Client, None) => PlanPort::Client(None),
    })
}

/// What every submission is graded with.
struct Plan<'a> {
    suite: &'a Suite,
    role: Role,
    command: String,
    port: PlanPort,
    profile: Profile,
    skipped: Vec<String>,
    xfail: Vec<String>,
    retries: u32,
    depends: BTreeMap<String, Vec<String>>,
    grading: BTreeMap<String, Grading>,
    checks: Vec<Planned>,
    timing: Timing,
    /// Whether each submission is confined, and what it must not see.
    confine: bool,
    hidden: Vec<PathBuf>,
    seed: u64,
}

/// `sockspec grade`.
pub fn grade(args: GradeArgs) -> i32 {
    let Some(suite) = sockspec_suites::find(&args.suite) else {
        return crate::unknown_suite(&args.suite);
    };
    if let Err(code) = crate::check_timeout_scale(args.timeout_scale) {
        return code;
    }
    let plan = match plan(&args, &suite) {
        Ok(p) => p,
        Err(message) => return crate::usage(&message),
    };
    let shard = match Shard::chosen(args.shard.as_deref(), args.shard_total, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }) {
        Ok(s) => s,
        Err(message) => return crate::usage(&message),
    };
    let all = match submissions(&args.submissions, &args.out) {
        Ok(names) => names,
        Err(message) => return crate::usage(&message),
    };
    let mine = shard.share(&all);
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        return crate::usage(&format!(
            "cannot make --out {}: {e}; give a folder you can write",
            args.out.display()
        ));
    }
    let root = match args.submissions.canonicalize() {
        Ok(r) => r,
        Err(e) => {
            return crate::usage(&format!(
                "--submissions {}: {e}",
                args.submissions.display()
            ))
        }
    };

    // The rows of submissions graded before (--resume), then the others.
    let mut rows: Vec<Row> = Vec::new();
    let mut to_grade: Vec<String> = Vec::new();
    for name in &mine {
        match args
            .resume
            .then(|| earlier_report(&args.out, name))
            .flatten()
        {
            Some(report) => rows.push(Row::new(name, &report, &plan.checks)),
            None => to_grade.push(name.clone()),
        }
    }

    // The port choice: `--port` fixes it for every submission; otherwise
    // the harness gives each check a free one through {port}. A port read
    // from the kernel once the server bound it (`--port auto`) belongs
    // here, as the default for `--server`.
    let shared_port = match plan.port {
        PlanPort::Server(ServerPort::Fixed(n)) | PlanPort::Client(Some(n)) => {
            Some(format!("they share the fixed port {n}"))
        }
        PlanPort::Server(ServerPort::Auto) => {
            Some("each binds the port written in its code, often the same one,".to_string())
        }
        PlanPort::Server(ServerPort::Free) | PlanPort::Client(None) => None,
    };
    let one_at_a_time = shared_port
        .filter(|_| netns::in_effect() == Isolation::Shared)
        .map(|port| {
            format!(
                "{port} and {}, so two cannot use it at once",
                if asked_shared() {
                    "every check uses the machine's loopback (SOCKSPEC_ISOLATION=shared)"
                } else {
                    "this machine grants no private network namespace"
                }
            )
        });
    let jobs = match (&one_at_a_time, args.jobs) {
        (Some(_), _) => 1,
        (None, Some(j)) => j as usize,
        (None, None) => JOBS_PER_CORE * std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if let Some(why) = &one_at_a_time {
        eprintln!("sockspec grade: submissions run one after another: {why}");
    }

    let mut out = Outputs {
        dir: args.out.clone(),
        suite: suite.name,
        role: plan.role,
        shard,
        covered: mine.clone(),
        plan: plan.checks.clone(),
        one_at_a_time: one_at_a_time.clone(),
        timeline: Vec::new(),
        rows,
        left: to_grade.len(),
        write_failed: None,
    };
    out.write_summaries();

    fleet::install_interrupt_handler();
    let resumed = mine.len() - to_grade.len();
    let mut progress = Progress::new(to_grade.len(), resumed);
    let config_for = |name: &str| config(&plan, &root.join(name));
    batch::run_all(
        to_grade,
        jobs,
        Assignment {
            suite: suite.name,
            role: plan.role,
        },
        &config_for,
        &mut |event| match event {
            Event::Started { name } => progress.started(name),
            Event::Requeued { name } => progress.requeued(name),
            Event::Finished(done) => {
                if let Some(row) = out.add(*done) {
                    progress.finished(&row);
                }
            }
        },
    );
    progress.end();

    if fleet::interrupted() {
        fleet::await_interrupt_handled(Duration::from_secs(10));
        procfs::outside::stop();
        fleet::reap_children(Timing::REAP);
        out.write_summaries();
        eprintln!(
            "\nsockspec: interrupted; every target process was ended. {} of {} submissions \
             graded are in {} (--resume grades the rest)",
            out.rows.len(),
            mine.len(),
            args.out.display()
        );
        return exit::INTERRUPTED;
    }
    out.write_summaries();
    if let Some(e) = &out.write_failed {
        eprintln!(
            "error: could not write the outputs in {}: {e}",
            args.out.display()
        );
        return exit::HARNESS_ERROR;
    }
    let not_graded: Vec<String> = out
        .rows
        .iter()
        .filter(|r| !r.status.stands())
        .map(|r| format!("{} ({})", r.submission, r.status.as_str()))
        .collect();
    eprintln!(
        "sockspec grade: {} submission{} in {}: summary.csv, summary.md",
        out.rows.len(),
        if out.rows.len() == 1 { "" } else { "s" },
        args.out.display()
    );
    if !not_graded.is_empty() {
        eprintln!(
            "error: not graded, by no fault of theirs: {}; see their reports, then run the \
             same command with --resume to grade them again",
            not_graded.join(", ")
        );
        return exit::HARNESS_ERROR;
    }
    exit::OK
}

/// The profile, parameters and options, checked against the suite.
fn plan<'a>(args: &GradeArgs, suite: &'a Suite) -> Result<Plan<'a>, String> {
    let (command, role) = match (&args.target.server, &args.target.client) {
        (Some(cmd), _) => (cmd, Role::Server),
        (None, Some(cmd)) => (cmd, Role::Client),
        (None, None) => return Err("give --server CMD or --client CMD".into()),
    };
    if command.trim().is_empty() {
        return Err(format!(
            "--{} needs a command, such as --{} 'python3 {}.py {{port}}'",
            role.as_str(),
            role.as_str(),
            role.as_str()
        ));
    }
    if suite.checks_for(role).next().is_none() {
        return Err(format!("{} has no {} checks", suite.name, role.as_str()));
    }
    let mut params = Profile::default();
    let asked = match &args.profile {
        Some(path) => profile::load(path, suite, &mut params)?,
        None => profile::Asked::default(),
    };
    if let Some(r) = asked.role.filter(|r| *r != role) {
        return Err(format!(
            "the profile grades the {} checks of {}, and this grading starts each \
             submission's {} (give --{} or change its role)",
            r.as_str(),
            suite.name,
            role.as_str(),
            r.as_str()
        ));
    }
    for p in &args.param {
        let Some((key, value)) = p.split_once('=') else {
            return Err(format!(
                "--param {p:?} is not KEY=VALUE; for example --param buf=2048"
            ));
        };
        params
            .set(key, value, suite.params)
            .map_err(|e| e.to_string())?;
    }
    let selection = Selection::new(&[], &asked.skipped)?;
    let mut grading = asked.grading.clone();
    let mut checks = Vec::new();
    for c in suite.checks_for(role).filter(|c| selection.includes(c.id)) {
        // A check the profile runs without giving its points is worth one.
        let g = grading.entry(c.id.as_str().to_string()).or_insert(Grading {
            points: 1.0,
            visibility: Visibility::Visible,
            flaky: asked.flaky,
        });
        checks.push(Planned {
            id: c.id.as_str().to_string(),
            points: g.points,
        });
    }
    if checks.is_empty() {
        return Err(format!(
            "the profile runs no {} check of {}: set run = true on one",
            role.as_str(),
            suite.name
        ));
    }
    let xfail = asked
        .xfail
        .iter()
        .filter(|id| suite.checks_for(role).any(|c| c.id.as_str() == *id))
        .cloned()
        .collect();
    Ok(Plan {
        suite,
        role,
        command: command.clone(),
        port: plan_port(role, command, args.port)?,
        profile: params,
        skipped: asked.skipped,
        xfail,
        retries: args.retries.or(asked.retries).unwrap_or(GRADE_RETRIES),
        depends: asked.depends,
        grading,
        checks,
        timing: Timing::new(args.timeout_scale),
        seed: args.seed.unwrap_or_else(crate::fresh_seed),
        confine: confine::can_confine(),
        hidden: std::iter::once(args.submissions.clone())
            .chain(args.profile.clone())
            .chain(std::iter::once(args.out.clone()))
            .collect(),
    })
}

/// The run of one submission, in its folder.
fn config<'a>(plan: &Plan<'a>, folder: &Path) -> RunConfig<'a> {
    let command = plan
        .command
        .replace("{submission}", &shell_word(&folder.to_string_lossy()));
    let workdir = Workdir::Dir(folder.to_path_buf());
    let transport = plan.suite.transport;
    let target = match plan.role {
        Role::Server => TargetSpec::Server {
            command,
            port: match plan.port {
                PlanPort::Server(p) => p,
                PlanPort::Client(_) => ServerPort::Free,
            },
            transport,
            workdir,
        },
        Role::Client => TargetSpec::Client {
            command,
            port: match plan.port {
                PlanPort::Client(p) => p,
                PlanPort::Server(_) => None,
            },
            transport,
            workdir,
        },
    };
    // Untrusted code sees its own folder, the system and its scratch
    // directory: not the other submissions, the profile with its hidden
    // checks, or the reports.
    let confine = plan.confine.then(|| Confinement {
        show: folder.to_path_buf(),
        hide: plan.hidden.clone(),
    });
    RunConfig {
        suite: plan.suite,
        target,
        fleet: Fleet::new(),
        timing: plan.timing,
        profile: plan.profile.clone(),
        seed: plan.seed,
        selection: Selection::new(&[], &plan.skipped).unwrap_or_default(),
        expected_to_miss: plan.xfail.clone(),
        retries: plan.retries,
        depends: plan.depends.clone(),
        grading: plan.grading.clone(),
        confine,
    }
}

/// A path as one word of a shell command: as it is when it holds nothing
/// the shell reads, single-quoted otherwise.
fn shell_word(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c));
    if plain && !text.is_empty() {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The submissions in `dir`: its subfolders, hidden ones and the output
/// folder aside, sorted by name.
fn submissions(dir: &Path, out: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "--submissions {}: {e}; give the folder whose subfolders are the submissions",
            dir.display()
        )
    })?;
    let out = out.canonicalize().ok();
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || out.is_some() && path.canonicalize().ok() == out {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(format!(
                "the folder {} has a name that is not UTF-8: rename it",
                path.display()
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        if name == "shard" || name == "summary" {
            return Err(format!(
                "a submission named {name:?} would share a name with the grading's own \
                 {name}.* files: rename the folder {}",
                path.display()
            ));
        }
        names.push(name);
    }
    names.sort();
    if names.is_empty() {
        return Err(format!(
            "--submissions {} has no subfolder: each submission is a folder of its own in it",
            dir.display()
        ));
    }
    Ok(names)
}

/// A submission's report from an earlier grading, when it stands.
fn earlier_report(out: &Path, name: &str) -> Option<RunResults> {
    let text = std::fs::read(out.join(format!("{name}.json"))).ok()?;
    let report: RunResults = serde_json::from_slice(&text).ok()?;
    Status::of(&report).stands().then_some(report)
}

/// One sentence on the isolation the machine granted.
fn isolation_words(isolation: Isolation, confined: bool) -> String {
    let network = network_words(isolation);
    if confined {
        format!(
            "{network}; each submission saw only its own folder, the system and its scratch \
             directory, not the other submissions, the profile or the reports"
        )
    } else {
        format!("{network}; submissions were not confined: each could read the others' folders")
    }
}

fn network_words(isolation: Isolation) -> String {
    match isolation {
        Isolation::Namespace => "namespace: every check had a private loopback (a network \
                                 namespace of its own), so submissions ran side by side, even \
                                 on one fixed port"
            .into(),
        Isolation::UserNamespace => "user-namespace: every check had a private loopback (a \
                                     network namespace inside the harness's user namespace), \
                                     so submissions ran side by side, even on one fixed port"
            .into(),
        Isolation::Shared if asked_shared() => format!(
            "shared: {}=shared asked for the machine's loopback, so every check used it",
            netns::ISOLATION_VAR
        ),
        Isolation::Shared => "shared: this machine grants no private network namespace, so \
                              every check used the machine's loopback"
            .into(),
    }
}

/// Whether the shared loopback was asked for, not forced by the machine.
fn asked_shared() -> bool {
    std::env::var(netns::ISOLATION_VAR).is_ok_and(|v| v == "shared")
}

/// The output folder, kept up to date as results arrive.
struct Outputs<'a> {
    dir: PathBuf,
    suite: &'a str,
    role: Role,
    shard: Shard,
    covered: Vec<String>,
    plan: Vec<Planned>,
    one_at_a_time: Option<String>,
    timeline: Vec<Graded>,
    rows: Vec<Row>,
    left: usize,
    write_failed: Option<io::Error>,
}

impl Outputs<'_> {
    /// Writes a finished submission's report and the summaries with it.
    fn add(&mut self, done: Done) -> Option<Row> {
        let (bytes, results) = done.report?;
        let row = Row::new(&done.name, &results, &self.plan);
        self.keep(summary::write_atomically(
            &self.dir.join(format!("{}.json", done.name)),
            &bytes,
        ));
        self.timeline.push(Graded {
            submission: done.name.clone(),
            status: row.status.as_str().to_string(),
            started_ms: done.started_ms,
            finished_ms: done.finished_ms,
            requeued: done.requeued,
        });
        self.rows.push(row.clone());
        self.left = self.left.saturating_sub(1);
        self.write_summaries();
        Some(row)
    }

    fn keep(&mut self, written: io::Result<()>) {
        if let Err(e) = written {
            self.write_failed.get_or_insert(e);
        }
    }

    /// Rewrites summary.csv, summary.md and shard.json from the rows so far.
    fn write_summaries(&mut self) {
        let isolation = netns::in_effect();
        let about = About {
            suite: self.suite,
            role: self.role.as_str(),
            plan: &self.plan,
            isolation: isolation_words(isolation, confine::can_confine()),
            one_at_a_time: self.one_at_a_time.as_deref(),
            left: self.left,
        };
        let md = summary::markdown(&about, &self.rows);
        let written = summary::csv(&self.rows)
            .and_then(|csv| summary::write_atomically(&self.dir.join("summary.csv"), &csv))
            .and_then(|()| summary::write_atomically(&self.dir.join("summary.md"), md.as_bytes()));
        self.keep(written);
        let file = ShardFile {
            suite: self.suite.to_string(),
            role: self.role.as_str().to_string(),
            shard: self.shard,
            submissions: self.covered.clone(),
            plan: self.plan.clone(),
            isolation: isolation.as_str().to_string(),
            confined: confine::can_confine(),
            one_at_a_time: self.one_at_a_time.clone(),
            timeline: self.timeline.clone(),
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(io::Error::other)
            .and_then(|bytes| summary::write_atomically(&self.dir.join(SHARD_FILE), &bytes));
        self.keep(written);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submission_s_path_is_one_word_of_the_command() {
        assert_eq!(shell_word("/srv/class/alice_1"), "/srv/class/alice_1");
        assert_eq!(
            shell_word("/srv/my class/o'brien"),
            "'/srv/my class/o'\\''brien'"
        );
    }

    #[test]
    fn submissions_are_the_visible_subfolders_by_name_without_the_output_folder() {
        let class = tempfile::tempdir().unwrap();
        for dir in ["zoe", "adam", ".git", "grades"] {
            std::fs::create_dir(class.path().join(dir)).unwrap();
        }
        std::fs::write(class.path().join("notes.txt"), "not a submission").unwrap();
        let names = submissions(class.path(), &class.path().join("grades")).unwrap();
        assert_eq!(names, ["adam", "zoe"]);
        let empty = tempfile::tempdir().unwrap();
        let e = submissions(empty.path(), Path::new("grades")).unwrap_err();
        assert!(e.contains("each submission is a folder of its own"), "{e}");
    }
}
