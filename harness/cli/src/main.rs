//! `sockspec`: run a protocol suite against a server or client, list the
//! checks, print the protocol reference, or run a reference server or
//! client.

mod grade;
mod profile;
mod reference;
mod spec;

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use sockspec_engine::conversations::check::{Check, Role, Suite};
use sockspec_engine::kernel::netns;
use sockspec_engine::kernel::procfs;
use sockspec_engine::model::exit;
use sockspec_engine::model::profile::Profile;
use sockspec_engine::report::{
    GradescopeReporter, JsonReporter, JunitReporter, Reporter, TapReporter, TextReporter,
};
use sockspec_engine::results::{RunError, RunEvent, Summary};
use sockspec_engine::runs::run::{self, RunConfig, ServerPort, TargetSpec};
use sockspec_engine::runs::select::Selection;
use sockspec_engine::targets::fleet::{self, Fleet};
mod suggest;
use sockspec_engine::model::timing::Timing;
use sockspec_engine::model::transport::Transport;
use sockspec_engine::model::verdict::Verdict;
use sockspec_engine::targets::target::Workdir;

#[derive(Parser)]
#[command(
    name = "sockspec",
    version,
    about = "Conformance harness for classic socket protocols",
    long_about = "sockspec drives a server or client of a classic socket protocol (uppercase echo, \
                  remote commands, file upload...) as a black box over loopback, cuts its traffic on \
                  purpose, watches its process, and gives a verdict per check.",
    after_help = "Exit status: 0 no MUST check failed; 1 a MUST check failed; 2 bad usage; \
                  3 the target could not be started or never listened, nothing listens on \
                  --target, or a fixed port is held by another process (named); \
                  4 the harness itself failed, or a check ended in ERROR (a fault of the \
                  harness or the machine, never counted against the program); \
                  130 interrupted.\n\nExamples:\n  \
                  sockspec list\n  \
                  sockspec explain tcp-upper.no-spin\n  \
                  sockspec spec udp-chat\n  \
                  sockspec run tcp-upper --server 'python3 server.py {port}'\n  \
                  sockspec run tcp-upper --client 'python3 client.py {port}'\n  \
                  sockspec run tcp-upper --target 127.0.0.1:9000 --format junit --output report.xml\n  \
                  sockspec grade tcp-upper --submissions class/ --server 'python3 server.py'\n  \
                  sockspec serve tcp-upper --port 9000\n  \
                  sockspec connect cmd-len --port 9000"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List suites and their checks: id, level, one-line description.
    List {
        /// Only this suite.
        suite: Option<String>,
    },
    /// Run a suite's checks against a server or a client.
    Run(Box<RunArgs>),
    /// Print the protocol reference as Markdown, from the suites: what
    /// goes on the wire, the parameters with their defaults, and every
    /// check's id, level and requirement.
    Spec {
        /// Only this suite (every suite, with what they share, otherwise).
        suite: Option<String>,
    },
    /// Explain a check: what it requires, why, the mistake that usually
    /// breaks it and the fix.
    Explain {
        /// The check's id, such as tcp-upper.no-spin (see `sockspec list`).
        id: String,
    },
    /// Print a starting assignment profile for a suite (TOML): every check
    /// at one point, visible and run, every parameter at its default,
    /// commented. Edit it and pass it to `run --profile`.
    Profile {
        /// The suite, such as tcp-upper (see `sockspec list`).
        suite: String,
    },
    /// Grade a class: every subfolder of --submissions through a suite,
    /// side by side, with a report per submission and a summary.
    Grade(Box<grade::GradeArgs>),
    /// Join the outputs of a grading's shards (`grade --shard K/N`) into
    /// one summary.
    Merge(grade::MergeArgs),
    /// Serve a reference implementation, to test a client against.
    #[command(after_help = reference::serve_help())]
    Serve(reference::ServeArgs),
    /// Run a reference client, to test a server against: each line of
    /// standard input a command, each answer printed.
    #[command(after_help = reference::connect_help())]
    Connect(reference::ConnectArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The suite to run (see `sockspec list`).
    suite: String,
    #[command(flatten)]
    target: TargetArgs,
    /// The port written in the program's code: the server listens on it,
    /// or the client connects to it (otherwise the harness picks a free one
    /// and puts it in {port}). `auto` for a server: it is given no port,
    /// and the harness finds the one it listens on.
    #[arg(long, value_name = "PORT|auto", value_parser = parse_port, conflicts_with = "target")]
    port: Option<PortArg>,
    /// Run the program in DIR instead of where sockspec runs; `{scratch}`
    /// runs it in its own scratch directory. Each start gets a fresh
    /// scratch directory either way ($SOCKSPEC_SCRATCH, `{scratch}` in the
    /// command), removed when it ends.
    #[arg(long, value_name = "DIR", conflicts_with = "target")]
    workdir: Option<PathBuf>,
    /// Run only checks whose id matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Skip checks whose id matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    skip: Vec<String>,
    /// An assignment profile (TOML; `sockspec profile SUITE` prints one to
    /// start from): parameters, checks that do not run, what each depends
    /// on, expected misses, retries. `--param` overrides its parameters.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// A check expected to miss, by its id (repeatable): a known deviation
    /// of the target. Its miss does not fail the run; its pass does, so
    /// the list stays true.
    #[arg(long, value_name = "ID")]
    xfail: Vec<String>,
    /// Run a check that missed up to N more times, each on a fresh target:
    /// one that then passes is FLAKY (a race in the program), reported with
    /// its tries and the first miss, and does not fail the run.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(0..=10))]
    retries: Option<u32>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to this file (the text progress still shows).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Seed for generated cuts; a failure prints the seed that reproduces it.
    #[arg(long)]
    seed: Option<u64>,
    /// Multiply every deadline (not the deliberate pauses), for slow targets.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    timeout_scale: f64,
    /// A profile parameter, KEY=VALUE (repeatable): buf=N, quit=LINE.
    #[arg(long, value_name = "KEY=VALUE")]
    param: Vec<String>,
    /// When to colour the text report.
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    color: Colour,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct TargetArgs {
    /// Start this server command; {port} (and $SOCKSPEC_PORT) is its port.
    #[arg(long, value_name = "CMD")]
    server: Option<String>,
    /// Test a server that is already running at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    target: Option<String>,
    /// Start this client command; {port} (and $SOCKSPEC_PORT) is the port
    /// of the harness, which plays the server.
    #[arg(long, value_name = "CMD")]
    client: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Junit,
    /// TAP version 14, one test point per check.
    Tap,
    /// Gradescope's autograder results.json: a test per check with its
    /// points (one each without --profile) and visibility.
    Gradescope,
}

#[derive(Clone, Copy, ValueEnum)]
enum Colour {
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::List { suite } => list(suite.as_deref()),
        Command::Run(args) => {
            // Before any thread exists (the interrupt handler's, the
            // targets' output drains): only a single-threaded process may
            // enter the user namespace that gives an ordinary user a
            // private loopback per check.
            if let Err(refused) = netns::prepare() {
                return ExitCode::from(usage(&refused.to_string()) as u8);
            }
            let code = run_suite(*args);
            procfs::outside::stop();
            code
        }
        Command::Grade(args) => {
            // As for `run`: before any thread exists.
            if let Err(refused) = netns::prepare() {
                return ExitCode::from(usage(&refused.to_string()) as u8);
            }
            let code = grade::grade(*args);
            procfs::outside::stop();
            code
        }
        Command::Merge(args) => grade::merge(args),
        Command::Spec { suite } => print_spec(suite.as_deref()),
        Command::Explain { id } => explain(&id),
        Command::Profile { suite } => match sockspec_suites::find(&suite) {
            Some(s) => {
                print!("{}", profile::starting(&s));
                exit::OK
            }
            None => unknown_suite(&suite),
        },
        Command::Serve(args) => reference::serve(args),
        Command::Connect(args) => reference::connect(args),
    };
    ExitCode::from(code as u8)
}

