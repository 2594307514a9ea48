//! Profile parameters: the ways real assignments legitimately differ from
//! the course material (receive size, prefix format, header key names, a
//! `quit` line). Given as `--param KEY=VALUE`.

use std::fmt;

/// The parameters a suite reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The most bytes the implementation asks for in one receive (`buf`).
    pub buf: usize,
    /// A line that ends the client instead of end of input (`quit`).
    pub quit: Option<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            buf: 1024,
            quit: None,
        }
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
    /// The parameter names, with what each means, for `--help` and errors.
    pub const KEYS: &'static [(&'static str, &'static str)] = &[
        (
            "buf",
            "most bytes the program asks for in one receive (default 1024)",
        ),
        (
            "quit",
            "a line that makes the client stop, e.g. quit (default: end of input)",
        ),
    ];

    /// Applies one `KEY=VALUE`.
    pub fn set(&mut self, assignment: &str) -> Result<(), ParamError> {
        let Some((key, value)) = assignment.split_once('=') else {
            return Err(ParamError(format!(
                "--param {assignment:?} is not KEY=VALUE; for example --param buf=2048"
            )));
        };
        match key.trim() {
            "buf" => {
                self.buf = value
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| (1..=65_536).contains(&n))
                    .ok_or_else(|| {
                        ParamError(format!(
                            "--param buf={value}: buf takes a whole number from 1 to 65536"
                        ))
                    })?
            }
            "quit" => {
                let v = value.trim();
                self.quit = (!v.is_empty()).then(|| v.to_string());
            }
            other => {
                let known: Vec<&str> = Self::KEYS.iter().map(|(k, _)| *k).collect();
                return Err(ParamError(format!(
                    "--param {other}: no such parameter; known parameters are {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_set_their_field() {
        let mut p = Profile::default();
        p.set("buf=2048").unwrap();
        p.set("quit=quit").unwrap();
        assert_eq!(
            p,
            Profile {
                buf: 2048,
                quit: Some("quit".into())
            }
        );
    }

    #[test]
    fn an_unknown_param_names_the_known_ones() {
        let err = Profile::default().set("bufsize=1").unwrap_err();
        assert!(err.0.contains("known parameters are buf, quit"), "{err}");
    }

    #[test]
    fn a_bad_value_says_what_is_allowed() {
        assert!(Profile::default()
            .set("buf=0")
            .unwrap_err()
            .0
            .contains("1 to 65536"));
        assert!(Profile::default()
            .set("buf")
            .unwrap_err()
            .0
            .contains("KEY=VALUE"));
    }
}
