//! Runs a suite's checks against a target, one verdict per check, and
//! streams events to the reporters.
//!
//! Each check gets a target of its own: a server the harness launches is
//! started afresh before every check (on a new free port unless the user
//! fixed one) and ended after it, and a client under test is launched per
//! check against a fresh listener. A check that crashes or wedges the target
//! therefore costs that check alone: one root cause, one failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::conversations::check::{Body, Check, Role, Suite};
use crate::conversations::conversation::Conversation;
use crate::conversations::session::{At, Miss, Outcome, Peer, Session};
use crate::conversations::steps::{ProcessStep, Step};
use crate::judge::body::GivenFile;
use crate::kernel::confine::Confinement;
use crate::kernel::loopback;
use crate::kernel::net;
use crate::kernel::netns;
use crate::kernel::ports;
use crate::model::hint::{self, Evidence, Language};
use crate::model::level::Level;
use crate::model::profile::Profile;
use crate::model::timing::Timing;
use crate::model::transport::Transport;
use crate::model::verdict::Verdict;
use crate::results::{
    CheckResult, Grading, Missed, NotRun, RunError, RunEvent, RunInfo, StepRef, Summary, Try, XFail,
};
use crate::runs::generated::{self, Ran};
use crate::runs::select::Selection;
use crate::targets::fleet::{self, Fleet};
use crate::targets::launch::{Blame, Launched, StartError};
use crate::targets::target::{describe_exit, Launch, Workdir};

/// The port of a server the harness starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServerPort {
    /// A free port the harness picks for each start, given in `{port}`
    /// and `$SOCKSPEC_PORT`.
    #[default]
    Free,
    /// The port written in the server's code, given in `{port}` too.
    Fixed(u16),
    /// The server binds a port of its own choosing, given nothing: the
    /// harness finds it from the kernel (the socket its processes hold)
    /// at each start. With a private loopback per check, servers that
    /// write the same port in their code run at once.
    Auto,
}

/// What the checks run against. A program the harness starts talks over
/// `transport` (the suite's) and runs in `workdir`.
#[derive(Clone, Debug)]
pub enum TargetSpec {
    /// A server the harness starts with a shell command, on `port`.
    Server {
        command: String,
        port: ServerPort,
        transport: Transport,
        workdir: Workdir,
    },
    /// A server already running.
    Remote { addr: SocketAddr },
    /// A client the harness starts; it connects to the harness, on `port`
    /// when the client's port is written in its code.
    Client {
        command: String,
        port: Option<u16>,
        transport: Transport,
        workdir: Workdir,
    },
}

impl TargetSpec {
    pub fn role(&self) -> Role {
        match self {
            TargetSpec::Client { .. } => Role::Client,
            _ => Role::Server,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TargetSpec::Server { command, .. } => command.clone(),
            TargetSpec::Remote { addr } => addr.to_string(),
            TargetSpec::Client { command, .. } => command.clone(),
        }
    }
}

/// Everything a run needs.
pub struct RunConfig<'a> {
    pub suite: &'a Suite,
    pub target: TargetSpec,
    /// The run's targets: every process it starts, and nothing else, is
    /// ended by it.
    pub fleet: Fleet,
    pub timing: Timing,
    pub profile: Profile,
    pub seed: u64,
    pub selection: Selection,
    /// Ids of checks expected to miss (`--xfail`): known deviations of
    /// the target.
    pub expected_to_miss: Vec<String>,
    /// How many more times a check that missed is run, each on a fresh
    /// target (`--retries`): one that then passes is flaky.
    pub retries: u32,
    /// For a check id, the checks it depends on (an assignment profile's
    /// `depends`), each run before it: when one misses (FAIL, WARN, ERROR
    /// or SKIP), the check is skipped with the reason.
    pub depends: BTreeMap<String, Vec<String>>,
    /// For a check id, its worth in an assignment (a profile's points and
    /// visibility), carried into its result for graders.
    pub grading: BTreeMap<String, Grading>,
    /// What every target the run starts is kept from seeing of the files
    /// (a grader's other submissions and profile), where the machine grants
    /// a namespace ([`crate::kernel::confine::can_confine`]; each start
    /// says whether it was, [`crate::targets::target::Process::confined`]).
    pub confine: Option<Confinement>,
}

