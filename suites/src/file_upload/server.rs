//! The `file-upload` server checks: the harness uploads and reads back
//! what the server stored.

use sockspec_engine::conversations::check::Check;
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::model::profile::Profile;

/// A plain upload any conforming server stores, run after each abusive
/// check.
pub fn sanity(_: &Profile) -> Conversation {
    Conversation::new()
}

pub fn checks() -> Vec<Check> {
    Vec::new()
}
