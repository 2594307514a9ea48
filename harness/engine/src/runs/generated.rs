//! Generated checks: cases with fixed cuts first, then cases proptest
//! draws from the check's strategies, all on one connection while they
//! pass. A failing case is shrunk to the smallest that still fails and
//! reported with the seed that reproduces it.
//!
//! A case that missed after a cut the harness did not make (the target
//! had not read a piece when the next was due, so it may have read them
//! together) is played once more. Missed again with its cut unmade, it is
//! reported at INFO with the cut really made, never as the target's
//! failure: the cut under test was never sent.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use crate::conversations::check::{Check, CheckId, Generated, Level};
use crate::conversations::conversation::Conversation;
use crate::conversations::session::{At, Miss, Outcome, Peer, Session};
use crate::conversations::transcript::Transcript;
use crate::judge::show;
use crate::model::cut::Cut;
use crate::model::profile::Profile;
use crate::model::timing::Timing;
use crate::results::FailingCase;

/// What a generated check needs of its run.
pub(crate) struct Context<'a> {
    pub(crate) profile: &'a Profile,
    pub(crate) timing: Timing,
    /// The run's seed; each check draws from a seed of its own made from it.
    pub(crate) seed: u64,
    /// Starts the target afresh, for the cases after one that ended it.
    pub(crate) restart: &'a dyn Fn() -> Option<Peer>,
}

/// What running a check's conversations produced: the steps played, what
/// happened, and for a generated check that missed, the case.
pub(crate) struct Ran {
    pub(crate) conversation: Conversation,
    pub(crate) outcome: Outcome,
    pub(crate) case: Option<FailingCase>,
}