/// Runs every selected check of the config's role, in suite order. A run
/// that cannot go on still ends with [`RunEvent::RunFinished`], carrying the
/// error, so every report is complete.
pub fn run(config: &RunConfig, sink: &mut dyn FnMut(&RunEvent)) -> Result<Summary, RunError> {
    let role = config.target.role();
    let checks: Vec<&Check> = config
        .suite
        .checks_for(role)
        .filter(|c| config.selection.includes(c.id))
        .collect();
    let info = RunInfo {
        suite: config.suite.name.to_string(),
        role,
        target: config.target.describe(),
        seed: config.seed,
        // A server the harness did not start is on the machine's loopback.
        isolation: match config.target {
            TargetSpec::Remote { .. } => netns::Isolation::Shared,
            _ => netns::in_force(),
        },
    };
    sink(&RunEvent::RunStarted {
        info: &info,
        total: checks.len(),
    });
    let started = Instant::now();
    let mut summary = Summary {
        total: checks.len(),
        ..Summary::default()
    };
    let outcome = run_checks(config, &checks, &mut summary, sink);
    // Whatever a check left running (an escaped daemon, say) ends with the
    // run; other runs' targets and the harness's other processes stay.
    config.fleet.end_all();
    summary.duration = started.elapsed();
    summary.peak_rss_kib = peak_rss_kib();
    // Every check that finished was counted, in order: the rest were not
    // reached.
    let not_reached: Vec<CheckResult> = checks[summary.counts.sum().min(checks.len())..]
        .iter()
        .map(|check| CheckResult {
            summary: check.summary.into(),
            expectation: check.expectation.into(),
            grading: config.grading.get(check.id.as_str()).copied(),
            ..CheckResult::new(check.id.as_str(), check.level, Verdict::Skip)
        })
        .collect();
    sink(&RunEvent::RunFinished {
        info: &info,
        summary: &summary,
        error: outcome.as_ref().err(),
        not_reached: &not_reached,
    });
    outcome.map(|()| summary)
}

fn run_checks(
    config: &RunConfig,
    checks: &[&Check],
    summary: &mut Summary,
    sink: &mut dyn FnMut(&RunEvent),
) -> Result<(), RunError> {
    preflight(config)?;
    let mut first = true;
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    for (index, check) in checks.iter().enumerate() {
        sink(&RunEvent::CheckStarted {
            index,
            total: checks.len(),
            id: check.id.as_str(),
        });
        let missed_dependency = config.depends.get(check.id.as_str()).and_then(|on| {
            on.iter().find_map(|id| {
                verdicts
                    .get(id.as_str())
                    .filter(|v| !matches!(v, Verdict::Pass | Verdict::Info))
                    .map(|v| (id.clone(), *v))
            })
        });
        if let Some((on, verdict)) = missed_dependency {
            let result = CheckResult {
                summary: check.summary.into(),
                expectation: check.expectation.into(),
                not_run: Some(NotRun::DependencyMissed { on, verdict }),
                grading: config.grading.get(check.id.as_str()).copied(),
                ..CheckResult::new(check.id.as_str(), check.level, Verdict::Skip)
            };
            verdicts.insert(check.id.as_str().to_string(), result.verdict);
            summary.counts.add(result.verdict);
            sink(&RunEvent::CheckFinished {
                index,
                total: checks.len(),
                result: &result,
            });
            continue;
        }
        let mut result = run_check(config, check, first)?;
        first = false;
        let expected_to_miss = config
            .expected_to_miss
            .iter()
            .any(|id| id == check.id.as_str());
        // A known deviation is not run again: its miss is the expected one.
        let retries = if expected_to_miss {
            0
        } else {
            config.retries as usize
        };
        let mut earlier = Vec::new();
        while result.verdict.is_miss() && earlier.len() < retries {
            earlier.push(Try {
                verdict: result.verdict,
                duration: result.duration,
                misses: std::mem::take(&mut result.misses),
            });
            result = run_check(config, check, false)?;
        }
        result.earlier_tries = earlier;
        result.grading = config.grading.get(check.id.as_str()).copied();
        if result.is_flaky() {
            summary.flaky += 1;
        }
        result.expected_to_miss = config
            .expected_to_miss
            .iter()
            .any(|id| id == check.id.as_str());
        verdicts.insert(check.id.as_str().to_string(), result.verdict);
        summary.counts.add(result.verdict);
        match result.against_xfail() {
            Some(XFail::MissedAsExpected) if result.verdict == Verdict::Fail => {
                summary.expected_fails += 1
            }
            Some(XFail::UnexpectedPass) => summary.unexpected_passes += 1,
            _ => {}
        }
        summary.deliberate += result.deliberate;
        summary.confirming += result.confirming;
        sink(&RunEvent::CheckFinished {
            index,
            total: checks.len(),
            result: &result,
        });
    }
    Ok(())
}

