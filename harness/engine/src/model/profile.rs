//! Profile parameters: the ways real assignments legitimately differ from
//! the course material (receive size, prefix format, header key names, a
//! `quit` line). Given as `--param KEY=VALUE`. Each suite declares the
//! parameters it reads ([`ParamSpec`]): their names, meanings, defaults and
//! allowed values; a parameter another suite reads is refused, with the
//! suite's own list.

use std::fmt;

/// The parameters a suite reads, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The most bytes the implementation asks for in one receive (`buf`).
    pub buf: usize,
    /// A line that ends the client instead of end of input (`quit`).
    pub quit: Option<String>,
    /// The contact a chat client is told to write to (`contact`).
    pub contact: String,
    /// Whether a chat client asks for the contact before every message
    /// (`contact_each`), not once.
    pub contact_each: bool,
    /// Whether a chat client sends a datagram of its own when a contact is
    /// chosen (`announce`), before any message.
    pub announce: bool,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            buf: 1024,
            quit: None,
            contact: "TOM".into(),
            contact_each: false,
            announce: false,
        }
    }
}

impl Profile {
    /// The line that makes the client stop or go back, `default` when the
    /// profile names none.
    pub fn quit_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.quit.as_deref().unwrap_or(default)
    }
}

/// What values a parameter takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// A whole number in `min..=max`.
    Number { min: usize, max: usize },
    /// Any text; empty means unset.
    Text,
    /// `yes` or `no`.
    YesNo,
}

/// One parameter a suite reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub key: &'static str,
    /// What it means, for `sockspec list` and errors.
    pub meaning: &'static str,
    /// The default, as shown.
    pub default: &'static str,
    pub allowed: Allowed,
}

impl ParamSpec {
    /// The receive size, `buf`.
    pub const BUF: ParamSpec = ParamSpec {
        key: "buf",
        meaning: "most bytes the program asks for in one receive",
        default: "1024",
        allowed: Allowed::Number {
            min: 1,
            max: 65_536,
        },
    };

    /// The client's quit line, `quit`.
    pub const QUIT: ParamSpec = ParamSpec {
        key: "quit",
        meaning: "a line that makes the client stop, e.g. quit",
        default: "end of input",
        allowed: Allowed::Text,
    };

    /// The chat client's quit word, `quit`: it goes back to choosing a
    /// contact rather than ending the client.
    pub const CHAT_QUIT: ParamSpec = ParamSpec {
        key: "quit",
        meaning: "the line that makes the chat client go back to choosing a contact",
        default: "quit",
        allowed: Allowed::Text,
    };

    /// The chat client's contact, `contact`.
    pub const CONTACT: ParamSpec = ParamSpec {
        key: "contact",
        meaning: "the contact name the chat client is given",
        default: "TOM",
        allowed: Allowed::Text,
    };

    /// A chat client that asks for the contact before every message.
    pub const CONTACT_EACH: ParamSpec = ParamSpec {
        key: "contact_each",
        meaning: "the chat client asks for the contact before every message",
        default: "no",
        allowed: Allowed::YesNo,
    };

    /// A chat client that sends an announcement when a contact is chosen.
    pub const ANNOUNCE: ParamSpec = ParamSpec {
        key: "announce",
        meaning: "the chat client sends a datagram of its own when a contact is chosen",
        default: "no",
        allowed: Allowed::YesNo,
    };
}

impl fmt::Display for ParamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = match self.allowed {
            Allowed::Number { min, max } => format!("{min} to {max}"),
            Allowed::Text => "text".to_string(),
            Allowed::YesNo => "yes or no".to_string(),
        };
        write!(
            f,
            "{}: {} ({values}; default {})",
            self.key, self.meaning, self.default
        )
    }
}

