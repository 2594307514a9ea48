//! What a check is: a stable id, a level, the sentence of the specification it
//! tests, and the conversation that tests it.

use std::fmt;

use crate::conversations::conversation::Conversation;
use crate::model::cut::Cut;
pub use crate::model::level::Level;
use crate::model::profile::{ParamSpec, Profile};
use crate::model::transport::Transport;
pub use sockspec_results::Role;

/// A check's stable name, such as `tcp-upper.echo` or `tcp-upper.client.echo`.
///
/// Ids are names, never positions: adding a check renumbers nothing, and
/// `--only`/`--skip`, the manifest and autograder reports key on them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct CheckId(&'static str);

impl CheckId {
    /// Makes an id; [`CheckId::is_well_formed`] says whether it follows the
    /// `protocol.name` shape (every suite's tests assert it for each check).
    pub const fn new(id: &'static str) -> Self {
        CheckId(id)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The protocol part: `tcp-upper` for `tcp-upper.client.echo`.
    pub fn protocol(&self) -> &'static str {
        self.0.split('.').next().unwrap_or(self.0)
    }

    /// Lowercase ASCII words joined by `-`, two or three of them joined by `.`.
    pub fn is_well_formed(&self) -> bool {
        let parts: Vec<&str> = self.0.split('.').collect();
        (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && !p.starts_with('-')
                    && !p.ends_with('-')
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// How a check produces its conversation.
#[derive(Clone)]
pub enum Body {
    /// One fixed conversation.
    Conversation(fn(&Profile) -> Conversation),
    /// Conversations built from generated cases that shrink on failure.
    Generated(Generated),
}

/// One case of a generated check: a message and how it is cut.
pub type Case = (Vec<u8>, Cut);

/// A property over generated cases: each case is a message and a cut. The
/// engine plays `setup` once on a fresh connection, then each case's
/// conversation on it, the fixed cases first and then those proptest draws;
/// a failing case is shrunk to the smallest that still fails, and the cases
/// after a failure start over with a fresh `setup`.
#[derive(Clone)]
pub struct Generated {
    /// Opens the connection the cases share and readies the target.
    pub setup: fn(&Profile) -> Conversation,
    /// Cases with fixed cuts, run before the generated ones.
    pub fixed: fn(&Profile) -> Vec<Case>,
    /// How many generated cases to run.
    pub cases: u32,
    /// Draws a message for a case.
    pub message: fn(&Profile) -> proptest::strategy::BoxedStrategy<Vec<u8>>,
    /// Draws a cut for a case.
    pub cut: fn(&Profile) -> proptest::strategy::BoxedStrategy<Cut>,
    /// The conversation for one case, on the connection `setup` opened.
    pub case: fn(&Profile, &[u8], &Cut) -> Conversation,
}

/// The teaching text of a check, for `sockspec explain ID`: why the
/// requirement matters, the code that usually breaks it, and the fix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Explain {
    /// Why the requirement matters, in a sentence or two.
    pub why: &'static str,
    /// A few lines of the kind of Python code that breaks it.
    pub mistake: &'static str,
    /// What to change.
    pub fix: &'static str,
}

impl Explain {
    /// Whether every part is written.
    pub fn is_complete(&self) -> bool {
        !self.why.trim().is_empty()
            && !self.mistake.trim().is_empty()
            && !self.fix.trim().is_empty()
    }
}

/// One requirement of a protocol, runnable against a target.
#[derive(Clone)]
pub struct Check {
    pub id: CheckId,
    pub level: Level,
    pub role: Role,
    /// One line for `sockspec list`.
    pub summary: &'static str,
    /// What a conforming program does, in words; shown with every failure.
    pub expectation: &'static str,
    /// Whether the check abuses the target (resets, garbage, oversize,
    /// disconnects); a plain sanity exchange follows it, and a target that
    /// no longer answers is reported in the check's detail.
    pub abusive: bool,
    /// What usually fixes a miss of this check, shown under the misses: the
    /// protocol's advice, kept with the check that gives it.
    pub hint: Option<&'static str>,
    /// Hints for particular evidence (the program exited, its language,
    /// the call its stderr names), chosen over `hint` when theirs holds.
    pub hints: &'static [crate::model::hint::Alternative],
    /// The longer explanation `sockspec explain` prints.
    pub explain: Explain,
    pub body: Body,
}

impl Check {
    /// Whether the check must start, stop or observe the target's process
    /// (against an already running `--target` it is skipped): read from its
    /// steps, as built with the default profile.
    pub fn needs_process(&self) -> bool {
        let p = Profile::default();
        match &self.body {
            Body::Conversation(build) => build(&p).needs_process(),
            Body::Generated(g) => {
                (g.setup)(&p).needs_process()
                    || (g.fixed)(&p)
                        .iter()
                        .any(|(message, cut)| (g.case)(&p, message, cut).needs_process())
            }
        }
    }

    /// Whether the target works in a folder of its own, deep inside a
    /// scratch tree the harness owns: a check that looks at the files the
    /// target writes asks for it, so that everything the target writes is
    /// inside that tree and nothing lands where the harness was started.
    pub fn works_in_own_folder(&self) -> bool {
        let p = Profile::default();
        match &self.body {
            Body::Conversation(build) => build(&p).touches_files(),
            Body::Generated(g) => {
                (g.setup)(&p).touches_files()
                    || (g.fixed)(&p)
                        .iter()
                        .any(|(message, cut)| (g.case)(&p, message, cut).touches_files())
            }
        }
    }
}

/// What goes on the wire, in the words a student implements from: what
/// each side sends and receives, in order, and what it does with it.
/// `sockspec spec` prints it above the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wire {
    pub server: &'static str,
    pub client: &'static str,
}

/// A protocol's checks, in the order they run.
pub struct Suite {
    pub name: &'static str,
    pub summary: &'static str,
    /// The protocol itself, as the checks hold programs to it.
    pub wire: Wire,
    /// How the protocol's programs talk: what the harness waits for before
    /// the first check, and which sockets it plays the server with.
    pub transport: Transport,
    /// A plain exchange on a new connection that any conforming server
    /// answers; run after each abusive check.
    pub sanity: fn(&Profile) -> Conversation,
    /// The profile parameters this suite reads, with their defaults and
    /// allowed values: `sockspec list` shows them, `--param` is held to them.
    pub params: &'static [ParamSpec],
    pub checks: Vec<Check>,
}

impl Suite {
    pub fn checks_for(&self, role: Role) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dotted_lowercase_words() {
        assert!(CheckId::new("tcp-upper.echo").is_well_formed());
        assert!(CheckId::new("tcp-upper.client.empty-line").is_well_formed());
        assert!(!CheckId::new("tcp-upper").is_well_formed());
        assert!(!CheckId::new("tcp-upper.Echo").is_well_formed());
        assert!(!CheckId::new("tcp-upper..echo").is_well_formed());
        assert!(!CheckId::new("a.b.c.d").is_well_formed());
    }

    #[test]
    fn protocol_is_the_first_part() {
        assert_eq!(
            CheckId::new("tcp-upper.client.echo").protocol(),
            "tcp-upper"
        );
    }

    #[test]
    fn levels_order_by_weight() {
        assert!(Level::Must > Level::Should && Level::Should > Level::Info);
    }
}