/// Before any check: a server port fixed by the user must not be held by
/// another process already (an earlier instance still running, another
/// program). Its listener would be tested instead of the target's, or the
/// target could not bind. And a server already running on this machine
/// must be there: every check would fail against a program that is not.
fn preflight(config: &RunConfig) -> Result<(), RunError> {
    if let TargetSpec::Remote { addr } = &config.target {
        return remote_present(*addr, config.suite.transport);
    }
    let TargetSpec::Server {
        command,
        port,
        transport,
        ..
    } = &config.target
    else {
        return Ok(());
    };
    let port = match port {
        ServerPort::Fixed(port) => port,
        ServerPort::Free => return Ok(()),
        ServerPort::Auto if command.contains("{port}") => {
            return Err(RunError::TargetFailed(AUTO_WITH_PLACEHOLDER.into()))
        }
        ServerPort::Auto => return Ok(()),
    };
    if ports::waiting_on(*port, *transport).is_empty() {
        return Ok(());
    }
    let holders = ports::holders(*port, *transport);
    Err(RunError::TargetFailed(format!(
        "{} before the target was started (an earlier instance still running?); \
         stop it{} or choose another port",
        ports::describe_holders(*port, *transport, &holders),
        match holders.as_slice() {
            [one] => format!(" (kill {})", one.pid),
            _ => String::new(),
        }
    )))
}

/// Why a server command with `{port}` cannot be given `--port auto`.
pub const AUTO_WITH_PLACEHOLDER: &str =
    "--port auto is for a server that binds a port written in its code, and is given none: \
     the command names {port}, so give it no --port (the harness picks a free one) or a \
     fixed --port N";

/// A `--target` on a loopback address is on this machine, so the kernel
/// shows whether anything listens there (a UDP socket bound there) without
/// connecting or sending. Another machine's target is taken as given.
fn remote_present(addr: SocketAddr, transport: Transport) -> Result<(), RunError> {
    if !addr.ip().is_loopback() {
        return Ok(());
    }
    let serves = |local: SocketAddr| {
        let ip = match local.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        local.port() == addr.port() && (ip == addr.ip() || ip.is_unspecified())
    };
    if ports::waiting_on(addr.port(), transport)
        .iter()
        .any(|w| serves(w.local))
    {
        return Ok(());
    }
    Err(RunError::TargetFailed(match transport {
        Transport::Stream => format!(
            "nothing listens on {addr}: start the server first, or give the address it \
             listens on"
        ),
        Transport::Datagram => format!(
            "nothing listens on {addr} (no UDP socket is bound to it): start the server \
             first, or give the address it is bound to"
        ),
    }))
}

/// The harness could not bind the port a client under test was given
/// (`what` says so, `full` with what to do about it). When the client's
/// port is fixed and another process holds it, that process is named, and
/// the run stops as for a server whose port is held: the setup's doing,
/// not the harness's.
fn client_port_taken(
    port: u16,
    transport: Transport,
    fixed: bool,
    e: &std::io::Error,
    what: String,
    full: String,
) -> RunError {
    if !(fixed && e.kind() == std::io::ErrorKind::AddrInUse) {
        return RunError::Harness(full);
    }
    let holders = ports::holders(port, transport);
    RunError::TargetFailed(format!(
        "{what}: {}; stop it{} or change the port in the client's code and pass the new one \
         with --port",
        ports::describe_holders(port, transport, &holders),
        match holders.as_slice() {
            [one] => format!(" (kill {})", one.pid),
            _ => String::new(),
        }
    ))
}

fn peak_rss_kib() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0 {
            usage.ru_maxrss.max(0) as u64
        } else {
            0
        }
    }
}

/// Why a check's target could not be brought up: the run's end when it is
/// the first check, that check's outcome after.
pub(crate) enum BringUpError {
    Start(StartError),
    Run(RunError),
}

/// Starts what a check talks to, as a target of the run's fleet. Once the
/// harness is interrupted the run goes no further.
///
/// With `own_folder` (the check looks at the files the target writes) a
/// server works in a folder of its own inside its scratch tree
/// ([`Workdir::own`]).
pub(crate) fn bring_up(config: &RunConfig, own_folder: bool) -> Result<Peer, BringUpError> {
    bring_up_with(config, None, own_folder)
}

