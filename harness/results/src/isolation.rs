//! Where a run's checks had their sockets: a private loopback per check,
//! or the machine's.

use serde::{Deserialize, Serialize};

/// Where a run's checks have their sockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A network namespace per check, made with the harness's own
    /// privileges (root).
    Namespace,
    /// A network namespace per check, inside a user namespace the harness
    /// made for itself at start-up (an ordinary user).
    UserNamespace,
    /// The machine's loopback, shared with everything else.
    #[default]
    Shared,
}

impl Isolation {
    /// The name `SOCKSPEC_ISOLATION` takes and the reports give.
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Namespace => "namespace",
            Isolation::UserNamespace => "user-namespace",
            Isolation::Shared => "shared",
        }
    }

    /// Every level, most isolated first.
    pub const ALL: [Isolation; 3] = [
        Isolation::Namespace,
        Isolation::UserNamespace,
        Isolation::Shared,
    ];

    /// The level of this name, as [`Isolation::as_str`] gives it.
    pub fn named(name: &str) -> Option<Isolation> {
        Isolation::ALL.into_iter().find(|i| i.as_str() == name)
    }

    /// Whether each check gets a loopback of its own.
    pub fn is_private(self) -> bool {
        self != Isolation::Shared
    }
}