fn usage(message: &str) -> i32 {
    eprintln!("error: {message}");
    exit::USAGE
}

fn unknown_suite(name: &str) -> i32 {
    let names: Vec<&str> = sockspec_suites::all()
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .to_vec();
    let guess = match suggest::closest(name, &names, 1).first() {
        Some(near) if suggest::distance(name, near) <= 3 => format!("did you mean {near}? "),
        _ => String::new(),
    };
    usage(&format!(
        "no suite named {name:?}; {guess}the suites are: {} (see `sockspec list`)",
        names.join(", ")
    ))
}

fn list(only: Option<&str>) -> i32 {
    let suites = sockspec_suites::all();
    if let Some(name) = only {
        if !suites.iter().any(|s| s.name == name) {
            return unknown_suite(name);
        }
    }
    let mut out = io::stdout().lock();
    let shown: Vec<_> = suites
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name))
        .collect();
    // Ids line up in one column, as wide as the longest shown.
    let width = shown
        .iter()
        .flat_map(|s| s.checks.iter().map(|c| c.id.as_str().len()))
        .max()
        .unwrap_or(0);
    for suite in shown {
        let _ = writeln!(out, "{}: {}", suite.name, suite.summary);
        for role in [Role::Server, Role::Client] {
            let checks: Vec<_> = suite.checks_for(role).collect();
            if checks.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {} checks (--{}):", role.as_str(), role.as_str());
            for c in checks {
                let _ = writeln!(
                    out,
                    "    {:<width$} {:<6} {}",
                    c.id.as_str(),
                    c.level.to_string(),
                    c.summary
                );
            }
        }
        if !suite.params.is_empty() {
            let _ = writeln!(out, "  parameters (--param KEY=VALUE):");
            for p in suite.params {
                let _ = writeln!(out, "    {p}");
            }
        }
    }
    exit::OK
}