/// Starts what a check talks to as its conversation asks: a client with
/// the file the conversation gives it made first, listened for with a
/// small receive buffer when the conversation reads slowly.
pub(crate) fn bring_up_with(
    config: &RunConfig,
    conversation: Option<&Conversation>,
    own_folder: bool,
) -> Result<Peer, BringUpError> {
    let file = conversation.and_then(|c| c.file.as_ref());
    let small_receive_buffer = conversation.is_some_and(|c| c.small_receive_buffer);
    if fleet::interrupted() {
        return Err(BringUpError::Run(RunError::Harness(
            "interrupted: no check starts any more".into(),
        )));
    }
    match &config.target {
        TargetSpec::Server {
            command,
            port,
            transport,
            workdir,
        } => {
            let port = match port {
                ServerPort::Fixed(p) => Some(*p),
                ServerPort::Free => Some(net::free_port().map_err(|e| {
                    BringUpError::Run(RunError::Harness(format!("no free port: {e}")))
                })?),
                ServerPort::Auto => None,
            };
            // The harness holds every server's standard input: a chat
            // server reads its replies from it, and any other waits on it
            // as it would on a terminal nobody types in.
            let launch = Launch {
                command: command.clone(),
                port,
                stdin: true,
                transport: *transport,
                workdir: match own_folder {
                    true => workdir.own(),
                    false => workdir.clone(),
                },
                file: None,
                confine: config.confine.clone().map(Box::new),
            };
            Launched::start(launch, &config.fleet, &config.timing)
                .map(Peer::Launched)
                .map_err(BringUpError::Start)
        }
        TargetSpec::Remote { addr } => Ok(Peer::Remote(*addr)),
        TargetSpec::Client {
            command,
            port,
            transport,
            workdir,
        } => {
            if *transport == Transport::Datagram {
                return bring_up_datagram_client(config, command, *port, workdir, file);
            }
            // Both loopbacks: a client may connect to ::1 as well as to
            // 127.0.0.1, and `localhost` often means ::1 first.
            let listeners = loopback::Pair::bind(*port).map_err(|e| {
                BringUpError::Run(client_port_taken(
                    e.addr.port(),
                    Transport::Stream,
                    e.fixed,
                    &e.source,
                    format!("could not listen on {} for the client", e.addr),
                    e.to_string(),
                ))
            })?;
            if small_receive_buffer {
                for listener in listeners.sockets() {
                    net::shrink_receive_buffer(listener).map_err(|e| {
                        BringUpError::Run(RunError::Harness(format!(
                            "could not shrink the receive buffer of the harness's listener: {e}"
                        )))
                    })?;
                }
            }
            let launch = Launch {
                command: command.clone(),
                port: Some(listeners.port()),
                stdin: true,
                transport: *transport,
                workdir: workdir.clone(),
                file: file.cloned(),
                confine: config.confine.clone().map(Box::new),
            };
            let process = config.fleet.spawn(&launch).map_err(|e| {
                BringUpError::Run(RunError::TargetFailed(format!(
                    "could not run `{}` through sh: {e}",
                    launch.command_line()
                )))
            })?;
            Ok(Peer::Client { listeners, process })
        }
    }
}

/// Binds the harness's datagram sockets on 127.0.0.1 and ::1, on `port` or
/// one the kernel picks free on both, and starts the client with that
/// port: the sockets exist before the client's first datagram, so none is
/// lost, whichever loopback the client sends to (`localhost` is ::1 first
/// on many machines).
fn bring_up_datagram_client(
    config: &RunConfig,
    command: &str,
    port: Option<u16>,
    workdir: &Workdir,
    file: Option<&GivenFile>,
) -> Result<Peer, BringUpError> {
    // Both loopbacks on one port, as for a stream client: a client may send
    // to ::1 as well as to 127.0.0.1.
    let server = loopback::Pair::<std::net::UdpSocket>::bind(port).map_err(|e| {
        BringUpError::Run(client_port_taken(
            e.addr.port(),
            Transport::Datagram,
            e.fixed,
            &e.source,
            format!(
                "could not bind the harness's UDP socket on {} for the client",
                e.addr
            ),
            format!(
                "could not bind the harness's UDP socket on {} for the client: {}",
                e.addr, e.source
            ),
        ))
    })?;
    let bound = server.port();
    let launch = Launch {
        command: command.to_string(),
        port: Some(bound),
        stdin: true,
        transport: Transport::Datagram,
        workdir: workdir.clone(),
        file: file.cloned(),
        confine: config.confine.clone().map(Box::new),
    };
    let process = config.fleet.spawn(&launch).map_err(|e| {
        BringUpError::Run(RunError::TargetFailed(format!(
            "could not run `{}` through sh: {e}",
            launch.command_line()
        )))
    })?;
    Ok(Peer::DatagramClient { server, process })
}