/// A per-check seed, so `--only` does not change what a check generates.
fn check_seed(seed: u64, id: CheckId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(seed ^ h)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn rng_for(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    let mut x = seed;
    for chunk in bytes.chunks_mut(8) {
        x = splitmix(x);
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// A run of cases sharing one connection: the session is open while the
/// cases pass; a failing case ends it, and the next case starts a new one.
struct Streak<'p> {
    active: Option<Session<'p>>,
    idle: Option<&'p mut Peer>,
    /// Whether the idle peer has played no session yet: a client under
    /// test that has is started afresh for the next, as it connects once.
    fresh: bool,
    /// Deliberate pauses of the sessions already finished.
    paused: Duration,
    /// Waiting for the kernel's view, in the sessions already finished.
    confirming: Duration,
    /// Cases that missed twice after cuts the harness did not make.
    unearned: Vec<Failure>,
}

/// A failing case: the message, its cut, the steps played and what happened.
struct Failure {
    message: Vec<u8>,
    cut: Cut,
    conversation: Conversation,
    outcome: Outcome,
}

impl<'p> Streak<'p> {
    /// Plays one case; on failure returns what happened, ending the streak.
    fn play(
        &mut self,
        context: &Context,
        g: &Generated,
        message: &[u8],
        cut: &Cut,
    ) -> Option<Failure> {
        let profile = context.profile;
        let case = (g.case)(profile, message, cut);
        // The steps reported for a failure are `played`: the session's
        // steps from `first` on.
        let (mut session, mut played, first) = match self.active.take() {
            Some(session) => {
                let first = session.steps_played();
                (session, Conversation::new(), first)
            }
            None => {
                let peer = self.idle.take()?;
                revive(context, peer, self.fresh);
                self.fresh = false;
                let mut session = Session::new(peer, context.timing);
                let setup = (g.setup)(profile);
                session.play(&setup.steps);
                (session, setup, 0)
            }
        };
        if !session.failed() {
            session.play(&case.steps);
        }
        played = played.then(case);
        if !session.failed() {
            self.active = Some(session);
            return None;
        }
        let (mut outcome, peer) = session.finish();
        outcome.count_from(first);
        self.idle = Some(peer);
        self.spent(&outcome);
        Some(Failure {
            message: message.to_vec(),
            cut: cut.clone(),
            conversation: played,
            outcome,
        })
    }

    /// Plays one case and returns its failure; a miss after a cut not made
    /// is played once more, and set aside (not a failure) when its cut is
    /// not made again.
    fn try_case(
        &mut self,
        context: &Context,
        g: &Generated,
        message: &[u8],
        cut: &Cut,
    ) -> Option<Failure> {
        for attempt in 1..=2 {
            match self.play(context, g, message, cut) {
                None => return None,
                Some(f) if f.outcome.unmade.is_empty() => return Some(f),
                Some(f) if attempt == 2 => self.unearned.push(f),
                Some(_) => {}
            }
        }
        None
    }

    fn close(&mut self) {
        if let Some(session) = self.active.take() {
            let (outcome, peer) = session.finish();
            self.spent(&outcome);
            self.idle = Some(peer);
        }
    }

    fn spent(&mut self, outcome: &Outcome) {
        self.paused += outcome.paused;
        self.confirming += outcome.confirming;
    }

    /// The waiting of every finished session, on `outcome`.
    fn with_waits(&self, outcome: Outcome) -> Outcome {
        Outcome {
            paused: self.paused,
            confirming: self.confirming,
            ..outcome
        }
    }
}

/// Cases that missed only after cuts the harness did not make, as the
/// check's result: each said at INFO with the cut meant, the cut made and
/// what the target did; the last one's steps and transcript.
fn unearned(described: Conversation, mut cases: Vec<Failure>, held: String) -> Ran {
    let mut misses = Vec::new();
    for f in &cases {
        let made: Vec<String> = f
            .outcome
            .unmade
            .iter()
            .map(|u| format!("{}: {}", u.conn, u.made))
            .collect();
        let what = f
            .outcome
            .misses
            .iter()
            .map(|m| format!("at \"{}\": {}", m.step, m.detail))
            .collect::<Vec<_>>()
            .join("\n");
        misses.push(Miss {
            hint: None,
            level: Level::Info,
            step: "generated cases".into(),
            at: At::GeneratedCases,
            detail: format!(
                "a message of {} bytes, cut {}: the cut was not made in two tries ({}), and \
                 the target then missed; not counted against it, as the cut under test was \
                 never sent:\n{what}",
                f.message.len(),
                f.cut,
                made.join("; ")
            ),
        });
    }
    let last = cases.pop();
    let (conversation, transcript) = match last {
        Some(f) => (f.conversation, f.outcome.transcript),
        None => (described, Transcript::new(Instant::now())),
    };
    let outcome = Outcome {
        transcript,
        cut_not_made: true,
        ..Outcome::without_traffic(misses, vec![held], Duration::ZERO)
    };
    Ran {
        conversation,
        outcome,
        case: None,
    }
}

/// Runs a generated check: its fixed cases first, then proptest's cases;
/// a failing case is shrunk to the smallest that still fails.
pub(crate) fn run(context: &Context, check: &Check, g: &Generated, peer: &mut Peer) -> Ran {
    let profile = context.profile;
    let described = |message: &[u8], cut: &Cut| -> Conversation {
        (g.setup)(profile).then((g.case)(profile, message, cut))
    };
    let mut all = Conversation::new();
    let mut streak = Streak {
        active: None,
        idle: Some(peer),
        fresh: true,
        paused: Duration::ZERO,
        confirming: Duration::ZERO,
        unearned: Vec::new(),
    };
    for (message, cut) in (g.fixed)(profile) {
        if let Some(f) = streak.try_case(context, g, &message, &cut) {
            streak.close();
            let case = FailingCase::Fixed {
                bytes: f.message.len(),
                cut: f.cut.to_string(),
            };
            let outcome = streak.with_waits(f.outcome);
            return Ran {
                conversation: f.conversation,
                outcome,
                case: Some(case),
            };
        }
        all = all.then((g.case)(profile, &message, &cut));
    }
    let seed = check_seed(context.seed, check.id);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: g.cases,
            max_shrink_iters: 64,
            max_shrink_time: context.timing.shrink_budget().as_millis() as u32,
            failure_persistence: None,
            ..Config::default()
        },
        rng_for(seed),
    );
    let streak = RefCell::new(streak);
    let last: RefCell<Option<Failure>> = RefCell::new(None);
    let strategy = ((g.message)(profile), (g.cut)(profile));
    let result = runner.run(&strategy, |(message, cut)| {
        match streak.borrow_mut().try_case(context, g, &message, &cut) {
            Some(failure) => {
                *last.borrow_mut() = Some(failure);
                Err(TestCaseError::fail("the case missed"))
            }
            None => Ok(()),
        }
    });
    let mut streak = streak.into_inner();
    streak.close();
    match result {
        Ok(()) => {
            let held = format!(
                "{} fixed and {} generated cuts held (seed {})",
                (g.fixed)(profile).len(),
                g.cases,
                context.seed
            );
            if !streak.unearned.is_empty() {
                let cases = std::mem::take(&mut streak.unearned);
                let held = format!(
                    "of {} fixed and {} generated cuts, every other one held (seed {})",
                    (g.fixed)(profile).len(),
                    g.cases,
                    context.seed
                );
                let mut ran = unearned((g.setup)(profile).then(all), cases, held);
                ran.outcome = streak.with_waits(ran.outcome);
                return ran;
            }
            let outcome = streak.with_waits(Outcome::without_traffic(
                Vec::new(),
                vec![held],
                Duration::ZERO,
            ));
            Ran {
                conversation: (g.setup)(profile).then(all),
                outcome,
                case: None,
            }
        }
        Err(TestError::Fail(_, (message, cut))) => {
            let stored = last
                .into_inner()
                .filter(|f| f.message == message && f.cut == cut);
            let failure = match stored {
                Some(f) => f,
                None => match streak.try_case(context, g, &message, &cut) {
                    Some(f) => f,
                    None => {
                        streak.close();
                        Failure {
                            message: message.clone(),
                            cut: cut.clone(),
                            conversation: described(&message, &cut),
                            outcome: Outcome::without_traffic(
                                vec![Miss {
                                    hint: None,
                                    level: Level::Should,
                                    step: "generated cases".into(),
                                    at: At::GeneratedCases,
                                    detail: "a generated case failed, but passed when run \
                                             again: the target's answers depend on timing"
                                        .into(),
                                }],
                                Vec::new(),
                                Duration::ZERO,
                            ),
                        }
                    }
                },
            };
            streak.close();
            let outcome = streak.with_waits(failure.outcome);
            let failure = Failure { outcome, ..failure };
            let case = FailingCase::Shrunk {
                bytes: failure.message.len(),
                shown: show::quoted(&failure.message, 32),
                cut: failure.cut.to_string(),
                seed: context.seed,
            };
            Ran {
                conversation: failure.conversation,
                outcome: failure.outcome,
                case: Some(case),
            }
        }
        Err(TestError::Abort(why)) => {
            let miss = Miss {
                hint: None,
                level: Level::Must,
                step: "generated cases".into(),
                at: At::GeneratedCases,
                detail: format!("the generated cases could not run: {why}"),
            };
            let outcome = streak.with_waits(Outcome::without_traffic(
                vec![miss],
                Vec::new(),
                Duration::ZERO,
            ));
            Ran {
                conversation: all,
                outcome,
                case: None,
            }
        }
    }
}