/// A `--param` that cannot be used, with what to do instead.
#[derive(Debug, PartialEq, Eq)]
pub struct ParamError(pub String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

impl Profile {
    /// Applies one `KEY=VALUE`, held to the parameters `params` a suite
    /// reads.
    pub fn set(&mut self, assignment: &str, params: &[ParamSpec]) -> Result<(), ParamError> {
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(ParamError(format!(
                "--param {assignment:?} is not KEY=VALUE; for example --param buf=2048"
            )));
        };
        let key = key.trim();
        let value = value.trim();
        let Some(spec) = params.iter().find(|p| p.key == key) else {
            let known: Vec<&str> = params.iter().map(|p| p.key).collect();
            return Err(ParamError(if known.is_empty() {
                format!("--param {key}: this suite reads no parameters")
            } else {
                format!(
                    "--param {key}: no such parameter; known parameters are {} \
                     (see `sockspec list`)",
                    known.join(", ")
                )
            }));
        };
        match spec.allowed {
            Allowed::Number { min, max } => {
                let n = value
                    .parse()
                    .ok()
                    .filter(|n: &usize| (min..=max).contains(n))
                    .ok_or_else(|| {
                        ParamError(format!(
                            "--param {key}={value}: {key} takes a whole number from {min} to {max}"
                        ))
                    })?;
                self.set_number(key, n)
            }
            Allowed::Text => self.set_text(key, value),
            Allowed::YesNo => {
                let yes = match value {
                    "yes" => true,
                    "no" => false,
                    _ => {
                        return Err(ParamError(format!(
                            "--param {key}={value}: {key} takes yes or no"
                        )))
                    }
                };
                self.set_switch(key, yes)
            }
        }
    }

    fn set_switch(&mut self, key: &str, yes: bool) -> Result<(), ParamError> {
        match key {
            "contact_each" => self.contact_each = yes,
            "announce" => self.announce = yes,
            other => return Err(undeclared(other)),
        }
        Ok(())
    }

    fn set_number(&mut self, key: &str, n: usize) -> Result<(), ParamError> {
        match key {
            "buf" => self.buf = n,
            other => return Err(undeclared(other)),
        }
        Ok(())
    }

    fn set_text(&mut self, key: &str, value: &str) -> Result<(), ParamError> {
        match key {
            "quit" => self.quit = (!value.is_empty()).then(|| value.to_string()),
            "contact" if value.is_empty() => {
                return Err(ParamError(
                    "--param contact=: the contact needs a name, such as contact=TOM".into(),
                ))
            }
            "contact" => self.contact = value.to_string(),
            other => return Err(undeclared(other)),
        }
        Ok(())
    }
}

/// A suite declared a parameter the profile has no field for.
fn undeclared(key: &str) -> ParamError {
    ParamError(format!(
        "--param {key}: the suite declares it but the engine has no such parameter \
         (a bug in the suite)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[ParamSpec] = &[ParamSpec::BUF, ParamSpec::QUIT];

    #[test]
    fn params_set_their_field() {
        let mut p = Profile::default();
        p.set("buf=2048", BOTH).unwrap();
        p.set("quit=quit", BOTH).unwrap();
        assert_eq!(
            p,
            Profile {
                buf: 2048,
                quit: Some("quit".into()),
                ..Profile::default()
            }
        );
    }

    #[test]
    fn a_switch_takes_yes_or_no() {
        let chat = &[ParamSpec::ANNOUNCE, ParamSpec::CONTACT_EACH];
        let mut p = Profile::default();
        p.set("announce=yes", chat).unwrap();
        assert!(p.announce);
        p.set("announce=no", chat).unwrap();
        assert!(!p.announce);
        let err = p.set("contact_each=true", chat).unwrap_err();
        assert!(err.0.contains("takes yes or no"), "{err}");
    }

    #[test]
    fn an_unknown_param_names_the_suite_s_own() {
        let err = Profile::default().set("bufsize=1", BOTH).unwrap_err();
        assert!(err.0.contains("known parameters are buf, quit"), "{err}");
    }

    #[test]
    fn a_param_the_suite_does_not_read_is_refused() {
        let err = Profile::default()
            .set("quit=bye", &[ParamSpec::BUF])
            .unwrap_err();
        assert!(err.0.contains("known parameters are buf"), "{err}");
    }

    #[test]
    fn a_bad_value_says_what_is_allowed() {
        assert!(Profile::default()
            .set("buf=0", BOTH)
            .unwrap_err()
            .0
            .contains("1 to 65536"));
        assert!(Profile::default()
            .set("buf", BOTH)
            .unwrap_err()
            .0
            .contains("KEY=VALUE"));
    }

    #[test]
    fn a_param_prints_its_values_and_default() {
        assert_eq!(
            ParamSpec::BUF.to_string(),
            "buf: most bytes the program asks for in one receive (1 to 65536; default 1024)"
        );
    }
}