fn run_check(config: &RunConfig, check: &Check, first: bool) -> Result<CheckResult, RunError> {
    let started = Instant::now();
    let header = |verdict: Verdict| CheckResult {
        summary: check.summary.into(),
        expectation: check.expectation.into(),
        duration: started.elapsed(),
        ..CheckResult::new(check.id.as_str(), check.level, verdict)
    };
    if check.needs_process() && matches!(config.target, TargetSpec::Remote { .. }) {
        return Ok(CheckResult {
            not_run: Some(NotRun::NeedsProcess),
            ..header(Verdict::Skip)
        });
    }
    if !matches!(config.target, TargetSpec::Remote { .. }) {
        netns::fresh_loopback();
    }
    let own_folder = check.works_in_own_folder();
    // A conversation is built before its target starts: a client is
    // started with the file the conversation gives it.
    let body = match &check.body {
        Body::Conversation(build) => Ok(build(&config.profile)),
        Body::Generated(g) => Err(g),
    };
    let mut peer = match bring_up_with(config, body.as_ref().ok(), own_folder) {
        Ok(p) => p,
        Err(BringUpError::Start(e)) if first => return Err(RunError::TargetFailed(e.full())),
        Err(BringUpError::Start(e)) => return Ok(not_started(header(Verdict::Error), e)),
        Err(BringUpError::Run(e)) => return Err(e),
    };
    let mut ran = match body {
        Ok(conversation) => {
            let mut outcome = Session::new(&mut peer, config.timing).run(&conversation.steps);
            if spoiled_by_a_cut(&outcome) {
                outcome = once_more(config, &mut peer, &conversation, outcome)?;
            }
            Ran {
                conversation,
                outcome,
                case: None,
            }
        }
        Err(g) => {
            let restart = || bring_up(config, own_folder).ok();
            let context = generated::Context {
                profile: &config.profile,
                timing: config.timing,
                seed: config.seed,
                restart: &restart,
            };
            generated::run(&context, check, g, &mut peer)
        }
    };
    if check.abusive && !ran.outcome.killed && role_is_server(&peer) {
        probe_sanity(config, &mut peer, &mut ran.outcome);
    }
    let ended = finish_peer(&mut peer, &mut ran.outcome, &config.timing);
    let missed_at: Vec<String> = ran.outcome.misses.iter().map(|m| m.step.clone()).collect();
    let details: Vec<&str> = ran
        .outcome
        .misses
        .iter()
        .map(|m| m.detail.as_str())
        .collect();
    let details = details.join("\n");
    let evidence = Evidence {
        language: Language::of(
            &config.target.describe(),
            ended.stderr_tail.as_deref().unwrap_or(""),
        ),
        exited: ended.exited,
        stderr: ended.stderr_tail.as_deref().unwrap_or(""),
        mapped: &ended.mapped,
        echoes: &ran.outcome.echoes,
        missed_at: &missed_at,
        details: &details,
    };
    // The most severe miss that carries advice of its own speaks for it.
    let step_hint = ran
        .outcome
        .misses
        .iter()
        .filter(|m| m.hint.is_some())
        .max_by_key(|m| m.level)
        .and_then(|m| m.hint.as_deref());
    let hint = hint::choose(step_hint, check.hint, check.hints, &evidence);
    let tail = ended.stderr_tail;
    let verdict = match &ran.outcome.fault {
        // The harness's own failure says nothing about the target.
        Some(_) => Verdict::Error,
        // Misses that followed cuts the harness could not make judge
        // nothing: the check says what it saw.
        None if ran.outcome.cut_not_made && ran.outcome.worst() <= Some(Level::Info) => {
            Verdict::Info
        }
        None => Verdict::judge(check.level, ran.outcome.worst()),
    };
    let missed = !matches!(verdict, Verdict::Pass | Verdict::Info);
    let steps: Vec<String> = ran
        .conversation
        .steps
        .iter()
        .map(ToString::to_string)
        .collect();
    let fault = ran.outcome.fault.take().map(|f| crate::results::Fault {
        step: f.step,
        detail: f.detail,
    });
    Ok(CheckResult {
        deliberate: ran.outcome.paused,
        confirming: ran.outcome.confirming,
        case: ran.case,
        fault,
        hint,
        unmeasured: stopped_before_measuring(&ran.conversation, &ran.outcome.misses),
        misses: located(ran.outcome.misses),
        steps,
        notes: ran.outcome.notes,
        transcript: ran.outcome.transcript.records(),
        stderr_tail: if missed { tail } else { None },
        ..header(verdict)
    })
}

