//! The protocol knowledge of sockspec: one module per protocol of the
//! reference, each a [`Suite`] of checks written as conversations in the
//! engine's vocabulary. Suites hold no timing, socket or reporting code.

use sockspec_engine::check::Suite;

pub mod tcp_upper;

/// Every suite, in the order `sockspec list` shows them.
pub fn all() -> Vec<Suite> {
    vec![tcp_upper::suite()]
}

/// The suite named `name`.
pub fn find(name: &str) -> Option<Suite> {
    all().into_iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockspec_engine::check::{Body, Role};
    use sockspec_engine::conversation::Step;
    use sockspec_engine::profile::Profile;
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
    fn only_checks_that_say_so_touch_the_process() {
        fn touches(steps: &[Step]) -> bool {
            steps.iter().any(|s| match s {
                Step::ExpectIdle
                | Step::CountDescriptors
                | Step::ExpectDescriptorsBack { .. }
                | Step::KillTarget
                | Step::RestartTarget => true,
                Step::Repeat { steps, .. } => touches(steps),
                _ => false,
            })
        }
        for suite in all() {
            for check in &suite.checks {
                if let Body::Conversation(build) = &check.body {
                    assert_eq!(
                        touches(&build(&Profile::default()).steps),
                        check.needs_process,
                        "{}",
                        check.id
                    );
                }
            }
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
