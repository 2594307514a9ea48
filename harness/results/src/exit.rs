//! Exit statuses of the `sockspec` command. Scripts and CI jobs depend on
//! these numbers; they never change meaning.

/// No MUST check failed (warnings, skips and expected failures do not
/// count).
pub const OK: i32 = 0;
/// At least one MUST check failed, not counting those expected to
/// (`--xfail`); or a check expected to miss passed.
pub const CHECK_FAILED: i32 = 1;
/// Bad usage or configuration: nothing was run.
pub const USAGE: i32 = 2;
/// The target could not be started, or never listened.
pub const TARGET_FAILED: i32 = 3;
/// The harness could not run a check (a bug or an environment problem).
pub const HARNESS_ERROR: i32 = 4;
/// Interrupted by Ctrl-C or SIGTERM; every target process was ended.
pub const INTERRUPTED: i32 = 130;