/// Starts the target afresh if it died, so each case of a generated check
/// meets a live target; and a client under test that already played a
/// session (`fresh` false), as it connects only once, at its start.
fn revive(context: &Context, peer: &mut Peer, fresh: bool) {
    match peer {
        Peer::Launched(l) => {
            if l.process().exited().is_none() {
                return;
            }
            // What the dead instance left on a fixed port goes first.
            l.end();
        }
        Peer::Client { process, .. } | Peer::DatagramClient { process, .. } if !fresh => {
            process.kill();
        }
        _ => return,
    }
    if let Some(started) = (context.restart)() {
        *peer = started;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_seeds_differ_by_id_and_repeat_by_seed() {
        let a = CheckId::new("x.a");
        let b = CheckId::new("x.b");
        assert_ne!(check_seed(1, a), check_seed(1, b));
        assert_eq!(check_seed(7, a), check_seed(7, a));
    }

    #[test]
    fn generated_values_repeat_for_a_seed() {
        use proptest::strategy::{Strategy, ValueTree};
        let strategy = Cut::arbitrary(6, 100);
        let draw = |seed| {
            let mut runner = TestRunner::new_with_rng(Config::default(), rng_for(seed));
            strategy.new_tree(&mut runner).unwrap().current()
        };
        assert_eq!(draw(42), draw(42));
    }
}
