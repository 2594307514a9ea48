//! `sockspec spec`: the protocol reference, printed from the suites
//! themselves as Markdown. Each suite says what goes on the wire; its
//! parameters carry their meanings and defaults; its checks their ids,
//! levels and requirements. `docs/protocols.md` is this text for every
//! suite (`make docs`), and a test holds the file to it, so the reference a
//! student reads is the one the harness judges by.

use sockspec_engine::conversations::check::{Check, Role, Suite};
use sockspec_engine::model::profile::ParamSpec;
use sockspec_engine::Transport;

/// The whole reference: what every protocol shares, then each suite.
pub fn reference(suites: &[Suite]) -> String {
    let mut out = String::from(
        "# The protocols sockspec checks\n\
         \n\
         <!-- Printed by `sockspec spec` (`make docs`) from the suites themselves: \
         change a suite, not this file. -->\n\
         \n\
         What a program must do to pass each suite, side by side with the checks that \
         hold it to that. Levels: **MUST** (a miss is a FAIL, and the run fails), \
         **SHOULD** (a miss is a WARN: reported, not failing), **INFO** (an observation, \
         never a verdict). **BUF** is the most bytes a program asks for in one receive \
         (the parameter `buf`, where a suite reads it). `upper(b)` is the bytes `b` with \
         each ASCII letter `a`-`z` turned into `A`-`Z` and every other byte unchanged \
         (Python's `bytes.upper()`). `sockspec explain ID` says why a check matters, the \
         mistake that usually breaks it, and the fix.\n",
    );
    for s in suites {
        out.push('\n');
        out.push_str(&suite(s));
    }
    out
}

/// One suite's part of the reference.
pub fn suite(s: &Suite) -> String {
    let mut out = format!("## `{}`: {}\n\n", s.name, s.summary);
    let (over, how) = match s.transport {
        Transport::Stream => ("TCP", "a byte stream"),
        Transport::Datagram => ("UDP", "datagrams"),
    };
    out.push_str(&format!(
        "Over {over} ({how}) on loopback. A server is run with \
         `sockspec run {name} --server CMD` (or `--target HOST:PORT` when it is already \
         running), a client with `sockspec run {name} --client CMD`.\n\n",
        name = s.name
    ));
    out.push_str(&format!("**Server.** {}\n\n", s.wire.server));
    out.push_str(&format!("**Client.** {}\n\n", s.wire.client));
    out.push_str("### Parameters\n\n");
    if s.params.is_empty() {
        out.push_str("The suite takes no parameters.\n\n");
    } else {
        out.push_str(
            "Assignments that legitimately differ say so with `--param KEY=VALUE`.\n\n\
             | parameter | meaning | values | default |\n|---|---|---|---|\n",
        );
        for p in s.params {
            out.push_str(&param_row(p));
        }
        out.push('\n');
    }
    for role in [Role::Server, Role::Client] {
        let checks: Vec<&Check> = s.checks_for(role).collect();
        if !checks.is_empty() {
            out.push_str(&checks_of(role, &checks));
        }
    }
    // One newline at the end: sections are joined by a blank line.
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn param_row(p: &ParamSpec) -> String {
    let values = match p {
        ParamSpec::Number(n) => format!("a whole number from {} to {}", n.min, n.max),
        ParamSpec::Text(_) => "text".to_string(),
        ParamSpec::Switch(_) => "`yes` or `no`".to_string(),
        ParamSpec::Choice(c) => {
            let words: Vec<String> = c.options.iter().map(|o| format!("`{o}`")).collect();
            match words.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => words.concat(),
            }
        }
    };
    format!(
        "| `{}` | {} | {values} | {} |\n",
        p.key(),
        cell(p.meaning()),
        cell(&p.shown_default())
    )
}

/// The checks of one role: a table of ids, levels and requirements, then
/// what each check does to a program.
fn checks_of(role: Role, checks: &[&Check]) -> String {
    let mut out = format!(
        "### {} checks\n\n| id | level | requirement |\n|---|---|---|\n",
        match role {
            Role::Server => "Server",
            Role::Client => "Client",
        }
    );
    for c in checks {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.id,
            c.level,
            cell(c.summary)
        ));
    }
    out.push_str("\nWhat each check does:\n\n");
    for c in checks {
        out.push_str(&format!("- `{}`: {}\n", c.id, sentence(c.expectation)));
    }
    out.push('\n');
    out
}

/// Text fit for a table cell: one line, its bars escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// One line that ends as a sentence does.
fn sentence(text: &str) -> String {
    let mut line = one_line(text);
    if !line.ends_with(['.', '!', '?']) {
        line.push('.');
    }
    line
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_in_a_cell_does_not_open_a_column() {
        assert_eq!(cell("a | b\n  c"), "a \\| b c");
    }

    #[test]
    fn every_suite_is_in_the_reference_with_each_of_its_checks() {
        let suites = sockspec_suites::all();
        let text = reference(&suites);
        for s in &suites {
            assert!(text.contains(&format!("## `{}`", s.name)), "{}", s.name);
            for c in &s.checks {
                assert!(
                    text.contains(&format!("| `{}` | {} |", c.id, c.level)),
                    "{}",
                    c.id
                );
            }
            for p in s.params {
                assert!(text.contains(&format!("| `{}` |", p.key())), "{}", p.key());
            }
        }
    }
}