fn print_spec(only: Option<&str>) -> i32 {
    let suites = sockspec_suites::all();
    let text = match only {
        None => spec::reference(&suites),
        Some(name) => match suites.iter().find(|s| s.name == name) {
            Some(s) => spec::suite(s),
            None => return unknown_suite(name),
        },
    };
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: could not write the reference: {e}");
            exit::HARNESS_ERROR
        }
    }
}

fn explain(id: &str) -> i32 {
    let suites = sockspec_suites::all();
    let checks: Vec<&Check> = suites.iter().flat_map(|s| s.checks.iter()).collect();
    let Some(check) = checks.iter().find(|c| c.id.as_str() == id) else {
        let names: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        return usage(&format!(
            "no check with id {id:?}; the closest are: {} (see `sockspec list`)",
            suggest::closest(id, &names, 3).join(", ")
        ));
    };
    let e = &check.explain;
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{} ({} check, {}): {}\n\nRequirement: {}\n\nWhy it matters: {}\n\n\
         The mistake that usually breaks it:\n{}\n\nThe fix: {}",
        check.id,
        check.role.as_str(),
        check.level,
        check.summary,
        check.expectation,
        e.why,
        e.mistake
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        e.fix
    );
    exit::OK
}

fn parse_target(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("--target {text:?} is not HOST:PORT; for example --target 127.0.0.1:9000")
        })
}