/// Whether a conversation missed after a cut the harness did not make.
fn spoiled_by_a_cut(outcome: &Outcome) -> bool {
    outcome.fault.is_none()
        && !outcome.unmade.is_empty()
        && outcome.worst().is_some_and(|l| l > Level::Info)
}

/// Plays a conversation again on a fresh target after its cut was not
/// made. Missed again with its cut unmade, its misses are said at INFO with
/// the cut made, and the check judges nothing: the cut under test was
/// never sent.
fn once_more(
    config: &RunConfig,
    peer: &mut Peer,
    conversation: &Conversation,
    first: Outcome,
) -> Result<Outcome, RunError> {
    match peer {
        Peer::Launched(l) => l.end(),
        Peer::Client { process, .. } | Peer::DatagramClient { process, .. } => {
            process.kill();
        }
        Peer::Remote(_) => {}
    }
    if !matches!(peer, Peer::Remote(_)) {
        match bring_up_with(config, Some(conversation), conversation.touches_files()) {
            Ok(fresh) => *peer = fresh,
            Err(BringUpError::Run(e)) => return Err(e),
            // The first try's misses stand: the target did not come back.
            Err(BringUpError::Start(_)) => return Ok(first),
        }
    }
    let mut again = Session::new(peer, config.timing).run(&conversation.steps);
    again.paused += first.paused;
    again.confirming += first.confirming;
    let made = |o: &Outcome| {
        o.unmade
            .iter()
            .map(|u| format!("{}: {}", u.conn, u.made))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if !spoiled_by_a_cut(&again) {
        again.notes.push(format!(
            "played twice: the first time a cut was not made ({}) and the target missed",
            made(&first)
        ));
        return Ok(again);
    }
    let cuts = made(&again);
    for m in &mut again.misses {
        if m.level > Level::Info {
            m.detail = format!(
                "{}\nnot counted against the target: the cut was not made in two tries ({cuts})",
                m.detail
            );
            m.level = Level::Info;
        }
    }
    again.cut_not_made = true;
    Ok(again)
}

/// The result of a check whose target could not be started (after the
/// first check did start it). The program's doing is judged at the check's
/// level, with what the program printed; the machine's is an ERROR that
/// names the cause and never counts against the program.
fn not_started(header: CheckResult, e: StartError) -> CheckResult {
    let (verdict, why) = match e.blame {
        Blame::Target => (
            Verdict::judge(header.level, Some(Level::Must)),
            NotRun::StartFailed { message: e.message },
        ),
        Blame::Environment => (
            Verdict::Error,
            NotRun::StartPrevented { message: e.message },
        ),
    };
    CheckResult {
        verdict,
        not_run: Some(why),
        stderr_tail: e.stderr_tail,
        ..header
    }
}

fn role_is_server(peer: &Peer) -> bool {
    !peer.is_client()
}

/// After an abusive check, a plain exchange on a new connection shows
/// whether the target survived it. Its result is reported, not judged: a
/// crash is judged by the target's exit status, and the next check meets a
/// fresh target, so nothing later is blamed on this one.
fn probe_sanity(config: &RunConfig, peer: &mut Peer, outcome: &mut Outcome) {
    let sanity = (config.suite.sanity)(&config.profile);
    let probe = Session::new(peer, config.timing).run(&sanity.steps);
    outcome.paused += probe.paused;
    outcome.confirming += probe.confirming;
    match probe.misses.first() {
        // Said only beside a miss, where it tells the miss from a crash:
        // a passing check's target plainly survived.
        None if outcome.misses.is_empty() => {}
        None => outcome
            .notes
            .push("a plain exchange after the check was answered".into()),
        Some(m) => outcome.notes.push(format!(
            "after the check the target no longer answered a plain exchange ({}): {}{}",
            m.step,
            m.detail.lines().next().unwrap_or_default(),
            still_serving(peer)
        )),
    }
}

/// Why a launched server left a plain exchange unanswered when it is still
/// serving an earlier connection: the kernel shows that connection's end
/// held open by the target and the new one waiting in the accept queue (a
/// socket no process holds yet). An iterative server stuck in an earlier
/// client's loop never returns to accept; the check that passed is not
/// the cause. Nothing when the kernel shows otherwise.
fn still_serving(peer: &mut Peer) -> String {
    use crate::kernel::tcpsock::TcpState;
    let Peer::Launched(l) = &mut *peer else {
        return String::new();
    };
    let port = l.port();
    let pids: Vec<i32> = l
        .process()
        .tree()
        .iter()
        .filter(|s| !s.zombie)
        .map(|s| s.pid)
        .collect();
    let ends = ports::sockets_on(port, &[TcpState::Established, TcpState::CloseWait]);
    let queued = ends.iter().filter(|s| s.inode == 0).count();
    let served: Vec<(TcpState, Vec<i32>)> = ends
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| (s.state, ports::held_by(s.inode, &pids)))
        .filter(|(_, holders)| !holders.is_empty())
        .collect();
    let Some((state, holders)) = served.first() else {
        return String::new();
    };
    if queued == 0 {
        return String::new();
    }
    let client = match state {
        TcpState::CloseWait => ", though its client closed it",
        _ => "",
    };
    format!(
        "; not this check's failure: the target never went back to accept, it still holds \
         an earlier connection open{client} ({}), and the new connection waits in its \
         accept queue",
        ports::Holder::of(holders[0])
    )
}

