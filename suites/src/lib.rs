//! The protocol knowledge of sockspec: one module per protocol of the
//! reference, each a [`Suite`] of checks written as conversations in the
//! engine's vocabulary. Suites hold no timing, socket or reporting code.

use sockspec_engine::conversations::check::Suite;

pub mod checks;
pub mod cmd_json;
pub mod cmd_len;
pub mod cmd_raw;
pub mod cmd_udp;
pub mod commands;
pub mod file_upload;
pub mod tcp_upper;
pub mod udp_chat;
pub mod udp_upper;

/// Every suite, in the order `sockspec list` shows them.
pub fn all() -> Vec<Suite> {
    vec![
        tcp_upper::suite(),
        udp_upper::suite(),
        udp_chat::suite(),
        cmd_raw::suite(),
        cmd_len::suite(),
        cmd_json::suite(),
        cmd_udp::suite(),
        file_upload::suite(),
    ]
}

/// The suite named `name`.
pub fn find(name: &str) -> Option<Suite> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockspec_engine::conversations::check::Role;
    use std::collections::HashSet;

    #[test]
    fn every_id_is_well_formed_unique_and_under_its_suite() {
        let mut seen = HashSet::new();
        for suite in all() {
            for check in &suite.checks {
                assert!(check.id.is_well_formed(), "{}", check.id);
                assert_eq!(check.id.protocol(), suite.name, "{}", check.id);
                assert!(seen.insert(check.id), "duplicate id {}", check.id);
            }
        }
    }

    #[test]
    fn client_checks_are_named_as_client_checks() {
        for suite in all() {
            for check in &suite.checks {
                let named = check.id.as_str().contains(".client.");
                assert_eq!(named, check.role == Role::Client, "{}", check.id);
            }
        }
    }

    #[test]
    fn every_parameter_of_a_suite_is_named_once() {
        for suite in all() {
            let mut keys = HashSet::new();
            for p in suite.params {
                assert!(keys.insert(p.key()), "{}: {} twice", suite.name, p.key());
                assert!(
                    !p.meaning().is_empty() && !p.shown_default().is_empty(),
                    "{}",
                    p.key()
                );
            }
        }
    }

    #[test]
    fn every_check_has_its_explanation_for_sockspec_explain() {
        for suite in all() {
            for check in &suite.checks {
                assert!(
                    check.explain.is_complete(),
                    "{} has no explanation",
                    check.id
                );
            }
        }
    }

    #[test]
    fn every_suite_says_what_goes_on_the_wire_for_each_side() {
        for suite in all() {
            assert!(
                !suite.wire.server.trim().is_empty() && !suite.wire.client.trim().is_empty(),
                "{}",
                suite.name
            );
        }
    }

    #[test]
    fn every_check_explains_itself() {
        for suite in all() {
            for check in &suite.checks {
                assert!(
                    !check.summary.is_empty() && !check.expectation.is_empty(),
                    "{}",
                    check.id
                );
            }
        }
    }
}