fn colour_wanted(choice: Colour, terminal: bool) -> bool {
    match choice {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => {
            terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// `sockspec run`: checks the options, builds the profile, chooses the
/// reporters, runs the selected checks and maps the outcome to an exit
/// status. A bad option is a usage error before anything runs.
fn run_suite(args: RunArgs) -> i32 {
    let Some(suite) = sockspec_suites::find(&args.suite) else {
        return unknown_suite(&args.suite);
    };
    if let Err(code) = check_timeout_scale(args.timeout_scale) {
        return code;
    }
    let mut profile = Profile::default();
    let asked = match &args.profile {
        Some(path) => match profile::load(path, &suite, &mut profile) {
            Ok(a) => a,
            Err(e) => return usage(&e),
        },
        None => profile::Asked::default(),
    };
    for p in &args.param {
        let Some((key, value)) = p.split_once('=') else {
            return usage(&format!(
                "--param {p:?} is not KEY=VALUE; for example --param buf=2048"
            ));
        };
        if let Err(e) = profile.set(key, value, suite.params) {
            return usage(&e.to_string());
        }
    }
    let skipped: Vec<String> = args.skip.iter().chain(&asked.skipped).cloned().collect();
    let selection = match Selection::new(&args.only, &skipped) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let target = match target_of(&args, suite.transport) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if let Err(code) = check_selection(&suite, target.role(), &selection) {
        return code;
    }
    if let Some(role) = asked.role.filter(|r| *r != target.role()) {
        return usage(&format!(
            "the profile grades the {} checks of {}, and this run plays its {} \
             (give --{} or change its role)",
            role.as_str(),
            suite.name,
            target.role().as_str(),
            role.as_str()
        ));
    }
    if let Err(code) = check_xfail(&suite, target.role(), &args.xfail) {
        return code;
    }
    // The profile's expected misses of this role, then the command line's.
    let xfail: Vec<String> = asked
        .xfail
        .iter()
        .filter(|id| {
            suite
                .checks_for(target.role())
                .any(|c| c.id.as_str() == *id)
        })
        .chain(&args.xfail)
        .cloned()
        .collect();
    let seed = args.seed.unwrap_or_else(fresh_seed);
    let mut reporters = match reporters(&args) {
        Ok(r) => r,
        Err(code) => return code,
    };

    fleet::install_interrupt_handler();
    let remote = matches!(target, TargetSpec::Remote { .. });
    let config = RunConfig {
        suite: &suite,
        target,
        fleet: Fleet::new(),
        timing: Timing::new(args.timeout_scale),
        profile,
        seed,
        selection,
        expected_to_miss: xfail,
        retries: args.retries.or(asked.retries).unwrap_or(0),
        depends: asked.depends,
        grading: asked.grading,
        confine: None,
    };
    let played = play(config, &mut reporters);
    if fleet::interrupted() {
        return interrupted(played.running, reporters);
    }
    if let Some(e) = played.write_failed {
        eprintln!("error: could not write the report: {e}");
        return exit::HARNESS_ERROR;
    }
    exit_status(played.outcome, remote)
}

/// Deadlines may be stretched or shrunk, within reason.
fn check_timeout_scale(scale: f64) -> Result<(), i32> {
    if !(scale.is_finite() && scale > 0.0 && scale <= 100.0) {
        return Err(usage(
            "--timeout-scale takes a number above 0 and at most 100, such as 2 or 0.5",
        ));
    }
    Ok(())
}

/// A `--port`: a number, or `auto` for a server that chooses its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortArg {
    Fixed(u16),
    Auto,
}

fn parse_port(text: &str) -> Result<PortArg, String> {
    if text == "auto" {
        return Ok(PortArg::Auto);
    }
    text.parse::<u16>()
        .map(PortArg::Fixed)
        .map_err(|_| format!("{text:?} is not a port: give a number from 0 to 65535, or auto"))
}

/// The program under test, from `--server`, `--target` or `--client`, with
/// its port and working directory.
fn target_of(args: &RunArgs, transport: Transport) -> Result<TargetSpec, i32> {
    let workdir = match &args.workdir {
        None => Workdir::Here,
        Some(dir) if dir.as_os_str() == "{scratch}" => Workdir::Scratch,
        Some(dir) if dir.is_dir() => Workdir::Dir(dir.clone()),
        Some(dir) => {
            return Err(usage(&format!(
                "--workdir {}: no such directory; give an existing folder, or '{{scratch}}'",
                dir.display()
            )))
        }
    };
    if let Some(cmd) = &args.target.server {
        if cmd.trim().is_empty() {
            return Err(usage(
                "--server needs a command, such as --server 'python3 server.py {port}'",
            ));
        }
        let port = match args.port {
            None => ServerPort::Free,
            Some(PortArg::Fixed(port)) => ServerPort::Fixed(port),
            Some(PortArg::Auto) if cmd.contains("{port}") => {
                return Err(usage(run::AUTO_WITH_PLACEHOLDER))
            }
            Some(PortArg::Auto) => ServerPort::Auto,
        };
        Ok(TargetSpec::Server {
            command: cmd.clone(),
            port,
            transport,
            workdir,
        })
    } else if let Some(t) = &args.target.target {
        match parse_target(t) {
            Ok(addr) => Ok(TargetSpec::Remote { addr }),
            Err(e) => Err(usage(&e)),
        }
    } else if let Some(cmd) = &args.target.client {
        if cmd.trim().is_empty() {
            return Err(usage(
                "--client needs a command, such as --client 'python3 client.py {port}'",
            ));
        }
        let port = match args.port {
            None => None,
            Some(PortArg::Fixed(port)) => Some(port),
            Some(PortArg::Auto) => {
                return Err(usage(
                    "--port auto is for a server the harness starts: a client is given the \
                     harness's port in {port}, or pass the port written in its code with \
                     --port N",
                ))
            }
        };
        Ok(TargetSpec::Client {
            command: cmd.clone(),
            port,
            transport,
            workdir,
        })
    } else {
        Err(usage(
            "give one of --server CMD, --target HOST:PORT or --client CMD",
        ))
    }
}

/// The suite has checks for the role, every `--only` glob names one of
/// them, and the selection leaves at least one to run.
fn check_selection(suite: &Suite, role: Role, selection: &Selection) -> Result<(), i32> {
    if suite.checks_for(role).next().is_none() {
        return Err(usage(&format!(
            "{} has no {} checks",
            suite.name,
            role.as_str()
        )));
    }
    let ids: Vec<_> = suite.checks.iter().map(|c| c.id).collect();
    if let Some(glob) = selection.unmatched(&ids).first() {
        let names: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        return Err(usage(&format!(
            "--only {glob:?} matches no check of {}; the closest are: {} \
             (see `sockspec list {}`)",
            suite.name,
            suggest::closest(glob, &names, 3).join(", "),
            suite.name
        )));
    }
    if !suite.checks_for(role).any(|c| selection.includes(c.id)) {
        return Err(usage(&format!(
            "--only/--skip leave no {} check of {} to run (see `sockspec list {}`)",
            role.as_str(),
            suite.name,
            suite.name
        )));
    }
    Ok(())
}

/// Every `--xfail` names a check of the suite in this role: a misspelt id
/// would otherwise expect nothing, silently.
fn check_xfail(suite: &Suite, role: Role, xfail: &[String]) -> Result<(), i32> {
    let names: Vec<&str> = suite.checks_for(role).map(|c| c.id.as_str()).collect();
    match xfail.iter().find(|id| !names.contains(&id.as_str())) {
        None => Ok(()),
        Some(id) => Err(usage(&format!(
            "--xfail {id:?} is not a {} check of {}; the closest are: {} \
             (see `sockspec list {}`)",
            role.as_str(),
            suite.name,
            suggest::closest(id, &names, 3).join(", "),
            suite.name
        ))),
    }
}

/// A seed for the generated cuts when `--seed` gives none: from the clock
/// and the process id, short enough to type back.
fn fresh_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000_000
}

/// Where each output goes: the chosen format to `--output` or stdout; the
/// text progress to stdout, or to stderr when stdout carries JSON/JUnit,
/// and none when the text report itself goes to `--output`.
fn reporters(args: &RunArgs) -> Result<Vec<Box<dyn Reporter>>, i32> {
    let file = match &args.output {
        Some(path) => match File::create(path) {
            Ok(f) => Some(io::BufWriter::new(f)),
            Err(e) => {
                return Err(usage(&format!(
                    "cannot write --output {}: {e}",
                    path.display()
                )))
            }
        },
        None => None,
    };
    let to_file = file.is_some();
    let machine = move || -> Box<dyn Write> {
        match file {
            Some(f) => Box::new(f),
            None => Box::new(io::stdout()),
        }
    };
    let mut reporters: Vec<Box<dyn Reporter>> = Vec::new();
    let progress = match args.format {
        Format::Text if to_file => {
            reporters.push(Box::new(TextReporter::new(machine(), false, false)));
            Progress::None
        }
        Format::Text => Progress::Stdout,
        Format::Json => {
            reporters.push(Box::new(JsonReporter::new(machine())));
            Progress::beside_report(to_file)
        }
        Format::Junit => {
            reporters.push(Box::new(JunitReporter::new(machine())));
            Progress::beside_report(to_file)
        }
        Format::Tap => {
            reporters.push(Box::new(TapReporter::new(machine())));
            Progress::beside_report(to_file)
        }
        Format::Gradescope => {
            reporters.push(Box::new(GradescopeReporter::new(machine())));
            Progress::beside_report(to_file)
        }
    };
    match progress {
        Progress::None => {}
        Progress::Stderr => {
            let terminal = io::stderr().is_terminal();
            let colour = colour_wanted(args.color, terminal);
            reporters.push(Box::new(TextReporter::new(io::stderr(), colour, terminal)));
        }
        Progress::Stdout => {
            let terminal = io::stdout().is_terminal();
            let colour = colour_wanted(args.color, terminal);
            reporters.push(Box::new(TextReporter::new(io::stdout(), colour, terminal)));
        }
    }
    Ok(reporters)
}

/// Where the text progress of a run goes.
enum Progress {
    None,
    Stdout,
    Stderr,
}

impl Progress {
    /// Beside a JSON or JUnit report: on stdout when the report goes to a
    /// file, on stderr when the report itself is on stdout.
    fn beside_report(report_to_file: bool) -> Progress {
        if report_to_file {
            Progress::Stdout
        } else {
            Progress::Stderr
        }
    }
}

/// What a run ended with.
struct Played {
    outcome: Result<Summary, RunError>,
    /// The first report that could not be written.
    write_failed: Option<io::Error>,
    /// The check under way when the run ended, for an interrupt to name.
    running: Option<String>,
}

/// Runs the checks, each event to every reporter; the run's targets are
/// ended when it returns.
fn play(config: RunConfig, reporters: &mut [Box<dyn Reporter>]) -> Played {
    let mut write_failed = None;
    let mut running: Option<String> = None;
    let outcome = run::run(&config, &mut |event: &RunEvent| {
        // What an interrupt causes is not the target's doing: not reported.
        if fleet::interrupted() {
            return;
        }
        match event {
            RunEvent::CheckStarted { id, .. } => running = Some(id.to_string()),
            RunEvent::CheckFinished { .. } => running = None,
            _ => {}
        }
        for r in reporters.iter_mut() {
            if let Err(e) = r.report(event) {
                write_failed.get_or_insert(e);
            }
        }
    });
    drop(config);
    Played {
        outcome,
        write_failed,
        running,
    }
}

/// After Ctrl-C or SIGTERM: every target ended and reaped, the reports
/// closed, and a line that says during which check.
fn interrupted(running: Option<String>, reporters: Vec<Box<dyn Reporter>>) -> i32 {
    // The handler ends every target; the bound only guards against a
    // kill that never returns.
    fleet::await_interrupt_handled(Duration::from_secs(10));
    procfs::outside::stop();
    // A process killed as its parent died was re-parented to the
    // harness: exiting before reaping it would leave it to init.
    fleet::reap_children(Timing::REAP);
    drop(reporters);
    let during = running
        .map(|id| format!(" during {id}"))
        .unwrap_or_default();
    eprintln!("\nsockspec: interrupted{during}; every target process was ended");
    exit::INTERRUPTED
}

/// The exit status of a run that went to its end or stopped early, with
/// the reason on stderr when it stopped.
fn exit_status(outcome: Result<Summary, RunError>, remote: bool) -> i32 {
    match outcome {
        Ok(summary) if summary.checks_fail_the_run() => exit::CHECK_FAILED,
        Ok(summary) if summary.count(Verdict::Error) > 0 => exit::HARNESS_ERROR,
        Ok(_) => exit::OK,
        Err(RunError::TargetFailed(msg)) if remote => {
            eprintln!("error: {msg}");
            exit::TARGET_FAILED
        }
        Err(RunError::TargetFailed(msg)) => {
            eprintln!("error: the target could not be started: {msg}");
            exit::TARGET_FAILED
        }
        Err(RunError::Harness(msg)) => {
            eprintln!("error: {msg}");
            exit::HARNESS_ERROR
        }
    }
}
