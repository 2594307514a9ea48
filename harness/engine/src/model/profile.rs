//! Profile parameters: the ways real assignments legitimately differ from
//! the course material, given as `--param KEY=VALUE`. Each suite declares
//! the parameters it reads ([`ParamSpec`]) in its own file: their keys,
//! meanings, kinds (a whole number, yes or no, text) and defaults. The
//! engine knows no parameter by name: it holds every `--param` to the
//! suite's declarations and keeps the values in a [`Profile`], from which
//! the suite reads each of its parameters, typed, through its declaration.

use std::collections::BTreeMap;
use std::fmt;

/// A parameter that is a whole number in `min..=max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Number {
    pub key: &'static str,
    /// What it means, for `sockspec list` and errors.
    pub meaning: &'static str,
    pub min: usize,
    pub max: usize,
    /// The value when none is given.
    pub default: usize,
}

/// A parameter that is `yes` or `no`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    pub key: &'static str,
    /// What it means, for `sockspec list` and errors.
    pub meaning: &'static str,
    /// The value when none is given.
    pub default: bool,
}

/// A parameter that is any text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text {
    pub key: &'static str,
    /// What it means, for `sockspec list` and errors.
    pub meaning: &'static str,
    /// The text when none is given; empty for none.
    pub default: &'static str,
    /// The default in words, as `sockspec list` shows it (what no text
    /// means, where `default` is empty).
    pub shown_default: &'static str,
    /// Why an empty text is refused, such as "a name is needed, such as
    /// name=ANN"; without it, an empty text is as if none was given.
    pub refuse_empty: Option<&'static str>,
}

/// A parameter that is one of a few words (a byte order and width, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub key: &'static str,
    /// What it means, for `sockspec list` and errors.
    pub meaning: &'static str,
    /// The words it takes.
    pub options: &'static [&'static str],
    /// The word when none is given: one of `options`.
    pub default: &'static str,
}