/// For a check that measures the target (its CPU, its descriptors) but
/// missed before it got there: the measuring step it never reached, said
/// first so the reader does not take the miss for a verdict on what was
/// never measured.
fn stopped_before_measuring(conversation: &Conversation, misses: &[Miss]) -> Option<String> {
    let measures = |s: &Step| {
        matches!(
            s,
            Step::Process(ProcessStep::ExpectIdle | ProcessStep::ExpectDescriptorsBack { .. })
        )
    };
    let first = misses.first()?;
    let reached = misses.iter().any(|m| match m.at {
        At::Step { index, .. } => conversation.steps.get(index).is_some_and(measures),
        _ => false,
    });
    if reached || first.at == At::Process {
        return None;
    }
    conversation
        .steps
        .iter()
        .find(|s| measures(s))
        .map(ToString::to_string)
}

/// The misses as results, each with the number of the step it was found
/// at, when that is one of the check's numbered steps.
fn located(misses: Vec<Miss>) -> Vec<Missed> {
    misses
        .into_iter()
        .map(|m| Missed {
            level: m.level,
            step: StepRef {
                number: m.at.number(),
                text: m.step,
            },
            detail: m.detail,
        })
        .collect()
}

/// Ends the check's target. A launched server that died during the check
/// without being killed on purpose crashed: that is a miss of its own.
/// Returns the tail of the target's stderr.
fn finish_peer(peer: &mut Peer, outcome: &mut Outcome, timing: &Timing) -> Ended {
    let launched = matches!(peer, Peer::Launched(_));
    if let (Peer::Launched(l), false) = (&mut *peer, outcome.killed) {
        l.settle(timing);
    }
    let Some(process) = peer.process() else {
        return Ended::default();
    };
    // A client that missed may be on its way out (it closed its
    // connection and is exiting): its exit is evidence the hint speaks of.
    if !launched && !outcome.killed && !outcome.misses.is_empty() {
        let deadline = Instant::now() + Timing::OUTPUT_CLOSE;
        while process.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Timing::POLL);
        }
    }
    // What the program loaded, read while it still runs, for a check that
    // missed: a hint may depend on the library it is built on.
    let mapped = if outcome.misses.is_empty() {
        String::new()
    } else {
        mapped_files(&process.tree())
    };
    // How it ended, when it was not the harness that ended it: the hint
    // speaks of an exit the program chose.
    let exited = process
        .exited()
        .filter(|_| !outcome.killed)
        .map(describe_exit);
    if let (true, Some(status), false) = (launched, process.exited(), outcome.killed) {
        if status.success() {
            outcome.notes.push(format!(
                "the server exited during the check ({})",
                describe_exit(status)
            ));
        } else {
            outcome.misses.push(Miss {
                hint: None,
                level: Level::Must,
                step: "the server's process".into(),
                at: At::Process,
                detail: format!(
                    "the server crashed during the check: {}",
                    describe_exit(status)
                ),
            });
        }
    }
    if launched {
        if let Peer::Launched(l) = &mut *peer {
            // Ends the server and what its connections left on its port.
            l.end();
        }
    } else if let Some(p) = peer.process() {
        p.kill();
    }
    let Some(process) = peer.process() else {
        return Ended::default();
    };
    process
        .stderr()
        .wait_closed(Instant::now() + Timing::OUTPUT_CLOSE);
    let tail = process.stderr().tail(15);
    Ended {
        stderr_tail: (!tail.trim().is_empty()).then_some(tail),
        exited,
        mapped,
    }
}

