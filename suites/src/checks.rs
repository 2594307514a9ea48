//! What every suite's checks start from: a server check or a client check
//! with the fields all checks share, which a suite then completes (its
//! explanation, a hint, whether it abuses the target), and the parameter
//! more than one suite reads.

use sockspec_engine::conversations::check::{Body, Check, CheckId, Explain, Level, Role};
use sockspec_engine::model::profile::Number;

/// The receive size, `buf`: the most bytes the program asks for in one
/// receive. The suites that size messages by it declare it.
pub const BUF: Number = Number {
    key: "buf",
    meaning: "most bytes the program asks for in one receive",
    min: 1,
    max: 65_536,
    default: 1024,
};

/// A server check.
pub fn server(
    id: &'static str,
    level: Level,
    summary: &'static str,
    expectation: &'static str,
    body: Body,
) -> Check {
    Check {
        id: CheckId::new(id),
        level,
        role: Role::Server,
        summary,
        expectation,
        abusive: false,
        hint: None,
        hints: &[],
        explain: Explain::default(),
        body,
    }
}

/// A client check.
pub fn client(
    id: &'static str,
    level: Level,
    summary: &'static str,
    expectation: &'static str,
    body: Body,
) -> Check {
    Check {
        role: Role::Client,
        ..server(id, level, summary, expectation, body)
    }
}

/// `upper(b)`: ASCII `a`-`z` to `A`-`Z`, every other byte unchanged, as
/// Python's `bytes.upper()`.
pub fn upper(b: &[u8]) -> Vec<u8> {
    b.to_ascii_uppercase()
}

/// A blank line (spaces only) for a client's input. It is not empty: a
/// client that strips only the newline sends it, one that strips all white
/// space skips it, and the protocols allow both.
pub const BLANK: &str = "   ";
/// What a client check says a client did with [`BLANK`].
pub const BLANK_SENT: &str = "the blank line (spaces only) was sent, and answered";
pub const BLANK_SKIPPED: &str = "the blank line (spaces only) was skipped";