/// One parameter a suite reads, as the suite declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamSpec {
    Number(&'static Number),
    Switch(&'static Switch),
    Text(&'static Text),
    Choice(&'static Choice),
}

impl ParamSpec {
    pub fn key(&self) -> &'static str {
        match self {
            ParamSpec::Number(n) => n.key,
            ParamSpec::Switch(s) => s.key,
            ParamSpec::Text(t) => t.key,
            ParamSpec::Choice(c) => c.key,
        }
    }

    /// What it means, for `sockspec list` and errors.
    pub fn meaning(&self) -> &'static str {
        match self {
            ParamSpec::Number(n) => n.meaning,
            ParamSpec::Switch(s) => s.meaning,
            ParamSpec::Text(t) => t.meaning,
            ParamSpec::Choice(c) => c.meaning,
        }
    }

    /// The default, as shown.
    pub fn shown_default(&self) -> String {
        match self {
            ParamSpec::Number(n) => n.default.to_string(),
            ParamSpec::Switch(s) => yes_no(s.default).to_string(),
            ParamSpec::Text(t) => t.shown_default.to_string(),
            ParamSpec::Choice(c) => c.default.to_string(),
        }
    }
}

/// `a, b or c`.
fn one_of(options: &[&str]) -> String {
    match options.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn yes_no(yes: bool) -> &'static str {
    if yes {
        "yes"
    } else {
        "no"
    }
}

impl fmt::Display for ParamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = match self {
            ParamSpec::Number(n) => format!("{} to {}", n.min, n.max),
            ParamSpec::Text(_) => "text".to_string(),
            ParamSpec::Switch(_) => "yes or no".to_string(),
            ParamSpec::Choice(c) => one_of(c.options),
        };
        write!(
            f,
            "{}: {} ({values}; default {})",
            self.key(),
            self.meaning(),
            self.shown_default()
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

/// A value given with `--param`, as its declaration parsed it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Number(usize),
    Switch(bool),
    Text(String),
    Choice(&'static str),
}

/// The parameters given for a run, each held to the suite's declaration of
/// it. A suite reads its parameters back through those declarations: what
/// was given, or the declared default; reading never fails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    given: BTreeMap<&'static str, Value>,
}

impl Profile {
    /// A profile of `KEY=VALUE` assignments held to `params`, as
    /// [`Profile::set`] applies them one by one; an assignment without `=`
    /// is refused.
    pub fn of(assignments: &[&str], params: &[ParamSpec]) -> Result<Profile, ParamError> {
        let mut profile = Profile::default();
        for assignment in assignments {
            let Some((key, value)) = assignment.split_once('=') else {
                return Err(ParamError(format!(
                    "--param {assignment:?} is not KEY=VALUE"
                )));
            };
            profile.set(key, value, params)?;
        }
        Ok(profile)
    }

    /// Gives the parameter `key` the value `value`, held to the parameters
    /// `params` a suite reads; a key given again takes the later value.
    pub fn set(&mut self, key: &str, value: &str, params: &[ParamSpec]) -> Result<(), ParamError> {
        let key = key.trim();
        let value = value.trim();
        let Some(spec) = params.iter().find(|p| p.key() == key) else {
            let known: Vec<&str> = params.iter().map(|p| p.key()).collect();
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
        let key = spec.key();
        // `None`: the parameter is as if it was not given.
        let parsed = match spec {
            ParamSpec::Number(n) => {
                let (min, max) = (n.min, n.max);
                let number = value
                    .parse()
                    .ok()
                    .filter(|v: &usize| (min..=max).contains(v))
                    .ok_or_else(|| {
                        ParamError(format!(
                            "--param {key}={value}: {key} takes a whole number from {min} to {max}"
                        ))
                    })?;
                Some(Value::Number(number))
            }
            ParamSpec::Switch(_) => match value {
                "yes" => Some(Value::Switch(true)),
                "no" => Some(Value::Switch(false)),
                _ => {
                    return Err(ParamError(format!(
                        "--param {key}={value}: {key} takes yes or no"
                    )))
                }
            },
            ParamSpec::Text(t) if value.is_empty() => match t.refuse_empty {
                Some(why) => return Err(ParamError(format!("--param {key}=: {why}"))),
                None => None,
            },
            ParamSpec::Text(_) => Some(Value::Text(value.to_string())),
            ParamSpec::Choice(c) => match c.options.iter().find(|o| **o == value) {
                Some(word) => Some(Value::Choice(word)),
                None => {
                    return Err(ParamError(format!(
                        "--param {key}={value}: {key} takes {}",
                        one_of(c.options)
                    )))
                }
            },
        };
        match parsed {
            Some(v) => self.given.insert(key, v),
            None => self.given.remove(key),
        };
        Ok(())
    }

    /// The number given for `param`, or its default.
    pub fn number(&self, param: &Number) -> usize {
        match self.given.get(param.key) {
            Some(Value::Number(n)) => *n,
            _ => param.default,
        }
    }

    /// Whether `param` was given as yes, or its default.
    pub fn switch(&self, param: &Switch) -> bool {
        match self.given.get(param.key) {
            Some(Value::Switch(yes)) => *yes,
            _ => param.default,
        }
    }

    /// The text given for `param`, or its default; empty for none.
    pub fn text<'a>(&'a self, param: &'a Text) -> &'a str {
        match self.given.get(param.key) {
            Some(Value::Text(text)) => text,
            _ => param.default,
        }
    }
}

impl Profile {
    /// The word given for `param`, or its default.
    pub fn choice(&self, param: &Choice) -> &'static str {
        match self.given.get(param.key) {
            Some(Value::Choice(word)) => word,
            _ => param.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Parameters of an imagined suite, for the rules every suite's
    // parameters follow.
    const WIDTH: Number = Number {
        key: "width",
        meaning: "columns the program wraps at",
        min: 1,
        max: 200,
        default: 80,
    };
    const LOUD: Switch = Switch {
        key: "loud",
        meaning: "the program shouts its replies",
        default: false,
    };
    const GREETING: Text = Text {
        key: "greeting",
        meaning: "a line the program prints first",
        default: "",
        shown_default: "none",
        refuse_empty: None,
    };
    const NAME: Text = Text {
        key: "name",
        meaning: "the name the program is given",
        default: "ANN",
        shown_default: "ANN",
        refuse_empty: Some("a name is needed, such as name=ANN"),
    };
    const ORDER: Choice = Choice {
        key: "order",
        meaning: "how the program orders its words",
        options: &["forward", "backward"],
        default: "forward",
    };
    const ALL: &[ParamSpec] = &[
        ParamSpec::Number(&WIDTH),
        ParamSpec::Switch(&LOUD),
        ParamSpec::Text(&GREETING),
        ParamSpec::Text(&NAME),
        ParamSpec::Choice(&ORDER),
    ];

    fn profile(assignments: &[&str]) -> Profile {
        Profile::of(assignments, ALL).unwrap()
    }

    fn refusal(assignment: &str, params: &[ParamSpec]) -> String {
        Profile::of(&[assignment], params).unwrap_err().0
    }

    #[test]
    fn a_parameter_not_given_reads_as_its_default() {
        let p = Profile::default();
        assert_eq!(p.number(&WIDTH), 80);
        assert!(!p.switch(&LOUD));
        assert_eq!(p.text(&GREETING), "");
        assert_eq!(p.text(&NAME), "ANN");
    }

    #[test]
    fn a_parameter_given_reads_as_given() {
        let p = profile(&["width=120", "loud=yes", "greeting=hello there", "name=BOB"]);
        assert_eq!(p.number(&WIDTH), 120);
        assert!(p.switch(&LOUD));
        assert_eq!(p.text(&GREETING), "hello there");
        assert_eq!(p.text(&NAME), "BOB");
    }

    #[test]
    fn keys_and_values_are_trimmed() {
        assert_eq!(profile(&[" width = 7 "]).number(&WIDTH), 7);
    }

    #[test]
    fn a_parameter_given_twice_takes_the_later_value() {
        assert_eq!(profile(&["width=7", "width=9"]).number(&WIDTH), 9);
        assert!(!profile(&["loud=yes", "loud=no"]).switch(&LOUD));
    }

    #[test]
    fn a_number_takes_a_whole_number_in_its_range() {
        assert_eq!(profile(&["width=1"]).number(&WIDTH), 1);
        assert_eq!(profile(&["width=200"]).number(&WIDTH), 200);
        for bad in ["width=0", "width=201", "width=-1", "width=wide", "width="] {
            assert!(
                refusal(bad, ALL).ends_with("width takes a whole number from 1 to 200"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_choice_takes_one_of_its_words_and_lists_them_when_refused() {
        assert_eq!(Profile::default().choice(&ORDER), "forward");
        assert_eq!(profile(&["order=backward"]).choice(&ORDER), "backward");
        assert_eq!(
            refusal("order=sideways", ALL),
            "--param order=sideways: order takes forward or backward"
        );
    }

    #[test]
    fn a_switch_takes_yes_or_no() {
        assert!(profile(&["loud=yes"]).switch(&LOUD));
        assert!(!profile(&["loud=no"]).switch(&LOUD));
        assert_eq!(
            refusal("loud=true", ALL),
            "--param loud=true: loud takes yes or no"
        );
    }

    #[test]
    fn an_empty_text_is_as_if_none_was_given() {
        assert_eq!(profile(&["greeting=hi", "greeting="]).text(&GREETING), "");
        assert_eq!(Profile::of(&["greeting="], ALL), Ok(Profile::default()));
    }

    #[test]
    fn an_empty_text_a_suite_refuses_says_why() {
        assert_eq!(
            refusal("name=", ALL),
            "--param name=: a name is needed, such as name=ANN"
        );
    }

    #[test]
    fn an_unknown_parameter_names_the_suite_s_own() {
        assert_eq!(
            refusal("widht=3", ALL),
            "--param widht: no such parameter; known parameters are width, loud, greeting, \
             name, order (see `sockspec list`)"
        );
    }

    #[test]
    fn a_parameter_another_suite_reads_is_refused() {
        let err = refusal("loud=yes", &[ParamSpec::Number(&WIDTH)]);
        assert!(err.contains("known parameters are width"), "{err}");
    }

    #[test]
    fn a_suite_without_parameters_says_so() {
        assert_eq!(
            refusal("width=3", &[]),
            "--param width: this suite reads no parameters"
        );
    }

    #[test]
    fn an_assignment_without_equals_is_refused() {
        assert_eq!(refusal("width", ALL), "--param \"width\" is not KEY=VALUE");
    }

    #[test]
    fn a_parameter_prints_its_values_and_default() {
        let shown: Vec<String> = ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "width: columns the program wraps at (1 to 200; default 80)",
                "loud: the program shouts its replies (yes or no; default no)",
                "greeting: a line the program prints first (text; default none)",
                "name: the name the program is given (text; default ANN)",
                "order: how the program orders its words (forward or backward; default forward)",
            ]
        );
    }
}