/// The names of the files `procs` have mapped, one a line, each once.
fn mapped_files(procs: &[crate::kernel::procfs::Stat]) -> String {
    let mut names = std::collections::BTreeSet::new();
    for p in procs {
        let Ok(maps) = std::fs::read_to_string(format!("/proc/{}/maps", p.pid)) else {
            continue;
        };
        for line in maps.lines() {
            if let Some(path) = line.split_whitespace().nth(5) {
                names.insert(path.rsplit('/').next().unwrap_or(path).to_string());
            }
        }
    }
    names.into_iter().collect::<Vec<_>>().join("\n")
}

/// What is known of a target once its check is over.
#[derive(Default)]
struct Ended {
    /// The end of its stderr, when it wrote any.
    stderr_tail: Option<String>,
    /// How it ended, when it exited on its own during the check.
    exited: Option<String>,
    /// The files its processes had mapped, when the check missed.
    mapped: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::steps::Conn;

    fn start_error(blame: Blame) -> StartError {
        StartError {
            blame,
            message: "the server ended (exit status 1) before listening on port 9".into(),
            bind_failed: false,
            stderr_tail: Some("OSError: boom".into()),
        }
    }

    fn judged(level: Level, blame: Blame) -> CheckResult {
        not_started(
            CheckResult::new("x.y", level, Verdict::Error),
            start_error(blame),
        )
    }

    #[test]
    fn a_program_that_cannot_start_again_is_judged_at_the_check_s_level() {
        assert_eq!(judged(Level::Must, Blame::Target).verdict, Verdict::Fail);
        assert_eq!(judged(Level::Should, Blame::Target).verdict, Verdict::Warn);
        assert_eq!(
            judged(Level::Should, Blame::Target).stderr_tail.as_deref(),
            Some("OSError: boom")
        );
    }

    #[test]
    fn a_miss_is_numbered_by_the_step_it_was_found_at_even_among_steps_that_print_alike() {
        let miss = |step: &str, at: At| Miss {
            hint: None,
            level: Level::Must,
            step: step.into(),
            at,
            detail: String::new(),
        };
        let found = located(vec![
            miss(
                "send on c1 \"x\"",
                At::Step {
                    index: 3,
                    nested: false,
                },
            ),
            miss(
                "expect on c1 \"X\"",
                At::Step {
                    index: 4,
                    nested: true,
                },
            ),
            miss("the server's process", At::Process),
        ]);
        let numbers: Vec<Option<usize>> = found.iter().map(|m| m.step.number).collect();
        assert_eq!(numbers, [Some(4), None, None]);
        assert_eq!(found[2].step.text, "the server's process");
    }

    #[test]
    fn a_check_that_missed_before_its_measuring_step_names_that_step() {
        let conversation = Conversation::new()
            .connect(Conn(1))
            .expect_bytes(Conn(1), "HI")
            .expect_idle();
        let at = |index| At::Step {
            index,
            nested: false,
        };
        let miss = |at| Miss {
            hint: None,
            level: Level::Must,
            step: String::new(),
            at,
            detail: String::new(),
        };
        assert_eq!(
            stopped_before_measuring(&conversation, &[miss(at(1))]).as_deref(),
            Some("measure the target's CPU, expect it idle")
        );
        assert_eq!(
            stopped_before_measuring(&conversation, &[miss(at(2))]),
            None
        );
        assert_eq!(
            stopped_before_measuring(&conversation, &[miss(At::Process)]),
            None
        );
    }

    #[test]
    fn a_port_taken_by_the_machine_is_an_error_never_the_program_s_failure() {
        for level in [Level::Must, Level::Should] {
            let r = judged(level, Blame::Environment);
            assert_eq!(r.verdict, Verdict::Error);
            assert!(matches!(r.not_run, Some(NotRun::StartPrevented { .. })));
        }
    }
}
